/**
 * Fast path for RFC 8785 canonical JSON, written straight as UTF-8: one pass that validates plain JSON data and
 * appends its canonical bytes to a reusable buffer, so no string rope is built, flattened and encoded again.
 * `value()` never throws and never decides an error: anything unusual (invalid content, exotic objects, deep
 * nesting, a cycle, a throwing getter) makes it write nothing and return false, and the caller runs the
 * reference path (strict walk + `canonicalize`), which gives the same bytes or the located `CodecError`. So
 * the fast path only has to be right where it answers. Layer 0.
 */
import { types } from "node:util";
import { pooledBytes } from "./bytes.js";
import { isWideInteger, type BigintMode } from "./strict.js";
import { isTooWideInteger } from "./integer-limit.js";

// Deeper values (and cycles, which are infinitely deep) go to the reference path, which detects cycles exactly
// and enforces MAX_JSON_DEPTH.
const MAX_DEPTH = 64;
// Up to this many keys an insertion sort beats Array#sort's call overhead several times over.
const SMALL_OBJECT = 16;
// Up to this length a byte loop beats the native encodeInto call; longer strings use the native calls.
const SHORT_STRING = 128;
const INITIAL_BYTES = 16 * 1024;
// A writer that grew past this for one large value drops its buffer afterwards instead of pinning it.
const KEEP_BYTES = 1024 * 1024;

// Up to this many bytes a byte loop beats TypedArray#set's call; longer parts (a batch's shared frame text) use set.
const RAW_LOOP_BYTES = 24;
const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");
const TWO_53 = 2 ** 53;
const TWO_61 = 2 ** 61;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

const encoder = new TextEncoder();
// ignoreBOM: return exactly what was written (canonical text never starts with U+FEFF anyway).
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * UTF-8 of `"key":` for recently seen object keys. Key sets repeat across values (the same record shapes over
 * and over), and quoting a key costs more than writing a small value. A pure function of the key, so it cannot
 * change any output; bounded in entries and key length, and simply cleared when full.
 */
const keyPrefixes = new Map<string, Uint8Array>();
const KEY_CACHE_ENTRIES = 1024;
const KEY_CACHE_KEY_LENGTH = 64;

// Node >= 20 ships String.prototype.isWellFormed; the ES2022 lib typings do not declare it.
type WellFormedString = string & { isWellFormed(): boolean };
const isWellFormed = (s: string): boolean => (s as WellFormedString).isWellFormed();

/** An append-only UTF-8 buffer for canonical JSON. Borrow one with `withCanonicalWriter`. */
export class CanonicalWriter {
  private buf = new Uint8Array(INITIAL_BYTES);
  private pos = 0;

  /** Bytes written so far; also a mark to `truncate` back to. */
  get length(): number {
    return this.pos;
  }

  /** A view of written bytes (no copy): valid until the next write. */
  view(start = 0, end = this.pos): Uint8Array {
    return this.buf.subarray(start, end);
  }

