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
 * A "shared" column holds one entry while every frame pushed so far had the same value in it (by Object.is), else
 * one entry per frame: after `n` pushes its length is 1 or `n`.
 */
export interface FrameColumns {
  /** Frames pushed. */
  n: number;
  lifecycle: unknown[]; // shared
  path: unknown[];
  structure: unknown[]; // shared
  version: unknown[]; // shared
  tNs: unknown[]; // shared
  /** `change.seq`; undefined when the envelope has none. Shared. */
  seq: unknown[];
  envelopeLifecycle: unknown[]; // shared
  /** The payload's `kind` when it crosses as its value alone (see `payload`), else undefined. Shared. */
  kind: unknown[];
  /** The payload, or its `value` when it is exactly `{ kind: string, path: <the frame's path>, value }`. */
  payload: unknown[];
  frameSeq: unknown[];
  frameTNs: unknown[]; // shared
  checksum: unknown[]; // shared
  formatVersion: unknown[]; // shared
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

/** Appends `v` to a shared column holding `n` entries' worth. */
function share(col: unknown[], n: number, v: unknown): void {
  if (n === 0 || col.length !== 1) {
    col.push(v); // the first entry, or one per frame already
    return;
  }
  if (Object.is(col[0], v)) return;
  // The first frame that differs: the column becomes one entry per frame.
  const c = col[0];
  for (let k = 1; k < n; k++) col.push(c);
  col.push(v);
}

function shared(col: unknown[], i: number): unknown {
  return col.length === 1 ? col[0] : col[i];
}

export const frameColumns: ColumnarTransport<WALFrame, FrameColumns> = Object.freeze({
  empty: (): FrameColumns => ({
    n: 0,
    lifecycle: [],
    path: [],
    structure: [],
    version: [],
    tNs: [],
    seq: [],
    envelopeLifecycle: [],
    kind: [],
    payload: [],
    frameSeq: [],
    frameTNs: [],
    checksum: [],
    formatVersion: [],
  }),

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
    share(cols.lifecycle, n, frame.lifecycle);
    cols.path.push(path);
    share(cols.structure, n, env.structure);
    share(cols.version, n, env.version);
    share(cols.tNs, n, env.t_ns);
    share(cols.seq, n, env.seq);
    share(cols.envelopeLifecycle, n, env.lifecycle);
    share(cols.kind, n, split ? payload.kind : undefined);
    cols.payload.push(split ? payload.value : payload);
    cols.frameSeq.push(frame.frame_seq);
    share(cols.frameTNs, n, frame.frame_t_ns);
    share(cols.checksum, n, frame.checksum);
    share(cols.formatVersion, n, frame.format_version);
    cols.n = n + 1;
    return true;
  },

  /** Absent optional fields stay absent (an own property set to undefined would differ from the frame pushed). */
  at(cols: FrameColumns, i: number): WALFrame {
    const path = cols.path[i];
    const kind = shared(cols.kind, i);
    const change: Record<string, unknown> = {
      structure: shared(cols.structure, i),
      version: shared(cols.version, i),
      t_ns: shared(cols.tNs, i),
      lifecycle: shared(cols.envelopeLifecycle, i),
      change: kind === undefined ? cols.payload[i] : { kind, path, value: cols.payload[i] },
    };
    const seq = shared(cols.seq, i);
    if (seq !== undefined) change.seq = seq;
    const frame: Record<string, unknown> = {
      t: "c",
      lifecycle: shared(cols.lifecycle, i),
      path,
      change: change as unknown as WALBaseChange,
      frame_seq: cols.frameSeq[i],
      frame_t_ns: shared(cols.frameTNs, i),
    };
    const checksum = shared(cols.checksum, i);
    if (checksum !== undefined) frame.checksum = checksum;
    const formatVersion = shared(cols.formatVersion, i);
    if (formatVersion !== undefined) frame.format_version = formatVersion;
    return frame as unknown as WALFrame;
  },
});
