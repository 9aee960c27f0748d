/**
 * A codec of strings as UTF-8 that runs on the main thread (the engine's workers cannot import it): its bytes travel
 * to the store actor as they are, so a test knows a value's pending bytes exactly.
 */
import type { Codec } from "../../src/codec/types.js";

export const textCodec: Codec<string> = {
  name: "text",
  version: 1,
  encode: (v) => new TextEncoder().encode(v),
  decode: (b) => new TextDecoder().decode(b),
};
