/**
 * The columnar transport `walFrameCodec` declares: frames cross to the store's worker as one array per field
 * instead of one nested object per frame. Structured clone of arrays of primitives costs a fraction of cloning
 * ~3 objects per frame, and this hand-off is most of the main thread's cost per persisted change (docs/design.md
 * §3.15). A field every frame of a message shares (the envelope's constants, one wave's timestamp) crosses once,
 * and a payload `{ kind, path, value }` naming the frame's own path crosses as its value alone. The worker rebuilds
 * the same frames.
 */
import { withCanonicalWriter } from "../codec/canonical-writer.js";
import { parseJsonBytes } from "../codec/json.js";
import type { ColumnarTransport } from "../codec/types.js";
import type { WALBaseChange, WALFrame } from "./frame.js";

/**
 * Frames in columns, as ONE flat array (a message of one frame clones fastest with the fewest containers):
 * `[n, varied, text, ...first, then per frame: path, payload, frame_seq]`. Every field but those three (the envelope's
 * constants, a wave's timestamps, checksum, format, the payload's kind) is in `first` (the first frame's value, one
 * slot per `Shared` field) while every frame pushed so far had that value (by Object.is); `varied` is null while no
 * shared field varied, else per field null (still shared) or its value for every frame (a Float64Array while all are
 * numbers, see `Column`). The payload is its `value`
 * alone when it is exactly `{ kind: string, path: <the frame's path>, value }`, or after `encodeAhead` the end of its
 * canonical text in `text` (null until then). Empty columns (n = 0) already hold the first frame's three slots,
 * unfilled.
 */
export type FrameColumns = unknown[];

/** The shared fields, indexes into `first` and `varied`. `kind` is the payload's when it crosses as its value alone. */
const enum Shared {
  lifecycle,
  structure,
  version,
  tNs,
  /** `change.seq`; undefined when the envelope has none. */
  seq,
  envelopeLifecycle,
  kind,
  frameTNs,
  checksum,
  formatVersion,
  /** True when the frame's payload slot holds the end of its canonical text in TEXT (`encodeAhead`). Not a field. */
  payloadText,
  count,
}

/** Slots of the flat array. */
const N = 0;
const VARIED = 1;
/** The canonical text of the payloads `encodeAhead` turned to text, one run of UTF-8 bytes (null before). */
const TEXT = 2;
const FIRST = 3;
const FRAMES = FIRST + Shared.count;
const PER_FRAME = 3;

/**
 * The two shape checks below accept a plain object holding every required key and of the optional ones only those
 * it defines: what `at` rebuilds (it writes every required field, and an optional one only when defined), so the
 * rebuilt value is the same. Switches, not Sets: a paced write runs both once per frame (~90 ns less, §3.29).
 */
function plainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

/** A frame: t, lifecycle, path, change, frame_seq, frame_t_ns; optional checksum, format_version. */
function frameShaped(v: unknown): v is Record<string, unknown> {
  if (!plainObject(v)) return false;
  let found = 0;
  for (const k in v) {
    switch (k) {
      case "t":
      case "lifecycle":
      case "path":
      case "change":
      case "frame_seq":
      case "frame_t_ns":
        found++;
        break;
      case "checksum":
      case "format_version":
        if (v[k] === undefined) return false;
        break;
      default:
        return false;
    }
  }
  return found === 6;
}

/** An envelope: structure, version, t_ns, lifecycle, change; optional seq. */
function envelopeShaped(v: unknown): v is Record<string, unknown> {
  if (!plainObject(v)) return false;
  let found = 0;
  for (const k in v) {
    switch (k) {
      case "structure":
      case "version":
      case "t_ns":
      case "lifecycle":
      case "change":
        found++;
        break;
      case "seq":
        if (v[k] === undefined) return false;
        break;
      default:
        return false;
    }
  }
  return found === 5;
}

/** True when `p` is a plain `{ kind: string, path, value }` (exactly those keys, value defined) with `path` given. */
function valueOnly(p: unknown, path: unknown): p is { kind: string; path: unknown; value: unknown } {
  if (typeof p !== "object" || p === null || Object.getPrototypeOf(p) !== Object.prototype) return false;
  let keys = 0;
  for (const k in p) {
    if (k !== "kind" && k !== "path" && k !== "value") return false;
    keys++;
  }
  const q = p as Record<string, unknown>;
  return keys === 3 && typeof q.kind === "string" && q.path === path && q.value !== undefined;
}