  /** A copy of everything written, owned by the caller. */
  copy(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /** A copy of everything written in pooled bytes (see `pooledBytes`): for bytes that only live until written. */
  pooledCopy(): Uint8Array {
    const out = pooledBytes(this.pos);
    out.set(this.view());
    return out;
  }

  /** Everything written, as a string. */
  text(): string {
    return decoder.decode(this.view());
  }

  truncate(length: number): void {
    this.pos = length;
  }

  /**
   * Moves the bytes written since `mid` back to `at` (`at` ≤ `mid`), shifting the bytes in between after them:
   * [at, mid)[mid, end) becomes [mid, end)[at, mid). Native moves only, no allocation (the moved part passes
   * through the room after the end).
   */
  moveBack(at: number, mid: number): void {
    const end = this.pos;
    const n = end - mid;
    this.reserve(n);
    const buf = this.buf;
    buf.copyWithin(end, mid, end);
    buf.copyWithin(at + n, at, mid);
    buf.copyWithin(at, end, end + n);
  }

  /** Appends a string of ASCII characters (literals, digits, hex) as is. */
  ascii(s: string): void {
    const n = s.length;
    this.reserve(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** Appends any well-formed string as UTF-8, as is (no quoting or escaping). */
  utf8(s: string): void {
    // Every UTF-16 unit takes at most 3 bytes (a surrogate pair, 2 units, takes 4).
    this.reserve(3 * s.length);
    this.pos += encoder.encodeInto(s, this.buf.subarray(this.pos)).written;
  }

  /**
   * Appends the canonical JSON of `value` under the strict rules (docs/design.md §3.2) and returns true, or writes
   * nothing and returns false when the reference path must decide. Byte-identical to the UTF-8 of
   * `canonicalize(prepareJsonValue(value, bigints))` wherever it answers.
   */
  value(value: unknown, bigints: BigintMode): boolean {
    const start = this.pos;
    try {
      if (this.write(value, bigints, 0)) return true;
    } catch {
      // A getter or proxy trap threw: the reference path reads the value again and reports where.
    }
    this.pos = start;
    return false;
  }

  /** Back to empty, dropping a buffer one large value made huge. */
  reset(): void {
    this.pos = 0;
    if (this.buf.length > KEEP_BYTES) this.buf = new Uint8Array(INITIAL_BYTES);
  }

  private write(value: unknown, bigints: BigintMode, depth: number): boolean {
    switch (typeof value) {
      case "string":
        return this.string(value);
      case "number":
        if (!Number.isFinite(value)) return false;
        this.number(value);
        return true;
      case "boolean":
        this.ascii(value ? "true" : "false");
        return true;
      case "bigint":
        // Refused by the reference path, which says why (MAX_INTEGER_DIGITS); checked before any digits are written.
        if (isTooWideInteger(value)) return false;
        if (bigints === "tag") return this.bigintTag(value);
        // Plain JSON carries only the bigints decoding gives back; the reference path refuses the rest.
        if (!isWideInteger(value)) return false;
        this.ascii(String(value));
        return true;
      case "object":
        if (value === null) {
          this.ascii("null");
          return true;
        }
        // Proxies go to the reference path too, which refuses them (their traps decide what they look like).
        if (depth >= MAX_DEPTH || types.isProxy(value)) return false;
        return Array.isArray(value)
          ? this.array(value as unknown[], bigints, depth + 1)
          : this.object(value as Record<string, unknown>, bigints, depth + 1);
      default:
        return false;
    }
  }

  /**
   * A JSON string literal; false for a lone surrogate (which RFC 8785 cannot encode). For well-formed strings
   * `JSON.stringify` escapes exactly what RFC 8785 escapes (`"`, `\`, U+0000–U+001F, short forms where they
   * exist, lowercase `\u00xx` otherwise), so it is the reference whenever something needs escaping.
   */
  private string(s: string): boolean {
    const n = s.length;
    if (n <= SHORT_STRING) {
      this.reserve(n + 2);
      const buf = this.buf;
      let p = this.pos;
      buf[p++] = QUOTE;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x20 || c === QUOTE || c === BACKSLASH || c >= 0x80) break;
        buf[p++] = c;
      }
      if (i === n) {
        buf[p++] = QUOTE;
        this.pos = p;
        return true;
      }
    }
    if (!isWellFormed(s)) return false;
    if (NEEDS_ESCAPE.test(s)) {
      this.utf8(JSON.stringify(s));
    } else {
      this.byte(QUOTE);
      this.utf8(s);
      this.byte(QUOTE);
    }
    return true;
  }

  /** `{"$bigint":"<radix-10>"}`, the tag the strict walk substitutes (docs/protocol.md §2.3). */
  private bigintTag(value: bigint): boolean {
    // toString() rather than String(): the walk calls the method, so a patched one must give the same text.
    const digits: unknown = value.toString();
    if (typeof digits !== "string") return false;
    this.ascii('{"$bigint":');
    if (!this.string(digits)) return false;
    this.byte(CLOSE_OBJECT);
    return true;
  }

  private array(arr: unknown[], bigints: BigintMode, depth: number): boolean {
    // Same plain-data rules as the strict walk: no subclasses, no toJSON (canonicalize would call it).
    if (Object.getPrototypeOf(arr) !== Array.prototype || typeof (arr as { toJSON?: unknown }).toJSON === "function") {
      return false;
    }
    this.byte(OPEN_ARRAY);
    const n = arr.length;
    for (let i = 0; i < n; i++) {
      if (i > 0) this.byte(COMMA);
      // A hole or undefined item reads as undefined, which write refuses (the walk rejects it too).
      if (!this.write(arr[i], bigints, depth)) return false;
    }
    this.byte(CLOSE_ARRAY);
    return true;
  }

  private object(obj: Record<string, unknown>, bigints: BigintMode, depth: number): boolean {
    const proto: unknown = Object.getPrototypeOf(obj);
    if ((proto !== Object.prototype && proto !== null) || typeof obj.toJSON === "function") return false;
    const keys = sortedKeys(obj);
    // A map-like object (a baseline's nodes by path) has more distinct keys than the cache holds: caching them would
    // only allocate two buffers per key and clear the cache every KEY_CACHE_ENTRIES keys, so they are written as is.
    if (keys.length > KEY_CACHE_ENTRIES) return this.wideObject(obj, keys, bigints, depth);
    this.byte(OPEN_OBJECT);
    let first = true;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      // Checked even when the value is skipped: the walk rejects a lone-surrogate key regardless of its value.
      const prefix = keyPrefix(key);
      if (prefix === undefined) return false;
      const item = obj[key];
      if (item === undefined) continue;
      if (!first) this.byte(COMMA);
      first = false;
      this.raw(prefix);
      if (!this.write(item, bigints, depth)) return false;
    }
    this.byte(CLOSE_OBJECT);
    return true;
  }

