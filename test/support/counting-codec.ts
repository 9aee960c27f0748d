/** A JSON codec that counts its encode calls (tests that prove a value is encoded once). */
import { jsonCodec } from "../../src/codec/json.js";
import type { Codec } from "../../src/codec/types.js";

export function countingCodec<T>(): Codec<T> & { encodes: number } {
  const c = {
    name: "counting-json",
    version: 1,
    encodes: 0,
    encode(v: T) {
      c.encodes++;
      return jsonCodec.encode(v);
    },
    decode: (b: Uint8Array) => jsonCodec.decode(b) as T,
  };
  return c;
}