/**
 * A field's value per frame: numbers (a burst's wave stamps) in a Float64Array while every value is a number, with room
 * past the count (readers go by the count), else a plain array. The reader of a structured clone allocates a heap
 * number per double of an array: a 1000-frame burst's columns took the store's actor 82 ns a frame to receive with
 * its two stamp columns as arrays, 51 ns as Float64Arrays; posting and pushing cost the same within ~10 ns (§3.34).
 * A float64 holds any JS number exactly, -0 and NaN included.
 */
type Column = unknown[] | Float64Array;
type Varied = Array<Column | null> | null;

/**
 * Frame i's payload text as [the batch's text bytes, start, end]: it ends at the offset its slot holds and starts
 * where the text of the last frame before it with one ended. Undefined when the columns do not hold that.
 */
function payloadText(cols: FrameColumns, i: number): [Uint8Array, number, number] | undefined {
  const bytes = cols[TEXT];
  const end = cols[FRAMES + PER_FRAME * i + 1];
  if (!(bytes instanceof Uint8Array) || typeof end !== "number") return undefined;
  let start = 0;
  for (let j = i - 1; j >= 0; j--) {
    if (shared(cols, Shared.payloadText, j) === true) {
      start = cols[FRAMES + PER_FRAME * j + 1] as number;
      break;
    }
  }
  const valid = Number.isSafeInteger(start) && start >= 0 && start <= end && end <= bytes.length;
  return valid ? [bytes, start, end] : undefined;
}

/** The shared fields by name, for readers of the layout (frame-columns-encoder.ts). */
export const SHARED_FIELDS = {
  lifecycle: Shared.lifecycle,
  structure: Shared.structure,
  version: Shared.version,
  tNs: Shared.tNs,
  seq: Shared.seq,
  envelopeLifecycle: Shared.envelopeLifecycle,
  kind: Shared.kind,
  frameTNs: Shared.frameTNs,
  checksum: Shared.checksum,
  formatVersion: Shared.formatVersion,
  payloadText: Shared.payloadText,
} as const;
export type SharedField = keyof typeof SHARED_FIELDS;

/**
 * The columns read in place, without rebuilding frames (frame-columns-encoder.ts): per frame its path, payload (its
 * `value` alone when `kind` is defined) and frame_seq; a shared field's one value, or its value per frame.
 */
export const columnsLayout = Object.freeze({
  count: (cols: FrameColumns): number => cols[N] as number,
  path: (cols: FrameColumns, i: number): unknown => cols[FRAMES + PER_FRAME * i],
  payload: (cols: FrameColumns, i: number): unknown => cols[FRAMES + PER_FRAME * i + 1],
  frameSeq: (cols: FrameColumns, i: number): unknown => cols[FRAMES + PER_FRAME * i + 2],
  /** The field's value per frame when it varied within the batch, else undefined. */
  perFrame: (cols: FrameColumns, f: SharedField): ArrayLike<unknown> | undefined => (cols[VARIED] as Varied)?.[SHARED_FIELDS[f]] ?? undefined,
  /** The field's value in every frame (meaningful when `perFrame` is undefined). */
  shared: (cols: FrameColumns, f: SharedField): unknown => cols[FIRST + SHARED_FIELDS[f]],
  /** Frame i's payload text (`encodeAhead`) as [bytes, start, end], or undefined when it is not valid. */
  text: payloadText,
});

/** Records shared field `f` of the frame being pushed as frame number `n`. */
function share(cols: FrameColumns, f: Shared, n: number, v: unknown): void {
  if (n === 0) {
    cols[FIRST + f] = v;
    return;
  }
  const varied = cols[VARIED] as Varied;
  const col = varied?.[f];
  if (col) {
    if (!(col instanceof Float64Array)) col.push(v);
    else if (typeof v !== "number") {
      // The first value that is no number: the column becomes a plain array.
      const list: unknown[] = Array.from(col.subarray(0, n));
      list.push(v);
      varied![f] = list;
    } else if (n < col.length) col[n] = v;
    else {
      const grown = new Float64Array(2 * col.length);
      grown.set(col);
      grown[n] = v;
      varied![f] = grown;
    }
    return;
  }
  const first = cols[FIRST + f];
  if (Object.is(first, v)) return;
  // The first frame that differs: this field becomes one entry per frame (packed arrays: see `empty`).
  const all = varied ?? (cols[VARIED] = noneVaried());
  if (typeof first === "number" && typeof v === "number") {
    const nums = new Float64Array(Math.max(16, 2 * (n + 1)));
    nums.fill(first, 0, n);
    nums[n] = v;
    (all as Array<Column | null>)[f] = nums;
    return;
  }
  const list: unknown[] = [];
  for (let i = 0; i < n; i++) list.push(first);
  list.push(v);
  (all as Array<Column | null>)[f] = list;
}