  /** `object` for many keys: each key quoted straight into the buffer (`string` writes what keyPrefix would). */
  private wideObject(obj: Record<string, unknown>, keys: readonly string[], bigints: BigintMode, depth: number): boolean {
    this.byte(OPEN_OBJECT);
    let first = true;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      const item = obj[key];
      if (item === undefined) {
        if (!isWellFormed(key)) return false; // refused by the walk regardless of the value
        continue;
      }
      if (!first) this.byte(COMMA);
      first = false;
      if (!this.string(key)) return false;
      this.byte(COLON);
      if (!this.write(item, bigints, depth)) return false;
    }
    this.byte(CLOSE_OBJECT);
    return true;
  }

  /**
   * A finite number's canonical text: ES Number::toString, which is exactly RFC 8785's number form (-0 as 0).
   * Safe integers and the wide integers of nanosecond timestamps are written digit by digit; anything else goes
   * through `String()`.
   */
  number(n: number): void {
    if (Number.isSafeInteger(n)) this.integer(n);
    else if (!this.wideInteger(n)) this.ascii(String(n));
  }

  /**
   * Number::toString's digits of a double of magnitude in [2^53, 2^61) (each an integer), without making the
   * string; false, having written nothing, in the rare case left to `String()`. Nanosecond timestamps (attach
   * stamps every wave, ~1.8e18 today, below 2^61 until 2043) are such doubles, all distinct: V8's number-string
   * cache never holds them, and `String()` runs its shortest-digits search and allocates a string each time
   * (120–200 ns a call against ~13 for a cached value; design §3.43).
   *
   * The rule (ECMA-262 Number::toString): the fewest significant digits s, then the candidate nearest the value,
   * then the even s, among the integers c that read back as this double, i.e. lie within half its ulp (the bounds
   * included when its significand is even, as reading rounds half to even); c is then written in full (19 or fewer
   * digits, no exponent below 10^21). Here the value is split as hi·10^9 + lo (exact: hi·10^9 is a multiple of
   * 512 below 2^61, the ulp at most 256), and c searched as hi·10^9 + c' with c' near lo; a range reaching below 1
   * or past 10^9 − 1 (a carry into hi, or a run of zeros across the split) is left to `String()`.
   */
  private wideInteger(n: number): boolean {
    const v = n < 0 ? -n : n;
    if (!(v >= TWO_53 && v < TWO_61)) return false;
    let ulp = 2;
    while (v >= ulp * TWO_53) ulp *= 2;
    let hi = Math.floor(v / 1e9);
    let lo = v - hi * 1e9;
    // The quotient is rounded: its floor may be one off.
    if (lo < 0) {
      hi -= 1;
      lo += 1e9;
    } else if (lo >= 1e9) {
      hi += 1;
      lo -= 1e9;
    }
    // Small integers from here on (lo below 2^30, hi below 2^32): int32 arithmetic, several times faster.
    lo |= 0;
    hi >>>= 0;
    // hi·10^9 is a multiple of 2^9, so the significand's parity is lo's, in ulps.
    const even = ((lo / ulp) & 1) === 0;
    const half = ulp >> 1;
    const from = even ? lo - half : lo - half + 1;
    const to = even ? lo + half : lo + half - 1;
    if (from < 1 || to >= 1e9) return false;
    // The largest power of ten with a multiple in [from, to]: a multiple of 10^(k+1) is one of 10^k as well.
    let p = 1;
    while (p < 1e8) {
      const q = p * 10;
      if (Math.ceil(from / q) * q > to) break;
      p = q;
    }
    // The nearest such multiple to lo (one of the two around it lies inside). No tie to break by the even s: lo
    // halfway between two multiples of p = 10^z inside the range means lo ≡ 5^z·2^(z−1) (mod 2^z·5^z), so the ulp
    // (a power of two dividing lo) is at most 2^(z−1), and the range, one ulp wide, is narrower than p.
    const below = lo - (lo % p);
    const above = below + p;
    let c = below < from || (above <= to && above - lo < lo - below) ? above : below;
    const digits = hi >= 1e9 ? 10 : hi >= 1e8 ? 9 : hi >= 1e7 ? 8 : 7; // hi ≥ 2^53 / 10^9 > 10^6
    this.reserve(20);
    const buf = this.buf;
    if (n < 0) buf[this.pos++] = 0x2d;
    let at = this.pos + digits;
    let end = at + 9;
    this.pos = end;
    for (let k = 0; k < 9; k++) {
      const q = (c / 10) | 0;
      buf[--end] = 0x30 + (c - q * 10);
      c = q;
    }
    for (let k = 0; k < digits; k++) {
      const q = (hi / 10) >>> 0;
      buf[--at] = 0x30 + (hi - q * 10);
      hi = q;
    }
    return true;
  }

  /**
   * A safe integer's digits, as Number::toString writes them (-0 as 0), without making the string. In int32
   * arithmetic: below 10^9 in one run, above it as hi·10^9 + lo (hi < 2^53 / 10^9 ≈ 9.1e6, both parts exact), lo
   * written to nine digits. `Math.floor` of a double quotient a digit took ~40 ns for a 13-digit millisecond stamp;
   * the int32 runs ~10 (design §3.48: a suite-2 value's three integers 115 → ~35 ns).
   */
  private integer(n: number): void {
    this.reserve(17);
    const buf = this.buf;
    let p = this.pos;
    if (n < 0) {
      buf[p++] = 0x2d;
      n = -n;
    }
    if (n < 1e9) {
      this.pos = writeDigits(buf, p, n | 0);
      return;
    }
    let hi = Math.floor(n / 1e9);
    let lo = n - hi * 1e9; // exact: hi·10^9 < 2^53
    // The quotient is rounded: kept in step as in wideInteger, though no safe integer was found whose floor is off.
    if (lo < 0) {
      hi -= 1;
      lo += 1e9;
    } else if (lo >= 1e9) {
      hi += 1;
      lo -= 1e9;
    }
    lo |= 0;
    p = writeDigits(buf, p, hi | 0);
    let end = p + 9;
    this.pos = end;
    for (let k = 0; k < 9; k++) {
      const q = (lo / 10) | 0;
      buf[--end] = 0x30 + (lo - q * 10);
      lo = q;
    }
  }

  private byte(b: number): void {
    this.reserve(1);
    this.buf[this.pos++] = b;
  }

  /**
   * Copies the bytes written since `start` into `target` (which must have room) and returns their count: a short
   * piece kept to be repeated with `raw(target, count)`.
   */
  copyOut(start: number, target: Uint8Array): number {
    const buf = this.buf;
    const n = this.pos - start;
    for (let i = 0; i < n; i++) target[i] = buf[start + i] as number;
    return n;
  }

  /** Appends the first `n` bytes of `src`, canonical UTF-8 already (a part written once and repeated, e.g. per frame of a batch). */
  raw(src: Uint8Array, n = src.length): void {
    this.reserve(n);
    const buf = this.buf;
    let p = this.pos;
    if (n > RAW_LOOP_BYTES) {
      buf.set(src, p);
      this.pos = p + n;
      return;
    }
    for (let i = 0; i < n; i++) buf[p++] = src[i] as number;
    this.pos = p;
  }

  /**
   * Appends the lowercase hex of `bytes`, a string of char codes below 256 (a digest in Node's "latin1" form): the
   * digest is written once, as bytes, instead of as a 64-character hex string first.
   */
  hexOfLatin1(bytes: string): void {
    const n = bytes.length;
    this.reserve(2 * n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = bytes.charCodeAt(i);
      buf[p++] = HEX_DIGITS[(c >> 4) & 15] as number;
      buf[p++] = HEX_DIGITS[c & 15] as number;
    }
    this.pos = p;
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
  }
}

