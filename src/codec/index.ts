export type { Codec, ColumnarTransport, JsonValue } from "./types.js";
export { jsonCodec, jsonCodecFor, canonicalJson } from "./json.js";
export { bigintJsonCodec, bigintJsonCodecFor } from "./bigint.js";
export { assertStorableJson, MAX_JSON_DEPTH, type BigintMode } from "./strict.js";
export { MAX_INTEGER_DIGITS } from "./integer-limit.js";
