/**
 * The columnar transport `walFrameCodec` declares: frames cross to the store's worker as one array per field
 * instead of one nested object per frame. Structured clone of arrays of primitives costs a fraction of cloning
 * ~3 objects per frame, and this hand-off is most of the main thread's cost per persisted change (docs/design.md
 * §3.15). The worker rebuilds the same frames.
 */
import type { ColumnarTransport } from "../codec/types.js";
import type { WALBaseChange, WALFrame } from "./frame.js";

export interface FrameColumns {
  lifecycle: unknown[];
  path: unknown[];
  structure: unknown[];
  version: unknown[];
  tNs: unknown[];
  /** `change.seq`; undefined when the envelope has none. */
  seq: unknown[];
  envelopeLifecycle: unknown[];
  payload: unknown[];
  frameSeq: unknown[];
  frameTNs: unknown[];
  checksum: unknown[];
  formatVersion: unknown[];
}

const FRAME_KEYS = new Set(["t", "lifecycle", "path", "change", "frame_seq", "frame_t_ns", "checksum", "format_version"]);
const ENVELOPE_KEYS = new Set(["structure", "version", "t_ns", "seq", "lifecycle", "change"]);

function plainWithKeys(v: unknown, allowed: ReadonlySet<string>): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const k in v) if (!allowed.has(k)) return false;
  return true;
}

export const frameColumns: ColumnarTransport<WALFrame, FrameColumns> = Object.freeze({
  empty: (): FrameColumns => ({
    lifecycle: [],
    path: [],
    structure: [],
    version: [],
    tNs: [],
    seq: [],
    envelopeLifecycle: [],
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
    cols.lifecycle.push(frame.lifecycle);
    cols.path.push(frame.path);
    cols.structure.push(env.structure);
    cols.version.push(env.version);
    cols.tNs.push(env.t_ns);
    cols.seq.push(env.seq);
    cols.envelopeLifecycle.push(env.lifecycle);
    cols.payload.push(env.change);
    cols.frameSeq.push(frame.frame_seq);
    cols.frameTNs.push(frame.frame_t_ns);
    cols.checksum.push(frame.checksum);
    cols.formatVersion.push(frame.format_version);
    return true;
  },

  /** Absent optional fields stay absent (an own property set to undefined would differ from the frame pushed). */
  at(cols: FrameColumns, i: number): WALFrame {
    const change: Record<string, unknown> = {
      structure: cols.structure[i],
      version: cols.version[i],
      t_ns: cols.tNs[i],
      lifecycle: cols.envelopeLifecycle[i],
      change: cols.payload[i],
    };
    if (cols.seq[i] !== undefined) change.seq = cols.seq[i];
    const frame: Record<string, unknown> = {
      t: "c",
      lifecycle: cols.lifecycle[i],
      path: cols.path[i],
      change: change as unknown as WALBaseChange,
      frame_seq: cols.frameSeq[i],
      frame_t_ns: cols.frameTNs[i],
    };
    if (cols.checksum[i] !== undefined) frame.checksum = cols.checksum[i];
    if (cols.formatVersion[i] !== undefined) frame.format_version = cols.formatVersion[i];
    return frame as unknown as WALFrame;
  },
});
