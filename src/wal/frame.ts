/**
 * WAL frame shape (docs/protocol.md §6.1, §6.4–§6.6) and the structural check applied to frames read from (and
 * written to) storage. Layer 0.
 */
import { isWideInteger as isWideBigint } from "../codec/strict.js";
import { CodecError } from "../errors.js";
import { isRecord } from "../base/records.js";

export type Lifecycle = "spec" | "data" | "ownership";

/** Replay phases in order (docs/protocol.md §6.6); within a phase frames apply by ascending `frame_seq`. */
export const REPLAY_ORDER: readonly Lifecycle[] = Object.freeze(["spec", "data", "ownership"] as const);

/** Codec/encoding version written into every frame; not part of the checksum body (docs/protocol.md §6.3, §6.4). */
export const WAL_FORMAT_VERSION = 1;

/** DS-14 BaseChange envelope (docs/protocol.md §6.5). `seq` is omitted from JSON when absent. */
export interface WALBaseChange<T = unknown> {
  structure: string;
  version: number | string;
  /** Wall clock in ns: a bigint when stored as an integer no number holds exactly (a u64, docs/protocol.md §2.6). */
  t_ns: number | bigint;
  seq?: number;
  lifecycle: Lifecycle;
  change: T;
}

export interface WALFrame<T = unknown> {
  t: "c";
  lifecycle: Lifecycle;
  path: string;
  change: WALBaseChange<T>;
  frame_seq: number;
  /** Wall clock in ns: a bigint when stored as an integer no number holds exactly (a u64, docs/protocol.md §2.6). */
  frame_t_ns: number | bigint;
  /** 64-char lowercase hex SHA-256 of the canonical body; `""` when a stored frame had none. */
  checksum: string;
  format_version: number;
}

/** A frame before sealing: what the graph layer builds; the checksum and format version are added later. */
export type WALFrameBody<T = unknown> = Omit<WALFrame<T>, "checksum" | "format_version">;

const LIFECYCLES: ReadonlySet<unknown> = new Set<unknown>(REPLAY_ORDER);

export function isLifecycle(value: unknown): value is Lifecycle {
  return LIFECYCLES.has(value);
}

/** What is wrong with a would-be frame: `field` is a dotted name such as `frame_seq` or `change.t_ns`. */
export interface WalFrameProblem {
  readonly field: string;
  readonly message: string;
}

/**
 * Structural check shared by decode (`parseWalFrame`) and encode (the frame codec, `sealWalFrame`), so we never
 * write a frame we would refuse to read. A missing `checksum` / `format_version` is not a problem: decode
 * defaults them and encode fills them in.
 */
export function findWalFrameProblem(value: unknown): WalFrameProblem | undefined {
  if (!isRecord(value)) return problem("frame", "a JSON object", value);
  if (value.t !== "c") return problem("t", 'exactly "c"', value.t);
  if (!isLifecycle(value.lifecycle)) return problem("lifecycle", '"spec", "data" or "ownership"', value.lifecycle);
  if (typeof value.path !== "string") return problem("path", "a string", value.path);
  if (!isSafeNonNegativeInteger(value.frame_seq)) {
    return problem("frame_seq", "a non-negative safe integer", value.frame_seq);
  }
  if (!isNonNegativeInteger(value.frame_t_ns)) {
    return problem("frame_t_ns", "a non-negative integer (a bigint only where no number holds it exactly)", value.frame_t_ns);
  }
  if (value.checksum !== undefined && typeof value.checksum !== "string") {
    return problem("checksum", "a string", value.checksum);
  }
  if (value.format_version !== undefined && !isSafeNonNegativeInteger(value.format_version)) {
    return problem("format_version", "a non-negative safe integer", value.format_version);
  }
  const env = value.change;
  if (!isRecord(env)) return problem("change", "a BaseChange object", env);
  if (typeof env.structure !== "string") return problem("change.structure", "a string", env.structure);
  if (typeof env.version !== "number" && typeof env.version !== "string") {
    return problem("change.version", "a number or a string", env.version);
  }
  if (typeof env.t_ns !== "number" && !isWideInteger(env.t_ns)) {
    return problem("change.t_ns", "a number (or a bigint where no number holds it exactly)", env.t_ns);
  }
  if (env.seq !== undefined && typeof env.seq !== "number") return problem("change.seq", "a number", env.seq);
  if (!isLifecycle(env.lifecycle)) {
    return problem("change.lifecycle", '"spec", "data" or "ownership"', env.lifecycle);
  }
  // JSON has no undefined: a payload of undefined would be dropped on encode and the frame unreadable.
  if (env.change === undefined) return problem("change.change", "present (use null for no payload)", undefined);
  return undefined;
}

/**
 * Validates a decoded JSON value as a WAL frame and returns a normalized frame holding exactly the eight
 * fields (the `change` envelope is kept by reference: the checksum covers it as stored). Missing
 * `format_version` → 1 (docs/protocol.md §6.4); missing `checksum` → `""`, so a torn frame is detected by verification
 * rather than rejected here. Throws `CodecError("decode-failed", …, { field })`.
 */
export function parseWalFrame(value: unknown): WALFrame {
  const found = findWalFrameProblem(value);
  if (found !== undefined) throw new CodecError("decode-failed", found.message, { field: found.field });
  const v = value as Omit<WALFrame, "checksum" | "format_version"> & Partial<WALFrame>;
  return {
    t: v.t,
    lifecycle: v.lifecycle,
    path: v.path,
    change: v.change,
    frame_seq: v.frame_seq,
    frame_t_ns: v.frame_t_ns,
    checksum: v.checksum ?? "",
    format_version: v.format_version ?? WAL_FORMAT_VERSION,
  };
}

/** A bigint plain JSON carries (any other would be written, and read back, as a number). */
function isWideInteger(value: unknown): value is bigint {
  return typeof value === "bigint" && isWideBigint(value);
}

/** An integer ≥ 0: a number, or a wide bigint (an exact u64 as the Rust implementation writes it). */
function isNonNegativeInteger(value: unknown): value is number | bigint {
  if (isWideInteger(value)) return value > 0n;
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

function isSafeNonNegativeInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function problem(field: string, expected: string, got: unknown): WalFrameProblem {
  return { field, message: `WAL frame field "${field}" must be ${expected}, got ${describe(got)}` };
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing (missing)";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return `a ${typeof value}`;
}