function shared(cols: FrameColumns, f: Shared, i: number): unknown {
  const col = (cols[VARIED] as Varied)?.[f];
  return col ? col[i] : cols[FIRST + f];
}

// Literals, not `new Array(n)`: a holey array is cloned in V8's sparse form, index by index (measured ~30 % slower).
const noneVaried = (): Array<Column | null> => [null, null, null, null, null, null, null, null, null, null, null];
// With the first frame's slots too (filled by its push, never read before: readers go by the count). Pushing them
// onto a 12-slot literal grew its store to 34 slots, ~290 bytes of garbage per paced write (§3.29).
const emptyColumns = (): FrameColumns => [0, null, null, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined];
// The literals' lengths follow the Shared fields: a field added there must be added to both.
if (noneVaried().length !== Shared.count || emptyColumns().length !== FRAMES + PER_FRAME) throw new Error("frame-columns: slot literals out of step with Shared");

/**
 * The parts of one value frame `{ t: "c", lifecycle, path, change: { structure, version, t_ns: tNs, lifecycle,
 * change: { kind, path, value } }, frame_seq, frame_t_ns: tNs, checksum, format_version }` (no envelope seq, `value`
 * defined): what attach's one-value wave saves (design §3.48). Reused by its caller, never kept.
 */
export interface ValueFrameParts {
  lifecycle: string;
  structure: string;
  version: number;
  kind: string;
  path: string;
  value: unknown;
  frameSeq: number;
  tNs: number;
  checksum: string;
  formatVersion: number;
}

/**
 * A kv tier's save of the value frame `parts` describe under `key`, without the frame's three objects (design
 * §3.48): true when it took the frame as `save(key, frame)` would have (same room, same columns, same refusals),
 * false, having done nothing, when it cannot (a filter, another transport): the caller then saves the frame.
 * Throws what `save` throws (closed, backpressure). Engine kv tiers of `walFrameCodec` have it.
 */
export const saveValueFrame: unique symbol = Symbol("graphrefly.saveValueFrame");
/**
 * `standsInFor`: the one `save` the lane replaces. A caller takes the lane only when the tier's `save` is that one: a
 * wrapper of the tier with a save of its own (Object.create, a Proxy) has that save called, never skipped (r318 F1).
 */
export type ValueFrameLane = ((key: string, parts: ValueFrameParts) => boolean) & { readonly standsInFor?: unknown };

/**
 * `frameColumns.push` of the frame `parts` describe, without building it: the same slots in the same order (so the
 * same columns, the same bytes stored). No shape checks: the parts are the frame's fields by construction.
 */
export function pushValueFrame(cols: FrameColumns, parts: ValueFrameParts): void {
  const n = cols[N] as number;
  share(cols, Shared.lifecycle, n, parts.lifecycle);
  share(cols, Shared.structure, n, parts.structure);
  share(cols, Shared.version, n, parts.version);
  share(cols, Shared.tNs, n, parts.tNs);
  share(cols, Shared.seq, n, undefined);
  share(cols, Shared.envelopeLifecycle, n, parts.lifecycle);
  share(cols, Shared.kind, n, parts.kind);
  share(cols, Shared.frameTNs, n, parts.tNs);
  share(cols, Shared.checksum, n, parts.checksum);
  share(cols, Shared.formatVersion, n, parts.formatVersion);
  share(cols, Shared.payloadText, n, false);
  if (n === 0) {
    cols[FRAMES] = parts.path;
    cols[FRAMES + 1] = parts.value;
    cols[FRAMES + 2] = parts.frameSeq;
  } else cols.push(parts.path, parts.value, parts.frameSeq);
  cols[N] = n + 1;
}