let idle: CanonicalWriter | undefined = new CanonicalWriter();

/**
 * Runs `use` with an empty writer. One writer is reused; a nested call (a getter that encodes, while the outer
 * encode is under way) gets a fresh one, so writes never interleave.
 */
export function withCanonicalWriter<T>(use: (writer: CanonicalWriter) => T): T {
  const writer = idle ?? new CanonicalWriter();
  idle = undefined;
  try {
    return use(writer);
  } finally {
    writer.reset();
    idle = writer;
  }
}

/** Writes the digits of `n` (an int32, 0 ≤ n < 10^9) at `p`; returns the position after them. */
function writeDigits(buf: Uint8Array, p: number, n: number): number {
  const digits = n >= 1e5 ? (n >= 1e7 ? (n >= 1e8 ? 9 : 8) : n >= 1e6 ? 7 : 6) : n >= 100 ? (n >= 1e4 ? 5 : n >= 1e3 ? 4 : 3) : n >= 10 ? 2 : 1;
  let end = p + digits;
  const after = end;
  do {
    const q = (n / 10) | 0;
    buf[--end] = 0x30 + (n - q * 10);
    n = q;
  } while (n > 0);
  return after;
}

/** UTF-8 of `"key":`, or `undefined` for a key holding a lone surrogate. */
function keyPrefix(key: string): Uint8Array | undefined {
  const cached = keyPrefixes.get(key);
  if (cached !== undefined) return cached;
  if (!isWellFormed(key)) return undefined;
  const prefix = encoder.encode(JSON.stringify(key));
  const withColon = new Uint8Array(prefix.length + 1);
  withColon.set(prefix);
  withColon[prefix.length] = COLON;
  if (key.length <= KEY_CACHE_KEY_LENGTH) {
    if (keyPrefixes.size >= KEY_CACHE_ENTRIES) keyPrefixes.clear();
    keyPrefixes.set(key, withColon);
  }
  return withColon;
}

/**
 * Own enumerable keys in UTF-16 code-unit order (RFC 8785; `<` on strings and `Array#sort` both compare code
 * units, and keys are distinct, so any correct sort gives the same order). Keys often arrive sorted already.
 */
function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  const n = keys.length;
  if (n > SMALL_OBJECT) {
    for (let i = 1; i < n; i++) {
      if (!((keys[i - 1] as string) < (keys[i] as string))) return keys.sort();
    }
    return keys;
  }
  for (let i = 1; i < n; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    if (!((keys[j] as string) > key)) continue;
    do {
      keys[j + 1] = keys[j] as string;
      j--;
    } while (j >= 0 && (keys[j] as string) > key);
    keys[j + 1] = key;
  }
  return keys;
}
