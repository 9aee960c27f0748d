/**
 * Where a write is accepted (an inline tier's save, an engine proxy's save before structured clone), values
 * bound for a built-in codec are checked against that codec's value rule, so a value is refused the same way
 * in every mode and cadence: at acceptance, before it is buffered, cloned or discarded by a rollback
 * (docs/design.md §3.16). Values for other codecs are refused when their codec encodes them.
 */
import { bigintJsonCodec } from "../codec/bigint.js";
import { jsonCodec } from "../codec/json.js";
import { storableJsonSize } from "../codec/strict.js";
import { walFrameCodec } from "../wal/codec.js";
import { assertStorableWalFrame } from "../wal/storable.js";

/**
 * Throws the CodecError("encode-failed", …, { path }) the codec would throw for `value`; else returns about how
 * many bytes it will encode to (the write's backpressure weight, docs/design.md §3.19), or UNKNOWN_SIZE.
 */
export type ValueCheck = (value: unknown) => number;

/** A value admitted without walking it (a vouched frame, a codec without a value rule): weighed by estimate. */
export const UNKNOWN_SIZE = -1;

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

/** The frames `vouchWalFrames` named: those of the one unit of saves in progress (KvStorageTier.saveMany). */
let vouchedMany: ReadonlySet<unknown> | undefined;

/** `vouchWalFrame` for the frames of one unit of saves (a wave's frames saved at once); undefined after it. */
export function vouchWalFrames(frames: ReadonlySet<object> | undefined): void {
  vouchedMany = frames;
}

const checks = new Map<unknown, ValueCheck>([
  [jsonCodec, (v) => storableJsonSize(v, "reject")],
  [bigintJsonCodec, (v) => storableJsonSize(v, "tag")],
  [
    walFrameCodec,
    (v) => (v !== undefined && (v === vouched || vouchedMany?.has(v) === true) ? UNKNOWN_SIZE : assertStorableWalFrame(v)),
  ],
]);

/** The value rule of a built-in codec (undefined for any other codec). */
export function valueCheckFor(codec: unknown): ValueCheck | undefined {
  return checks.get(codec);
}

/**
 * Runs `check`: the value's estimated encoded size when it passes (UNKNOWN_SIZE when nothing walked it), or false
 * when it is refused (the refusal went to `refuse`). Compare with `=== false`: a size is a number.
 */
export function admit(check: ValueCheck | undefined, value: unknown, refuse: (err: Error) => void): number | false {
  if (check === undefined) return UNKNOWN_SIZE;
  try {
    return check(value);
  } catch (err) {
    refuse(err as Error);
    return false;
  }
}

/**
 * `admit` without reporting: the estimated size (UNKNOWN_SIZE when nothing walked it), or the refusal, which the
 * caller reports once the write found room (a full tier answers backpressure first, whatever the value).
 */
export function measure(check: ValueCheck | undefined, value: unknown): number | Error {
  if (check === undefined) return UNKNOWN_SIZE;
  try {
    return check(value);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}
