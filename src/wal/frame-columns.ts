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
 * `[n, varied, ...first, then per frame: path, payload, frame_seq]`. Every field but those three (the envelope's
 * constants, a wave's timestamps, checksum, format, the payload's kind) is in `first` (the first frame's value, one
 * slot per `Shared` field) while every frame pushed so far had that value (by Object.is); `varied` is null while no
 * shared field varied, else per field null (still shared) or its value for every frame. The payload is its `value`
 * alone when it is exactly `{ kind: string, path: <the frame's path>, value }`. Empty columns (n = 0) already hold the
 * first frame's three slots, unfilled.
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
  /** True when the frame's payload slot holds its canonical JSON text (`encodeAhead`), not the value. Not a field. */
  payloadText,
  count,
}

/** Slots of the flat array. */
const N = 0;
const VARIED = 1;
const FIRST = 2;
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

type Varied = Array<unknown[] | null> | null;

const utf8 = new TextEncoder();

/**
 * The canonical JSON text of a payload the canonical writer's fast path answers, else undefined (the value then
 * crosses as it is, and the actor's encoder gives the codec's bytes or error).
 */
function canonicalText(v: unknown): string | undefined {
  return withCanonicalWriter((w) => (w.value(v, "reject") ? w.text() : undefined));
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
  perFrame: (cols: FrameColumns, f: SharedField): readonly unknown[] | undefined => (cols[VARIED] as Varied)?.[SHARED_FIELDS[f]] ?? undefined,
  /** The field's value in every frame (meaningful when `perFrame` is undefined). */
  shared: (cols: FrameColumns, f: SharedField): unknown => cols[FIRST + SHARED_FIELDS[f]],
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
    col.push(v);
    return;
  }
  if (Object.is(cols[FIRST + f], v)) return;
  // The first frame that differs: this field becomes one entry per frame (packed arrays: see `empty`).
  const list: unknown[] = [];
  for (let i = 0; i < n; i++) list.push(cols[FIRST + f]);
  list.push(v);
  const all = varied ?? (cols[VARIED] = noneVaried());
  (all as Array<unknown[] | null>)[f] = list;
}

function shared(cols: FrameColumns, f: Shared, i: number): unknown {
  const col = (cols[VARIED] as Varied)?.[f];
  return col ? col[i] : cols[FIRST + f];
}

// Literals, not `new Array(n)`: a holey array is cloned in V8's sparse form, index by index (measured ~30 % slower).
const noneVaried = (): Array<unknown[] | null> => [null, null, null, null, null, null, null, null, null, null, null];
// With the first frame's slots too (filled by its push, never read before: readers go by the count). Pushing them
// onto a 12-slot literal grew its store to 34 slots, ~290 bytes of garbage per paced write (§3.29).
const emptyColumns = (): FrameColumns => [0, null, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined];
// The literals' lengths follow the Shared fields: a field added there must be added to both.
if (noneVaried().length !== Shared.count || emptyColumns().length !== FRAMES + PER_FRAME) throw new Error("frame-columns: slot literals out of step with Shared");

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
   * burst while the store's actor trails, design §3.33): a string clones and copies far cheaper than the objects it
   * stands for, which the actor would rebuild and walk again. Any other payload stays a value (per-frame flags).
   */
  encodeAhead(cols: FrameColumns): void {
    const n = cols[N] as number;
    if (n === 0 || (cols[VARIED] as Varied)?.[Shared.payloadText] || cols[FIRST + Shared.payloadText] === true) return;
    const texts: Array<string | undefined> = [];
    let all = true;
    let any = false;
    for (let i = 0; i < n; i++) {
      const text = canonicalText(cols[FRAMES + PER_FRAME * i + 1]);
      texts.push(text);
      if (text === undefined) all = false;
      else any = true;
    }
    if (!any) return;
    const flags: boolean[] = [];
    for (let i = 0; i < n; i++) {
      const text = texts[i];
      if (text !== undefined) cols[FRAMES + PER_FRAME * i + 1] = text;
      flags.push(text !== undefined);
    }
    if (all) cols[FIRST + Shared.payloadText] = true;
    else ((cols[VARIED] as Varied) ?? (cols[VARIED] = noneVaried()))![Shared.payloadText] = flags;
  },

  /** Absent optional fields stay absent (an own property set to undefined would differ from the frame pushed). */
  at(cols: FrameColumns, i: number): WALFrame {
    const base = FRAMES + PER_FRAME * i;
    const path = cols[base];
    const slot = cols[base + 1];
    // Parsed as the codec decodes (a wide integer back to its bigint), so the value encodes to the same text.
    const payload = shared(cols, Shared.payloadText, i) === true ? parseJsonBytes(utf8.encode(slot as string)) : slot;
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
