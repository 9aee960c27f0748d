/**
 * `verify <store> [--graph NAME] [--json]`: reads every graph with the library's stored-graph reader (the one
 * restore uses) and says what restore would do: the verdict is restore's outcome, by the same rules. A bad frame
 * that is the last one above the baseline (the tail) is skipped; a bad frame earlier (mid-stream) aborts; a seq
 * missing above the baseline is a lost change. Frames at or below the baseline are never read by restore
 * (compaction may keep some), so damage there is reported but does not block restore. Rows another program wrote
 * into a SQLite store with the wrong types (a key not TEXT, a value not BLOB) are listed by key with what was found;
 * restore cannot read past them, so they make the store not restorable.
 */
import { Command } from "commander";
import { canonicalJson } from "../codec/json.js";
import { RestoreError, StorageError } from "../errors.js";
import { foldStoredGraph } from "../persistence/fold.js";
import { backendSource, surveyStoredGraph, type FramePosition, type StoredGraphSource } from "../persistence/stored-graph.js";
import { EXIT } from "./errors.js";
import { notReachedLine, selectGraphs, type UnreadValue } from "./inspect.js";
import { printLine, plural, terminalText } from "./output.js";
import { nonNegativeInt, SCAN_LIMIT_HELP, withStoreOptions, type ProgressOptions, type ScanOptions, type StoreCommandOptions } from "./options.js";
import { createProgress, type Progress } from "./progress.js";
import { outOfRangeFrameKeys, unrestorableSnapshot } from "./scan.js";
import { WAL_FRAME_SEQ_PAD } from "../wal/keys.js";
import { withStore } from "./store.js";

export type Verdict = "clean" | "restorable" | "not-restorable";

export type { FramePosition };

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
  /** Seqs `from..to` are missing above the baseline: restore fails (wal-gap) rather than lose those changes. */
  | { kind: "gap"; from: number; to: number; restorable: false }
  /** A row of the wrong type (see CorruptRow) stopped reading this graph: restore would fail with corrupt-store. */
  | { kind: "corrupt-row"; key: string; found: string; restorable: false }
  /** Two frames claim the same frame_seq (one of them is also reported torn: its key disagrees). */
  | { kind: "duplicate"; seq: number; key: string; restorable: true }
  | {
      kind: "baseline-missing" | "baseline-invalid" | "baseline-spec-only" | "baseline-unknown-format";
      detail: string | null;
      restorable: false;
    }
  /** A well-formed baseline no graph can take (a node path no graph accepts, a node under a mount not listed…). */
  | { kind: "baseline-unrestorable"; detail: string; restorable: false }
  /**
   * A key shaped like a frame key whose seq is above 2^53 − 1 (Number.MAX_SAFE_INTEGER): no reader reads it, so
   * restore ignores it and whatever it holds is never replayed. `seq` is the key's 20 digits, as text.
   */
  | { kind: "seq-out-of-range"; key: string; seq: string; restorable: true }
  /**
   * A good frame setting (`node.set`) or invalidating a node the stored graph does not have at its seq: not in the
   * baseline, not added by an earlier frame (or removed by one). Restore ignores it, so its change is never replayed.
   */
  | { kind: "unknown-node"; seq: number; key: string; path: string; change: "node.set" | "node.invalidate"; restorable: true }
  /** A frame the graph refuses outright (restore fails phase-failed there), found by folding as restore reads. */
  | { kind: "frame-unrestorable"; seq: number; detail: string; restorable: false };

/** A SQLite row of the wrong type: its key (0x-hex when the key itself is a BLOB) and what it holds. */
export interface CorruptRow {
  key: string;
  found: string;
}

/** The row a StorageError("corrupt-store") names, or undefined for any other failure. */
function corruptRowOf(err: unknown): CorruptRow | undefined {
  if (!(err instanceof StorageError) || err.code !== "corrupt-store") return undefined;
  const { key, found } = err.details;
  return typeof key === "string" && typeof found === "string" ? { key, found } : undefined;
}

