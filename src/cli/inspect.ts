/** `inspect <store> [--graph NAME] [--json]`: what a store holds, per graph (baseline, WAL size, seqs, kinds). */
import { Command } from "commander";
import { compareKeys } from "../backend/keys.js";
import { canonicalJson } from "../codec/json.js";
import { backendSource, listFrameKeys, readBaseline, readFrame, type StoredGraphSource } from "../persistence/stored-graph.js";
import { REPLAY_ORDER, type Lifecycle } from "../wal/frame.js";
import { CliError, EXIT } from "./errors.js";
import { formatBytes, formatTimeNs, printLine, printNote, plural } from "./output.js";
import { nonNegativeInt, SCAN_LIMIT_HELP, withStoreOptions, type ProgressOptions, type ScanOptions, type StoreCommandOptions } from "./options.js";
import { createProgress, type Progress } from "./progress.js";
import { changeKind, discoverGraphs, graphExists, outOfRangeFrameKeys, wholeWaves } from "./scan.js";
import { withStore, type CliBackend } from "./store.js";
import { assertGraphName } from "../wal/keys.js";

export type BaselineInfo =
  | { state: "ok"; seq: number; timestamp_ns: number | bigint; time: string; lifecycle: string | null; nodes: number; bytes: number }
  | { state: "invalid"; reason: string; bytes: number }
  | { state: "missing" };

export interface GraphInspection {
  name: string;
  baseline: BaselineInfo;
  wal: {
    frames: number;
    bytes: number;
    /** Lowest and highest frame seq (from the keys); null without frames. */
    firstSeq: number | null;
    lastSeq: number | null;
    /** Frames whose bytes do not decode as a WAL frame (see `verify`). */
    undecodable: number;
    /** Keys shaped like frame keys whose seq is above 2^53 − 1: no reader reads them (not counted in `frames`). */
    seqOutOfRange: number;
    /** Frames of a wave still being written when listed (a live file store), left out of everything above. */
    inFlight: number;
    lifecycles: Record<Lifecycle, number>;
    kinds: Record<string, number>;
  };
}

export async function inspectGraph(source: StoredGraphSource, name: string, progress: Progress): Promise<GraphInspection> {
  const lifecycles = Object.fromEntries(REPLAY_ORDER.map((l) => [l, 0])) as Record<Lifecycle, number>;
  const kinds = new Map<string, number>(); // a Map: kinds come from stored data ("__proto__" included)
  let bytes = 0;
  let undecodable = 0;
  // Whole waves only: a live file store's listing may end in a wave whose last frames are still being renamed.
  const { keys, inFlight } = await wholeWaves(source, name, await listFrameKeys(source, name));
  progress.start(`inspect ${name}`, keys.length);
  for (const at of keys) {
    const read = await readFrame(source, at);
    if (read.ok || !read.absent) bytes += read.raw?.byteLength ?? 0;
    if (read.ok) {
      lifecycles[read.frame.lifecycle]++;
      const kind = changeKind(read.frame);
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    } else {
      undecodable++;
    }
    progress.advance();
  }
  progress.stop();
  const seqOutOfRange = (await outOfRangeFrameKeys(source, name)).length;
  return {
    name,
    baseline: await baselineInfo(source, name),
    wal: {
      frames: keys.length,
      bytes,
      firstSeq: keys[0]?.seq ?? null,
      lastSeq: keys[keys.length - 1]?.seq ?? null,
      undecodable,
      seqOutOfRange,
      inFlight,
      lifecycles,
      kinds: Object.fromEntries([...kinds].sort(([a], [b]) => compareKeys(a, b))),
    },
  };
}

async function baselineInfo(source: StoredGraphSource, name: string): Promise<BaselineInfo> {
  const { check, bytes } = await readBaseline(source, name);
  if (!check.ok) return check.problem === "missing" ? { state: "missing" } : { state: "invalid", reason: check.reason, bytes: bytes ?? 0 };
  const r = check.record;
  return {
    state: "ok",
    seq: r.seq,
    timestamp_ns: r.timestamp_ns,
    time: formatTimeNs(r.timestamp_ns),
    lifecycle: r.lifecycle ?? null,
    nodes: Object.keys(r.snapshot.nodes).length,
    bytes: bytes ?? 0,
  };
}

/**
 * The graphs a command works on: the one named with `--graph` (which must exist; StorageError `invalid-name` for a
 * name shaped like another record's key, whose reading would be that record's), else all usable ones (the others are
 * named on stderr, as are values too large to classify under `scanLimit`: see discoverGraphs).
 */
