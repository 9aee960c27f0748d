export type { Codec, JsonValue } from "./types.js";
export { jsonCodec, jsonCodecFor, canonicalJson } from "./json.js";
export { bigintJsonCodec, bigintJsonCodecFor } from "./bigint.js";