export interface GraphVerification {
  name: string;
  baselineSeq: number | null;
  frames: number;
  /** Frames restore would replay (above the baseline). */
  framesAbove: number;
  verdict: Verdict;
  problems: Problem[];
}

const BASELINE_KIND = {
  missing: "baseline-missing",
  invalid: "baseline-invalid",
  "other-graph": "baseline-invalid",
  "spec-only": "baseline-spec-only",
  "unknown-version": "baseline-unknown-format",
} as const;

export async function verifyGraph(source: StoredGraphSource, name: string, progress: Progress): Promise<GraphVerification> {
  let problems: Problem[] = [];
  let claimed = new Set<number>();
  const survey = await surveyStoredGraph(source, name, {
    onStart(keys) {
      problems = [];
      claimed = new Set();
      progress.start(`verify ${name}`, keys.length);
    },
    onFinding(f) {
      if (f.kind === "gap") problems.push({ kind: "gap", from: f.from, to: f.to, restorable: false });
      else {
        const { frame_seq: seq, key, reason, detail } = f.info;
        // A checksum mismatch says it all; other reasons carry what failed.
        const why = reason === "checksum-mismatch" ? null : (detail ?? null);
        problems.push({ kind: "torn", seq, key, reason, detail: why, position: f.position, restorable: f.restorable });
      }
    },
    onFrame(read) {
      if (read.ok) {
        const seq = read.frame.frame_seq;
        if (claimed.has(seq)) problems.push({ kind: "duplicate", seq, key: read.key, restorable: true });
        claimed.add(seq);
      }
      progress.advance();
    },
  });
  progress.stop();
  const { check } = survey.baseline;
  if (!check.ok) {
    problems.unshift({ kind: BASELINE_KIND[check.problem], detail: check.problem === "missing" ? null : check.reason, restorable: false });
  }
  // Keys restore never reads as frames (it ignores them: the verdict stays restore's), named, not hidden.
  for (const key of await outOfRangeFrameKeys(source, name)) {
    problems.push({ kind: "seq-out-of-range", key, seq: key.slice(-WAL_FRAME_SEQ_PAD), restorable: true });
  }
  // A baseline that reads well but that no graph can take fails every restore: verify said clean (exit 0).
  const unrestorable = check.ok ? unrestorableSnapshot(check.record.snapshot) : undefined;
  if (unrestorable !== undefined) problems.unshift({ kind: "baseline-unrestorable", detail: unrestorable, restorable: false });
  // Frames the graph refuses outright fail every restore too, and frames setting a node the graph does not have are
  // ignored by it (verify said clean); the fold (restore's reading, one more pass) finds both.
  const folded = survey.restorable && unrestorable === undefined ? await foldFindings(source, name) : { noNode: [], refused: undefined };
  problems.push(...folded.noNode);
  const refused = folded.refused;
  if (refused !== undefined) problems.push(refused);
  // The verdict is restore's outcome; the problem list explains it.
  const restorable = survey.restorable && unrestorable === undefined && refused === undefined;
  const verdict: Verdict = !restorable ? "not-restorable" : problems.length > 0 ? "restorable" : "clean";
  return {
    name,
    baselineSeq: check.ok ? check.record.seq : null,
    frames: survey.keys.length,
    framesAbove: survey.framesAbove,
    verdict,
    problems,
  };
}

/**
 * What folding the graph as restore reads it finds: the first frame restore's replay would refuse outright (the fold
 * fails phase-failed there, WalFolder.add), and the frames before it setting or invalidating a node the graph does
 * not have. Any other failure of this second read propagates with its own code: a side file, an I/O error or a
 * lost store met here left the graph unread, and a reader's error (a gap, a torn frame mid-stream) on what the survey
 * read restorable means the store changed under verify, so the survey's verdict no longer stands. Swallowed, any of
 * them let verify say clean (exit 0). A corrupt row is verifyOrCorrupt's finding.
 */
