/** What the refusal tests share: codecs that refuse one value for good, and a promise's outcome as text. */
import { jsonCodecFor } from "../../src/codec/json.js";
import { CodecError } from "../../src/errors.js";
import type { Codec } from "../../src/codec/types.js";
import { jsonCodec } from "../../src/codec/json.js";
import type { WALFrame } from "../../src/wal/index.js";

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

/** JSON frames, refusing any frame that carries the value "bad" (a custom WAL codec's refusal on the main thread). */
export const refusingBadFrames: Codec<WALFrame> = {
  name: "refusing-bad-frames",
  version: 1,
  encode(frame) {
    const bytes = jsonCodec.encode(frame);
    if (Buffer.from(bytes).toString("utf8").includes('"bad"')) throw new CodecError("encode-failed", "cannot encode bad");
    return bytes;
  },
  decode: (bytes) => jsonCodec.decode(bytes) as WALFrame,
};

/** "resolved", or "rejected <code>": outcomes compare in one assertion. */
export function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "resolved",
    (err: unknown) => `rejected ${(err as { code?: string }).code}`,
  );
}
