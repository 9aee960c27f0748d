/** What the refusal tests share: a codec that refuses one value for good, and a promise's outcome as text. */
import { jsonCodecFor } from "../../src/codec/json.js";
import { CodecError } from "../../src/errors.js";
import type { Codec } from "../../src/codec/types.js";

/** JSON that can never encode the value "bad" (nor an array holding it), the way a custom codec refuses a value. */
export function refusingBad<T>(): Codec<T> {
  const json = jsonCodecFor<T>();
  return {
    name: "refusing-bad",
    version: 1,
    encode(value) {
      if (value === "bad" || (Array.isArray(value) && value.includes("bad"))) throw new CodecError("encode-failed", "cannot encode bad");
      return json.encode(value);
    },
    decode: (bytes) => json.decode(bytes),
  };
}

/** "resolved", or "rejected <code>": outcomes compare in one assertion. */
export function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "resolved",
    (err: unknown) => `rejected ${(err as { code?: string }).code}`,
  );
}