async function foldFindings(source: StoredGraphSource, name: string): Promise<{ noNode: Problem[]; refused: Problem | undefined }> {
  let noNode: Problem[] = [];
  try {
    await foldStoredGraph(source, name, {
      onStart: () => (noNode = []),
      onNoNode(read, change) {
        noNode.push({ kind: "unknown-node", seq: read.seq, key: read.key, path: change.path, change: change.kind, restorable: true });
      },
    });
    return { noNode, refused: undefined };
  } catch (err) {
    if (!(err instanceof RestoreError) || err.code !== "phase-failed" || typeof err.details.frame_seq !== "number") throw err;
    const detail = typeof err.details.cause === "string" ? err.details.cause : err.message;
    return { noNode, refused: { kind: "frame-unrestorable", seq: err.details.frame_seq, detail, restorable: false } };
  }
}

/** verifyGraph, or (when reading the graph met a row of the wrong type) a not-restorable verdict naming that row. */
async function verifyOrCorrupt(source: StoredGraphSource, name: string, progress: Progress): Promise<GraphVerification> {
  try {
    return await verifyGraph(source, name, progress);
  } catch (err) {
    const row = corruptRowOf(err);
    if (row === undefined) throw err;
    progress.stop();
    const problem: Problem = { kind: "corrupt-row", ...row, restorable: false };
    return { name, baselineSeq: null, frames: 0, framesAbove: 0, verdict: "not-restorable", problems: [problem] };
  }
}

export function exitCodeOf(verdicts: readonly Verdict[]): number {
  if (verdicts.includes("not-restorable")) return EXIT.notRestorable;
  return verdicts.includes("restorable") ? EXIT.restorable : EXIT.ok;
}

/**
 * verify's exit code from what it found in what it read (`found`: exitCodeOf, or 2 for corrupt rows) and whether it
 * read everything. Not restorable (2) stands alone: what was read already fails restore. Otherwise an incomplete read
 * keeps the finding: 5 when nothing was found wrong, 6 when restore skips damaged frames (before, 5 hid that 1).
 */
export function verifyExitCode(found: number, incomplete: boolean): number {
  if (!incomplete || found === EXIT.notRestorable) return found;
  return found === EXIT.restorable ? EXIT.incompleteRestorable : EXIT.incomplete;
}

const RESULT_TEXT: Record<number, string> = {
  [EXIT.ok]: "clean",
  [EXIT.restorable]: "restorable",
  [EXIT.notRestorable]: "not-restorable",
  [EXIT.incomplete]: "incomplete",
  [EXIT.incompleteRestorable]: "incomplete, restorable",
};

/** Problems whose frames restore ignores whole (no damage): a verdict with only these skips no damaged frame. */
const IGNORED_KINDS: ReadonlySet<Problem["kind"]> = new Set(["unknown-node", "seq-out-of-range"]);

function verdictText(g: GraphVerification): string {
  if (g.verdict === "clean") return "clean";
  if (g.verdict === "not-restorable") return "NOT restorable";
  return g.problems.every((p) => IGNORED_KINDS.has(p.kind)) ? "restorable (restore ignores some frames' changes)" : "restorable (restore skips damaged frames)";
}

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
      return `gap: seq ${p.from === p.to ? p.from : `${p.from}..${p.to}`} missing above the baseline; restore fails (wal-gap) rather than lose those changes`;
    case "duplicate":
      return `frame_seq ${p.seq} appears twice (again under ${p.key})`;
    case "corrupt-row":
      return `corrupt row ${p.key}: ${p.found}; restore fails (corrupt-store)`;
    case "baseline-missing":
      return "no baseline record: restore fails (baseline-missing)";
    case "baseline-invalid":
      return `baseline record is not valid: ${p.detail ?? ""}; restore fails (baseline-missing)`;
    case "baseline-spec-only":
      return "baseline record is a spec-only snapshot: restore fails (baseline-missing)";
    case "baseline-unknown-format":
      return `baseline record has ${p.detail ?? "an unknown format"}: restore fails (codec-mismatch)`;
    case "baseline-unrestorable":
      return `baseline record cannot be applied to any graph: ${p.detail}`;
    case "seq-out-of-range":
      return `frame key ${p.key}: seq ${p.seq} is above 2^53 - 1; no reader reads it, restore ignores it (its change is never replayed)`;
    case "unknown-node":
      return `frame seq ${p.seq} (${p.key}) ${p.change === "node.set" ? "sets" : "invalidates"} node ${JSON.stringify(p.path)}, which the stored graph does not have there (not in the baseline, added by no earlier frame with its slice, or removed): restore ignores it (its change is never replayed)`;
    case "frame-unrestorable":
      return `frame seq ${p.seq} cannot be applied to any graph: ${p.detail}; restore fails (phase-failed)`;
  }
}