export async function selectGraphs(
  backend: CliBackend,
  graph: string | undefined,
  store: string,
  scanLimit?: number,
  unread?: UnreadValue[],
): Promise<string[]> {
  if (graph === undefined) {
    return discoverGraphs(backend, {
      onUnusable: (name, problem) => {
        printNote(`warning: skipped ${JSON.stringify(name)}: not a usable graph name (${problem})`); // a stored key: escaped
      },
      ...(scanLimit === undefined ? {} : { scanLimit }),
      onUnclassified: (key, bytes) => {
        unread?.push({ key, bytes });
        printNote(
          `warning: skipped ${JSON.stringify(key)}: a value of ${formatBytes(bytes)} (${bytes} bytes), over --scan-limit, not read (a graph baseline there is not listed: raise --scan-limit or pass --graph)`,
        );
      },
    });
  }
  assertGraphName(graph, "--graph");
  if (!(await graphExists(backend, graph))) throw new CliError("graph-not-found", `no graph ${JSON.stringify(graph)} in ${store}`);
  return [graph];
}

/** A value over --scan-limit under a graph name without frames: that graph, if it is one, was not reached. */
export interface UnreadValue {
  key: string;
  bytes: number;
}

/**
 * The line naming a graph `inspect` or `verify` did not reach: the value under its name was not read (over
 * --scan-limit), so whether it is that graph's baseline is unknown. Listed with the graphs, not only on stderr.
 */
export function notReachedLine(u: UnreadValue): string {
  const name = JSON.stringify(u.key);
  return `graph ${name} not reached: the value under its name (${formatBytes(u.bytes)}, ${u.bytes} bytes) is over --scan-limit, not read; if it is a baseline, this graph was not checked (pass --graph ${name} or raise --scan-limit)`;
}

function printHuman(kind: string, path: string, graphs: readonly GraphInspection[], unread: readonly UnreadValue[]): void {
  const notReached = unread.length === 0 ? "" : `, ${unread.length} not reached (over --scan-limit)`;
  printLine(`store ${path} (${kind}), ${plural(graphs.length, "graph")}${notReached}`);
  for (const g of graphs) {
    printLine();
    printLine(`graph ${JSON.stringify(g.name)}`);
    const b = g.baseline;
    if (b.state === "ok") {
      printLine(`  baseline    seq ${b.seq}, ${b.time}, ${plural(b.nodes, "node")}, ${formatBytes(b.bytes)}`);
    } else if (b.state === "invalid") {
      printLine(`  baseline    INVALID: ${b.reason}`);
    } else {
      printLine("  baseline    none");
    }
    const w = g.wal;
    const range = w.firstSeq === null ? "" : `, seq ${w.firstSeq}..${w.lastSeq}`;
    printLine(`  wal         ${plural(w.frames, "frame")}, ${formatBytes(w.bytes)}${range}`);
    if (w.inFlight > 0) printLine(`  in flight   ${plural(w.inFlight, "frame")} of a wave still being written, not shown`);
    if (w.seqOutOfRange > 0) printLine(`  unreadable  ${plural(w.seqOutOfRange, "key")} with a seq above 2^53 - 1, no frame to any reader (run verify)`);
    if (w.frames === 0) continue;
    printLine(`  lifecycles  ${REPLAY_ORDER.map((l) => `${l} ${w.lifecycles[l]}`).join(", ")}`);
    const kinds = Object.entries(w.kinds).map(([k, n]) => `${k} ${n}`);
    if (kinds.length > 0) printLine(`  kinds       ${kinds.join(", ")}`);
    if (w.undecodable > 0) printLine(`  undecodable ${w.undecodable} (run verify)`);
  }
  if (unread.length > 0) printLine();
  for (const u of unread) printLine(notReachedLine(u));
}

export function inspectCommand(): Command {
  return withStoreOptions(
    new Command("inspect")
      .description("list the graphs of a store: baseline seq and time, WAL frames, bytes, seq range, lifecycles and kinds")
      .argument("<store>", "SQLite file or file-backend directory")
      .option("--graph <name>", "only this graph")
      .option("--json", "machine-readable output (one JSON document)")
      .option("--scan-limit <bytes>", SCAN_LIMIT_HELP, nonNegativeInt),
  ).action(async (store: string, opts: StoreCommandOptions & ProgressOptions & ScanOptions & { graph?: string; json?: boolean }) => {
    await withStore(store, { kind: opts.backend, mode: "read" }, async (s) => {
      const progress = createProgress(opts.progress);
      const source = backendSource(s.backend);
      const graphs: GraphInspection[] = [];
      const unread: UnreadValue[] = [];
      for (const name of await selectGraphs(s.backend, opts.graph, s.path, opts.scanLimit, unread)) graphs.push(await inspectGraph(source, name, progress));
      if (opts.json) printLine(canonicalJson({ store: { kind: s.kind, path: s.path }, graphs, unread }));
      else printHuman(s.kind, s.path, graphs, unread);
    });
    process.exitCode = EXIT.ok;
  });
}
