/**
 * Where a write is accepted (an inline tier's save, an engine proxy's save before structured clone), values
 * bound for a built-in codec are checked against that codec's value rule, so a value is refused the same way
 * in every mode and cadence: at acceptance, before it is buffered, cloned or discarded by a rollback
 * (docs/design.md §3.16). Values for other codecs are refused when their codec encodes them.
 */
import { bigintJsonCodec } from "../codec/bigint.js";
import { jsonCodec } from "../codec/json.js";
import { assertStorableJson } from "../codec/strict.js";
import { walFrameCodec } from "../wal/codec.js";
import { assertStorableWalFrame } from "../wal/storable.js";

/** Throws the CodecError("encode-failed", …, { path }) the codec would throw for `value`. */
export type ValueCheck = (value: unknown) => void;

/** The frame `vouchWalFrame` named: the one save in progress whose frame needs no walk. */
let vouched: object | undefined;

/**
 * Names the frame the caller is about to save (undefined after it) as one that passes the frame rule, so the
 * check of that one save skips the walk. The caller's proof: it built the frame itself, froze it (frame,
 * envelope, payload) and its values are already checked (graph/json-utils.ts isCheckedJson), so no tier in
 * between can have changed it. Identity, not a mark on the frame: nothing else is ever vouched for.
 */
export function vouchWalFrame(frame: object | undefined): void {
  vouched = frame;
}

const checks = new Map<unknown, ValueCheck>([
  [jsonCodec, (v) => assertStorableJson(v, "reject")],
  [bigintJsonCodec, (v) => assertStorableJson(v, "tag")],
  [
    walFrameCodec,
    (v) => {
      if (v !== vouched || v === undefined) assertStorableWalFrame(v);
    },
  ],
]);

/** The value rule of a built-in codec (undefined for any other codec). */
export function valueCheckFor(codec: unknown): ValueCheck | undefined {
  return checks.get(codec);
}

/** Runs `check`; a refused value goes to `refuse` (the tier's refusal: the next flush rejects) and false is returned. */
export function admit(check: ValueCheck | undefined, value: unknown, refuse: (err: Error) => void): boolean {
  if (check === undefined) return true;
  try {
    check(value);
    return true;
  } catch (err) {
    refuse(err as Error);
    return false;
  }
}
