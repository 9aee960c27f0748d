/**
 * Byte buffers for encoded values. Layer 0.
 */
import type { Codec } from "./types.js";

// Pooled bytes are carved from slabs this large; a value above an eighth of a slab gets its own buffer.
const SLAB_BYTES = 256 * 1024;
const MAX_POOLED = SLAB_BYTES / 8;
let slab = new Uint8Array(0);
let slabUsed = 0;

/**
 * Room for `n` encoded bytes that the caller fills completely (the memory is not zeroed). Small buffers are
 * carved from a large slab, never reused (a full slab is dropped, and freed once its last view is), instead of
 * getting a backing store each: on the write path allocating and garbage-collecting one ArrayBuffer per frame
 * cost more than encoding it, and Node's own 8 KiB Buffer pool still cost a new one every ~16 frames.
 * The result is a plain Uint8Array view that may share its ArrayBuffer with unrelated bytes: it is for bytes
 * that live only until a backend write returns, never for bytes handed to callers or other threads.
 */
export function pooledBytes(n: number): Uint8Array {
  if (n > MAX_POOLED) return new Uint8Array(n);
  if (slabUsed + n > slab.length) {
    const b = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slab = new Uint8Array(b.buffer, b.byteOffset, SLAB_BYTES);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + n);
  slabUsed += n;
  return out;
}

/** `bytes` when it is the whole of its ArrayBuffer (so transferring it moves nothing else), else such a copy. */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/**
 * A value already encoded by its codec (a columnar encoder, types.ts), held where a value waits for its flush:
 * the flush's encoder passes its bytes through as they are.
 */
export class Encoded {
  constructor(readonly bytes: Uint8Array) {}
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
export function transientEncoder<T>(codec: Codec<T>): (value: T | Encoded) => Uint8Array {
  const encode = (transientEncoders.get(codec) as ((value: T) => Uint8Array) | undefined) ?? ((value: T) => codec.encode(value));
  return (value) => (value instanceof Encoded ? value.bytes : encode(value));
}