export const frameColumns: ColumnarTransport<WALFrame, FrameColumns> = Object.freeze({
  empty: emptyColumns,

  /** Only a value of exactly the frame shape fits (so rebuilding it loses nothing); the value rule checks the rest. */
  push(cols: FrameColumns, value: WALFrame): boolean {
    const frame: unknown = value;
    if (!frameShaped(frame) || frame.t !== "c") return false;
    const env = frame.change;
    if (!envelopeShaped(env)) return false;
    const n = cols[N] as number;
    const path = frame.path;
    const payload = env.change;
    const split = valueOnly(payload, path);
    share(cols, Shared.lifecycle, n, frame.lifecycle);
    share(cols, Shared.structure, n, env.structure);
    share(cols, Shared.version, n, env.version);
    share(cols, Shared.tNs, n, env.t_ns);
    share(cols, Shared.seq, n, env.seq);
    share(cols, Shared.envelopeLifecycle, n, env.lifecycle);
    share(cols, Shared.kind, n, split ? payload.kind : undefined);
    share(cols, Shared.frameTNs, n, frame.frame_t_ns);
    share(cols, Shared.checksum, n, frame.checksum);
    share(cols, Shared.formatVersion, n, frame.format_version);
    share(cols, Shared.payloadText, n, false);
    if (n === 0) {
      cols[FRAMES] = path;
      cols[FRAMES + 1] = split ? payload.value : payload;
      cols[FRAMES + 2] = frame.frame_seq;
    } else cols.push(path, split ? payload.value : payload, frame.frame_seq);
    cols[N] = n + 1;
    return true;
  },

  /**
   * Each payload the canonical writer's fast path answers becomes its canonical text (the engine calls this for a
   * burst while the store's actor trails, design §3.33): the batch's texts as one run of bytes, each payload slot the
   * offset its text ends at. Bytes clone and copy far cheaper than the objects they stand for, which the actor would
   * rebuild and walk again (and cheaper than a string per payload). Any other payload stays a value (per-frame flags).
   */
  encodeAhead(cols: FrameColumns): void {
    const n = cols[N] as number;
    if (n === 0 || cols[TEXT] !== null) return;
    // One writer for the whole batch: each text ends where the next starts (a payload without one writes nothing).
    withCanonicalWriter((w) => {
      const ends: number[] = [];
      let texts = 0;
      for (let i = 0; i < n; i++) {
        if (w.value(cols[FRAMES + PER_FRAME * i + 1], "reject")) {
          ends.push(w.length);
          texts++;
        } else ends.push(-1);
      }
      if (texts === 0) return;
      cols[TEXT] = w.copy();
      const flags: boolean[] = [];
      for (let i = 0; i < n; i++) {
        const end = ends[i]!;
        if (end >= 0) cols[FRAMES + PER_FRAME * i + 1] = end;
        flags.push(end >= 0);
      }
      if (texts === n) cols[FIRST + Shared.payloadText] = true;
      else ((cols[VARIED] as Varied) ?? (cols[VARIED] = noneVaried()))![Shared.payloadText] = flags;
    });
  },

  /** Absent optional fields stay absent (an own property set to undefined would differ from the frame pushed). */
  at(cols: FrameColumns, i: number): WALFrame {
    const base = FRAMES + PER_FRAME * i;
    const path = cols[base];
    const slot = cols[base + 1];
    // Parsed as the codec decodes (a wide integer back to its bigint), so the value encodes to the same text.
    const text = shared(cols, Shared.payloadText, i) === true ? payloadText(cols, i) : undefined;
    const payload = text === undefined ? slot : parseJsonBytes(text[0].subarray(text[1], text[2]));
    const kind = shared(cols, Shared.kind, i);
    const change: Record<string, unknown> = {
      structure: shared(cols, Shared.structure, i),
      version: shared(cols, Shared.version, i),
      t_ns: shared(cols, Shared.tNs, i),
      lifecycle: shared(cols, Shared.envelopeLifecycle, i),
      change: kind === undefined ? payload : { kind, path, value: payload },
    };
    const seq = shared(cols, Shared.seq, i);
    if (seq !== undefined) change.seq = seq;
    const frame: Record<string, unknown> = {
      t: "c",
      lifecycle: shared(cols, Shared.lifecycle, i),
      path,
      change: change as unknown as WALBaseChange,
      frame_seq: cols[base + 2],
      frame_t_ns: shared(cols, Shared.frameTNs, i),
    };
    const checksum = shared(cols, Shared.checksum, i);
    if (checksum !== undefined) frame.checksum = checksum;
    const formatVersion = shared(cols, Shared.formatVersion, i);
    if (formatVersion !== undefined) frame.format_version = formatVersion;
    return frame as unknown as WALFrame;
  },
});
