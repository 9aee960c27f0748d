/**
 * Folding a stored graph the way the library does: the baseline restore would accept, the frames above it read
 * and screened by the library's torn-write policy (`screenFrames`: a bad tail is skipped, a bad frame mid-stream
 * throws RestoreError `torn-write-mid-stream`), then the library's pure `foldWal`. Used by `export`.
 */
import { RestoreError } from "../errors.js";
import { screenFrames, type CollectedFrame } from "../graph/apply.js";
import { foldWal } from "../graph/fold.js";
import type { FoldResult, GraphCheckpointRecord, TornWriteInfo } from "../graph/storage-types.js";
import type { Progress } from "./progress.js";
import { frameKeySeq, type GraphKeys, readBaseline, readFrames } from "./scan.js";
import type { CliBackend } from "./store.js";

export interface StoredFold {
  baseline: GraphCheckpointRecord;
  fold: FoldResult;
  /** Damaged frames the policy skipped (at most the tail). */
  skipped: TornWriteInfo[];
}

/** Folds `keys.name` up to `targetSeq` (default: everything). */
export function foldStoredGraph(backend: CliBackend, keys: GraphKeys, targetSeq: number | undefined, progress: Progress): StoredFold {
  const read = readBaseline(backend, keys.name);
  if (read.state !== "ok" || read.record.lifecycle === "spec") {
    const why = read.state === "missing" ? "nothing is stored under the graph name" : read.state === "invalid" ? read.reason : "it is a spec projection";
    throw new RestoreError("baseline-missing", `no usable baseline for graph "${keys.name}": ${why}`, { graph: keys.name });
  }
  const baseline = read.record;
  const target = targetSeq ?? Number.POSITIVE_INFINITY;
  const aboveKeys = keys.frameKeys.filter((k) => frameKeySeq(k) > baseline.seq);
  // The tail is the last frame above the baseline before the target filter (a bad frame below --at is mid-stream).
  const tailSeq = aboveKeys.length > 0 ? frameKeySeq(aboveKeys[aboveKeys.length - 1]!) : -1;
  const wanted = aboveKeys.filter((k) => frameKeySeq(k) <= target);
  const entries: CollectedFrame[] = [];
  progress.start(`read ${keys.name}`, wanted.length);
  for (const f of readFrames(backend, keys.name, wanted)) {
    entries.push(f.ok ? { key: f.key, seq: f.seq, frame: f.frame } : { key: f.key, seq: f.seq, problem: { reason: "decode-failed", detail: f.error } });
    progress.advance();
  }
  progress.stop();
  const skipped: TornWriteInfo[] = [];
  const { frames } = screenFrames(entries, tailSeq, true, (info) => {
    skipped.push(info);
    return undefined; // keep the library's default decision
  });
  return { baseline, fold: foldWal(baseline, frames, { targetSeq: target, verify: false }), skipped };
}
