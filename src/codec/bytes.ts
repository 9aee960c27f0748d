/**
 * Byte buffers for encoded values. Layer 0.
 */
import type { Codec } from "./types.js";

/**
 * Room for `n` encoded bytes that the caller fills completely (the memory is not zeroed). Small buffers are
 * carved from Node's shared Buffer pool, as `Buffer.allocUnsafe` does, instead of getting a backing store each:
 * on the write path allocating and garbage-collecting one ArrayBuffer per frame cost more than encoding it.
 * The result is a plain Uint8Array view that may share its ArrayBuffer with unrelated bytes: it is for bytes
 * that live only until a backend write returns, never for bytes handed to callers or other threads.
 */
export function pooledBytes(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** `bytes` when it is the whole of its ArrayBuffer (so transferring it moves nothing else), else such a copy. */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/** Encoders into pooled bytes, registered by the built-in codecs (keyed by codec object). */
const transientEncoders = new WeakMap<object, (value: never) => Uint8Array>();

/** Registers `encode` as the pooled-bytes twin of `codec.encode` (same bytes, same errors). */
export function registerTransientEncoder<T>(codec: Codec<T>, encode: (value: T) => Uint8Array): void {
  transientEncoders.set(codec, encode as (value: never) => Uint8Array);
}

/**
 * The encoder a tier flush uses: the codec's pooled-bytes twin when it has one (the bytes only have to live
 * until the backend write returns), else its own `encode`.
 */
export function transientEncoder<T>(codec: Codec<T>): (value: T) => Uint8Array {
  const pooled = transientEncoders.get(codec) as ((value: T) => Uint8Array) | undefined;
  return pooled ?? ((value: T) => codec.encode(value));
}
