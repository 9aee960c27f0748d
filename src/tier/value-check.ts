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

/** The baseline record `vouchBaseline` named, and its estimated size (the weight its check answers). */
let vouchedRecord: object | undefined;
let vouchedRecordSize = UNKNOWN_SIZE;

/**
 * `vouchWalFrame` for a baseline record attach built (undefined after its save): the JSON codecs' check of that one
 * save answers `size` without the strict walk (~12 ms at 10,000 nodes, issue 13). The caller's proof: it built the
 * record from its own graph's slices, whose values, meta and paths passed the rule when they entered the graph
 * (json-utils.ts toFrozenJson; a graph value nests shallow enough for a baseline), and froze every container from
 * the record down to each slice, so a tier's `filter` or `keyOf` in between cannot change it. A record from any
 * other graph (one the caller did not build) is never vouched for: it is walked, and refused as before.
 */
export function vouchBaseline(record: object | undefined, size: number): void {
  vouchedRecord = record;
  vouchedRecordSize = record === undefined ? UNKNOWN_SIZE : size;
}

/** The "reject" rule also holds for the bigint codec's "tag": a vouched record passes both. */
const jsonCheck =
  (bigints: "reject" | "tag"): ValueCheck =>
  (v) =>
    v !== undefined && v === vouchedRecord ? vouchedRecordSize : storableJsonSize(v, bigints);

const checks = new Map<unknown, ValueCheck>([
  [jsonCodec, jsonCheck("reject")],
  [bigintJsonCodec, jsonCheck("tag")],
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
