/**
 * Key <-> file name mapping of the file backend, byte-identical to both reference implementations:
 * `[A-Za-z0-9_-]` kept, every other UTF-8 byte written as lowercase `%xx`, then `.bin`.
 * Because `.`, `/`, `\` and NUL are always escaped, a key can never name a path outside the directory.
 */
import { assertValidKey } from "./keys.js";

export const FILE_SUFFIX = ".bin";

const HEX = "0123456789abcdef";
const utf8 = new TextEncoder();
/** Strict: a file whose escapes do not spell valid UTF-8 is not a key. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function isSafeByte(b: number): boolean {
  return (
    (b >= 0x30 && b <= 0x39) || // 0-9
    (b >= 0x41 && b <= 0x5a) || // A-Z
    (b >= 0x61 && b <= 0x7a) || // a-z
    b === 0x5f || // _
    b === 0x2d // -
  );
}

/** `key` → file name (stem + ".bin"). Throws StorageError("invalid-key") for lone surrogates. */
export function encodeKeyToFileName(key: string): string {
  assertValidKey(key);
  let out = "";
  // Byte-wise is the same as code-point-wise: multi-byte UTF-8 sequences never contain safe ASCII bytes.
  for (const b of utf8.encode(key)) {
    out += isSafeByte(b) ? String.fromCharCode(b) : "%" + HEX[b >> 4] + HEX[b & 15];
  }
  return out + FILE_SUFFIX;
}

/** The value of a lowercase hex digit (the encoder's), -1 for anything else. */
function lowerHexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * File name → key, or `undefined` when the name is not a key (no `.bin` suffix, raw non-ASCII
 * characters, escapes that are not valid UTF-8). Lenient like the references: a `%` not followed by
 * two hex digits is a literal `%`, and uppercase hex is accepted.
 */
export function decodeFileNameToKey(fileName: string): string | undefined {
  if (!fileName.endsWith(FILE_SUFFIX)) return undefined;
  const stemLength = fileName.length - FILE_SUFFIX.length;
  const bytes = new Uint8Array(stemLength);
  let n = 0;
  for (let i = 0; i < stemLength; i++) {
    const c = fileName.charCodeAt(i);
    if (c === 0x25 && i + 2 < stemLength) {
      const hi = hexValue(fileName.charCodeAt(i + 1));
      const lo = hexValue(fileName.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        bytes[n++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
    }
    // Raw non-ASCII in a name is something the encoder never writes: not a key.
    if (c >= 0x80) return undefined;
    bytes[n++] = c;
  }
  try {
    return strictUtf8.decode(bytes.subarray(0, n));
  } catch {
    return undefined;
  }
}

/**
 * Whether a `.bin` name is spelled in the encoder's alphabet alone: kept bytes and `%`. A name with any other raw
 * character (a space, a dot, parentheses: a sync tool's "k (1).bin", another program's "a.b.bin") is no spelling of a
 * key the encoder could have meant, so list skips it as it skips "foo.txt" (review r359 M1), where a name in the
 * alphabet that is not the key's own (`%C3`, `%41`, a lone `%`) is refused.
 */
export function usesKeyAlphabet(fileName: string): boolean {
  const stemLength = fileName.length - FILE_SUFFIX.length;
  for (let i = 0; i < stemLength; i++) {
    const c = fileName.charCodeAt(i);
    if (!isSafeByte(c) && c !== 0x25) return false;
  }
  return true;
}

/**
 * Whether a file name that decodes to a key (decodeFileNameToKey) is the one name encodeKeyToFileName gives that key:
 * only kept bytes as they are and lowercase escapes of the others. The decode is lenient (uppercase hex, a `%` kept
 * literally, an escape of a byte the encoder keeps), so one key has many such names, and read, write and delete go
 * by this one: the file backend's list refuses the others (file.ts `list`).
 */
export function isCanonicalFileName(fileName: string): boolean {
  if (!fileName.endsWith(FILE_SUFFIX)) return false;
  const stemLength = fileName.length - FILE_SUFFIX.length;
  for (let i = 0; i < stemLength; i++) {
    const c = fileName.charCodeAt(i);
    if (isSafeByte(c)) continue;
    if (c !== 0x25 || i + 2 >= stemLength) return false;
    const hi = lowerHexValue(fileName.charCodeAt(i + 1));
    const lo = lowerHexValue(fileName.charCodeAt(i + 2));
    if (hi < 0 || lo < 0 || isSafeByte((hi << 4) | lo)) return false;
    i += 2;
  }
  return true;
}
