/**
 * `bigintJsonCodec` (docs/protocol.md §2.3): canonical JSON where every bigint is written as `{"$bigint":"<radix-10>"}`
 * and read back by a strict reviver. Caveat kept from the protocol: a genuine `{"$bigint":"42"}` object decodes
 * as `42n`. Layer 0.
 */
import { registerTransientEncoder } from "./bytes.js";
import { canonicalBytes, parseJsonBytes } from "./json.js";
import { tooWideToken } from "./integer-limit.js";
import type { Codec } from "./types.js";

const BIGINT_TAG = "$bigint";
const RADIX_10_INTEGER = /^-?(?:0|[1-9]\d*)$/;

/** Revives only a non-null, non-array object with exactly one own key `$bigint` holding a radix-10 integer string. */
function reviveBigint(_key: string, value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  if (!Object.hasOwn(value, BIGINT_TAG) || Object.keys(value).length !== 1) return value;
  const tag: unknown = (value as Record<string, unknown>)[BIGINT_TAG];
  if (typeof tag !== "string" || !RADIX_10_INTEGER.test(tag)) return value;
  // BigInt(text) costs superlinear time in the digits: refused past the codecs' limit, as encode refuses it.
  const tooWide = tooWideToken(tag.startsWith("-") ? tag.length - 1 : tag.length);
  if (tooWide !== undefined) throw tooWide;
  return BigInt(tag);
}

export const bigintJsonCodec: Codec<unknown> = Object.freeze({
  name: "json-bigint",
  version: 1,
  encode: (value: unknown): Uint8Array => canonicalBytes(value, "tag"),
  decode: (bytes: Uint8Array): unknown => parseJsonBytes(bytes, reviveBigint),
});
registerTransientEncoder(bigintJsonCodec, (value) => canonicalBytes(value, "tag", true));

/** The same `bigintJsonCodec` object, typed for `T` (no runtime cost, no runtime check of `T`). */
export function bigintJsonCodecFor<T>(): Codec<T> {
  return bigintJsonCodec as Codec<T>;
}
