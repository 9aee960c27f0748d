/**
 * Calls into a codec the library did not write. A user codec may throw anything (a plain Error, a string, a
 * non-Error object); callers branch on CodecError's `code`, so every such throw becomes CodecError("encode-failed")
 * or CodecError("decode-failed") with the original as its `cause`. A CodecError passes as it is (the built-ins' own,
 * with their `details.path`). Layer: codec.
 */
import { CodecError } from "../errors.js";
import type { Codec } from "./types.js";

/** `err`, thrown by codec `codecName`'s encode or decode, as the CodecError a caller branches on. */
export function codecFailure(err: unknown, op: "encode" | "decode", codecName: string): CodecError {
  if (err instanceof CodecError) return err;
  const code = op === "encode" ? "encode-failed" : "decode-failed";
  // The codec's own words as the message (what its author wrote, and what callers matched before), its name in details.
  return new CodecError(code, describeThrown(err), { codec: codecName }, err);
}

/** `codec.encode(value)`, its throw as CodecError("encode-failed"). */
export function encodeWith<T>(codec: Codec<T>, value: T): Uint8Array {
  try {
    return codec.encode(value);
  } catch (err) {
    throw codecFailure(err, "encode", codec.name);
  }
}

/** `codec.decode(bytes)`, its throw as CodecError("decode-failed"). */
export function decodeWith<T>(codec: Codec<T>, bytes: Uint8Array): T {
  try {
    return codec.decode(bytes);
  } catch (err) {
    throw codecFailure(err, "decode", codec.name);
  }
}

/** A message for whatever was thrown; never throws itself (a hostile object's toString may). */
function describeThrown(err: unknown): string {
  try {
    if (err instanceof Error) return err.message;
    if (typeof err === "string") return err;
    if (typeof err === "object" && err !== null) {
      const message = (err as { message?: unknown }).message;
      if (typeof message === "string") return message;
      return JSON.stringify(err) ?? String(err);
    }
    return String(err);
  } catch {
    return "a value that could not be described";
  }
}