function printHuman(rows: readonly CorruptRow[], results: readonly GraphVerification[], exitCode: number, unread: readonly UnreadValue[]): void {
  for (const r of rows) printLine(`corrupt row ${r.key}: ${r.found}, not what graphrefly-storage writes (another program wrote it?)`);
  for (const g of results) {
    const base = g.baselineSeq === null ? "no usable baseline" : `baseline seq ${g.baselineSeq}`;
    printLine(`graph ${JSON.stringify(g.name)}: ${base}, ${plural(g.frames, "frame")} (${g.framesAbove} above the baseline)`);
    // One line per problem: a torn frame's detail quotes its bytes, whose newlines must not print lines of their own.
    for (const p of g.problems) printLine(`  ${terminalText(describeProblem(p), true)}`);
    printLine(`  ${verdictText(g)}`);
  }
  for (const u of unread) printLine(notReachedLine(u));
  const overall = RESULT_TEXT[exitCode] ?? "not-restorable";
  printLine(`${results.length === 0 && unread.length === 0 ? "no graphs; " : ""}result: ${overall} (exit ${exitCode})`);
}

export function verifyCommand(): Command {
  return withStoreOptions(
    new Command("verify")
      .description("check every frame's checksum and the seq chain; exit 0 clean, 1 restorable with skipped frames, 2 not restorable, 5 values over --scan-limit not read, 6 both 1 and 5")
      .argument("<store>", "SQLite file or file-backend directory")
      .option("--graph <name>", "only this graph")
      .option("--json", "machine-readable output (one JSON document)")
      .option("--scan-limit <bytes>", SCAN_LIMIT_HELP, nonNegativeInt),
  ).action(async (store: string, opts: StoreCommandOptions & ProgressOptions & ScanOptions & { graph?: string; json?: boolean }) => {
    const exitCode = await withStore(store, { kind: opts.backend, mode: "read" }, async (s) => {
      const progress = createProgress(opts.progress);
      const source = backendSource(s.backend);
      const rows = "corruptRows" in s.backend ? s.backend.corruptRows().map((e) => corruptRowOf(e) as CorruptRow) : [];
      let names: string[] = [];
      // Values over --scan-limit were not read: a graph's only baseline may be one, so "clean" cannot be said.
      const unread: UnreadValue[] = [];
      try {
        names = await selectGraphs(s.backend, opts.graph, s.path, opts.scanLimit, unread);
      } catch (err) {
        // Listing met a key of the wrong type: the store cannot be listed; the rows above say which.
        if (corruptRowOf(err) === undefined || rows.length === 0) throw err;
      }
      const results: GraphVerification[] = [];
      for (const name of names) results.push(await verifyOrCorrupt(source, name, progress));
      const found = rows.length > 0 ? EXIT.notRestorable : exitCodeOf(results.map((r) => r.verdict));
      const code = verifyExitCode(found, unread.length > 0);
      if (opts.json) printLine(canonicalJson({ exitCode: code, corruptRows: rows, graphs: results, store: { kind: s.kind, path: s.path }, unread }));
      else printHuman(rows, results, code, unread);
      return code;
    });
    process.exitCode = exitCode;
  });
}
