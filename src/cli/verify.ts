/**
 * `verify <store> [--graph NAME] [--json]`: checks every frame's checksum and the seq chain, and says whether
 * restore would succeed. Restore's torn-write rule (docs/protocol.md §7.7): a bad frame that is the last one above the
 * baseline (the tail) is skipped; a bad frame earlier (mid-stream) aborts. Frames at or below the baseline are
 * never read by restore (compaction may keep some), so damage there is reported but does not block restore.
 * As in the library, a frame whose own frame_seq disagrees with its key counts as torn ("decode-failed").
 */
import { Command } from "commander";
import { canonicalJson } from "../codec/json.js";
import { EXIT } from "./errors.js";
import { selectGraphs } from "./inspect.js";
import { printLine } from "./output.js";
import { withStoreOptions, type ProgressOptions, type StoreCommandOptions } from "./options.js";
import { createProgress, type Progress } from "./progress.js";
import { frameKeySeq, type GraphKeys, readBaseline, readFrames } from "./scan.js";
import { withStore, type CliBackend } from "./store.js";

export type Verdict = "clean" | "restorable" | "not-restorable";

/** Where a damaged frame sits relative to what restore replays. */
export type FramePosition = "tail" | "mid-stream" | "below-baseline";

export type Problem =
  | {
      kind: "torn";
      seq: number;
      key: string;
      reason: "checksum-mismatch" | "decode-failed";
      detail: string | null;
      position: FramePosition;
      restorable: boolean;
    }
  /** Seqs `from..to` are missing above the baseline: restore would silently lose those changes. */
  | { kind: "gap"; from: number; to: number; restorable: false }
  /** Two frames claim the same frame_seq (one of them is also reported torn: its key disagrees). */
  | { kind: "duplicate"; seq: number; key: string; restorable: true }
  | { kind: "baseline-missing" | "baseline-invalid" | "baseline-spec-only"; detail: string | null; restorable: false };

export interface GraphVerification {
  name: string;
  baselineSeq: number | null;
  frames: number;
  /** Frames restore would replay (above the baseline). */
  framesAbove: number;
  verdict: Verdict;
  problems: Problem[];
}

export function verifyGraph(backend: CliBackend, keys: GraphKeys, progress: Progress): GraphVerification {
  const problems: Problem[] = [];
  const baseline = readBaseline(backend, keys.name);
  let baselineSeq: number | null = null;
  if (baseline.state === "ok" && baseline.record.lifecycle === "spec") {
    problems.push({ kind: "baseline-spec-only", detail: "the record is a topology-only spec snapshot", restorable: false });
  } else if (baseline.state === "ok") {
    baselineSeq = baseline.record.seq;
  } else if (baseline.state === "invalid") {
    problems.push({ kind: "baseline-invalid", detail: baseline.reason, restorable: false });
  } else {
    problems.push({ kind: "baseline-missing", detail: null, restorable: false });
  }

  const seqs = keys.frameKeys.map(frameKeySeq);
  const above = baselineSeq ?? -1;
  const tailSeq = seqs.length > 0 && seqs[seqs.length - 1]! > above ? seqs[seqs.length - 1]! : undefined;
  const positionOf = (seq: number): FramePosition =>
    seq <= above ? "below-baseline" : seq === tailSeq ? "tail" : "mid-stream";

  const claimed = new Set<number>();
  let framesAbove = 0;
  // With a baseline the chain must continue at its seq + 1 (the baseline consumed its own seq).
  let expected: number | undefined = baselineSeq === null ? undefined : baselineSeq + 1;
  progress.start(`verify ${keys.name}`, keys.frameKeys.length);
  for (const read of readFrames(backend, keys.name, keys.frameKeys)) {
    const { seq, key } = read;
    if (seq > above) {
      framesAbove++;
      if (expected !== undefined && seq > expected) problems.push({ kind: "gap", from: expected, to: seq - 1, restorable: false });
      expected = seq + 1;
    }
    const detail = !read.ok
      ? read.error
      : read.frame.frame_seq !== seq
        ? `frame_seq ${read.frame.frame_seq} does not match its key`
        : undefined;
    if (detail !== undefined || (read.ok && !read.checksumOk)) {
      const position = positionOf(seq);
      problems.push({
        kind: "torn",
        seq,
        key,
        reason: detail === undefined ? "checksum-mismatch" : "decode-failed",
        detail: detail ?? null,
        position,
        restorable: position !== "mid-stream",
      });
    }
    if (read.ok) {
      const frameSeq = read.frame.frame_seq;
      if (claimed.has(frameSeq)) problems.push({ kind: "duplicate", seq: frameSeq, key, restorable: true });
      claimed.add(frameSeq);
    }
    progress.advance();
  }
  progress.stop();

  const verdict: Verdict = problems.some((p) => !p.restorable)
    ? "not-restorable"
    : problems.length > 0
      ? "restorable"
      : "clean";
  return { name: keys.name, baselineSeq, frames: keys.frameKeys.length, framesAbove, verdict, problems };
}

