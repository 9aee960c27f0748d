/**
 * The columnar transport `walFrameCodec` declares: frames cross to the store's worker as one array per field
 * instead of one nested object per frame. Structured clone of arrays of primitives costs a fraction of cloning
 * ~3 objects per frame, and this hand-off is most of the main thread's cost per persisted change (docs/design.md
 * §3.15). A field every frame of a message shares (the envelope's constants, one wave's timestamp) crosses once,
 * and a payload `{ kind, path, value }` naming the frame's own path crosses as its value alone. The worker rebuilds
 * the same frames.
 */
import type { ColumnarTransport } from "../codec/types.js";
import type { WALBaseChange, WALFrame } from "./frame.js";

/**
 * Frames in columns: per frame its path, payload and frame_seq; every other field (the envelope's constants, a
 * wave's timestamps, checksum, format, the payload's kind) in `first` while every frame pushed so far had the
 * first one's value (by Object.is), and one column per frame only for a field that varied. Few arrays: a paced
 * message of one frame clones ~1 µs faster than with one array per field.
 */
export interface FrameColumns {
  /** Frames pushed. */
  n: number;
  path: unknown[];
  /** The payload, or its `value` when it is exactly `{ kind: string, path: <the frame's path>, value }`. */
  payload: unknown[];
  frameSeq: unknown[];
  /** The first frame's value of each shared field, in `Shared` order. */
  first: unknown[];
  /** null while no shared field varied; else per field null (still shared) or its value for every frame. */
  varied: Array<unknown[] | null> | null;
}

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
  count,
}

const FRAME_KEYS = new Set(["t", "lifecycle", "path", "change", "frame_seq", "frame_t_ns", "checksum", "format_version"]);
const ENVELOPE_KEYS = new Set(["structure", "version", "t_ns", "seq", "lifecycle", "change"]);

function plainWithKeys(v: unknown, allowed: ReadonlySet<string>): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const k in v) if (!allowed.has(k)) return false;
  return true;
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

/** Records shared field `f` of the frame being pushed as frame number `n` (fields go in order). */
function share(cols: FrameColumns, f: Shared, n: number, v: unknown): void {
  if (n === 0) {
    cols.first.push(v);
    return;
  }
  const col = cols.varied?.[f];
  if (col) {
    col.push(v);
    return;
  }
  if (Object.is(cols.first[f], v)) return;
  // The first frame that differs: this field becomes one entry per frame.
  const list = new Array<unknown>(n).fill(cols.first[f]);
  list.push(v);
  (cols.varied ??= new Array<unknown[] | null>(Shared.count).fill(null))[f] = list;
}

function shared(cols: FrameColumns, f: Shared, i: number): unknown {
  const col = cols.varied?.[f];
  return col ? col[i] : cols.first[f];
}

export const frameColumns: ColumnarTransport<WALFrame, FrameColumns> = Object.freeze({
  empty: (): FrameColumns => ({ n: 0, path: [], payload: [], frameSeq: [], first: [], varied: null }),

  /** Only a value of exactly the frame shape fits (so rebuilding it loses nothing); the value rule checks the rest. */
  push(cols: FrameColumns, value: WALFrame): boolean {
    const frame: unknown = value;
    if (!plainWithKeys(frame, FRAME_KEYS) || frame.t !== "c") return false;
    const env = frame.change;
    if (!plainWithKeys(env, ENVELOPE_KEYS)) return false;
    const n = cols.n;
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
    cols.path.push(path);
    cols.payload.push(split ? payload.value : payload);
    cols.frameSeq.push(frame.frame_seq);
    cols.n = n + 1;
    return true;
  },

  /** Absent optional fields stay absent (an own property set to undefined would differ from the frame pushed). */
  at(cols: FrameColumns, i: number): WALFrame {
    const path = cols.path[i];
    const kind = shared(cols, Shared.kind, i);
    const change: Record<string, unknown> = {
      structure: shared(cols, Shared.structure, i),
      version: shared(cols, Shared.version, i),
      t_ns: shared(cols, Shared.tNs, i),
      lifecycle: shared(cols, Shared.envelopeLifecycle, i),
      change: kind === undefined ? cols.payload[i] : { kind, path, value: cols.payload[i] },
    };
    const seq = shared(cols, Shared.seq, i);
    if (seq !== undefined) change.seq = seq;
    const frame: Record<string, unknown> = {
      t: "c",
      lifecycle: shared(cols, Shared.lifecycle, i),
      path,
      change: change as unknown as WALBaseChange,
      frame_seq: cols.frameSeq[i],
      frame_t_ns: shared(cols, Shared.frameTNs, i),
    };
    const checksum = shared(cols, Shared.checksum, i);
    if (checksum !== undefined) frame.checksum = checksum;
    const formatVersion = shared(cols, Shared.formatVersion, i);
    if (formatVersion !== undefined) frame.format_version = formatVersion;
    return frame as unknown as WALFrame;
  },
});