export function exitCodeOf(verdicts: readonly Verdict[]): number {
  if (verdicts.includes("not-restorable")) return EXIT.notRestorable;
  return verdicts.includes("restorable") ? EXIT.restorable : EXIT.ok;
}

const VERDICT_TEXT: Record<Verdict, string> = {
  clean: "clean",
  restorable: "restorable (restore skips damaged frames)",
  "not-restorable": "NOT restorable",
};

function describeProblem(p: Problem): string {
  switch (p.kind) {
    case "torn": {
      const effect =
        p.position === "tail"
          ? "tail: restore skips it"
          : p.position === "mid-stream"
            ? "mid-stream: restore aborts (torn-write-mid-stream)"
            : "below the baseline: restore never reads it";
      return `torn frame seq ${p.seq} (${p.key}): ${p.reason}${p.detail === null ? "" : ` (${p.detail})`}; ${effect}`;
    }
    case "gap":
      return `gap: seq ${p.from === p.to ? p.from : `${p.from}..${p.to}`} missing above the baseline; restore would lose those changes`;
    case "duplicate":
      return `frame_seq ${p.seq} appears twice (again under ${p.key})`;
    case "baseline-missing":
      return "no baseline record: restore fails (baseline-missing)";
    case "baseline-invalid":
      return `baseline record is not valid: ${p.detail ?? ""}`;
    case "baseline-spec-only":
      return "baseline record is a spec-only snapshot: restore fails (baseline-missing)";
  }
}

function printHuman(results: readonly GraphVerification[], exitCode: number): void {
  for (const g of results) {
    const base = g.baselineSeq === null ? "no usable baseline" : `baseline seq ${g.baselineSeq}`;
    printLine(`graph ${JSON.stringify(g.name)}: ${base}, ${g.frames} frames (${g.framesAbove} above the baseline)`);
    for (const p of g.problems) printLine(`  ${describeProblem(p)}`);
    printLine(`  ${VERDICT_TEXT[g.verdict]}`);
  }
  const overall = exitCode === EXIT.ok ? "clean" : exitCode === EXIT.restorable ? "restorable" : "not-restorable";
  printLine(`${results.length === 0 ? "no graphs; " : ""}result: ${overall} (exit ${exitCode})`);
}

export function verifyCommand(): Command {
  return withStoreOptions(
    new Command("verify")
      .description("check every frame's checksum and the seq chain; exit 0 clean, 1 restorable with skipped frames, 2 not restorable")
      .argument("<store>", "SQLite file or file-backend directory")
      .option("--graph <name>", "only this graph")
      .option("--json", "machine-readable output (one JSON document)"),
  ).action(async (store: string, opts: StoreCommandOptions & ProgressOptions & { graph?: string; json?: boolean }) => {
    const exitCode = await withStore(store, { kind: opts.backend, mode: "read" }, (s) => {
      const progress = createProgress(opts.progress);
      const results = selectGraphs(s.backend, opts.graph, store).map((k) => verifyGraph(s.backend, k, progress));
      const code = exitCodeOf(results.map((r) => r.verdict));
      if (opts.json) printLine(canonicalJson({ exitCode: code, graphs: results, store: { kind: s.kind, path: s.path } }));
      else printHuman(results, code);
      return code;
    });
    process.exitCode = exitCode;
  });
}
