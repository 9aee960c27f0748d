/**
 * `export <store> --graph NAME [--at SEQ] [--out FILE]`: the restored snapshot (the graph read by the library's
 * stored-graph reader, as restore reads it, folded by the library's fold) as canonical JSON, to stdout or a file.
 * A skipped torn tail is reported on stderr.
 */
import { Command } from "commander";
import { canonicalJson } from "../codec/json.js";
import { foldStoredGraph } from "../persistence/fold.js";
import { backendSource } from "../persistence/stored-graph.js";
import { RestoreError } from "../errors.js";
import { CliError, EXIT } from "./errors.js";
import { selectGraphs } from "./inspect.js";
import { plural, printLine } from "./output.js";
import { nonNegativeInt, withStoreOptions, type ProgressOptions, type StoreCommandOptions } from "./options.js";
import { createProgress } from "./progress.js";
import { assertOutsideStore, writeFileWhole } from "./out-file.js";
import { detectStoreKind, isPostgresStore, localStorePath, withStore } from "./store.js";

interface ExportOptions extends StoreCommandOptions, ProgressOptions {
  graph: string;
  at?: number;
  out?: string;
}

/** `--at` must name a seq the store can still give: not above its newest seq (that would silently export the latest). */
function checkAt(graph: string, at: number, baselineSeq: number, lastFrameSeq: number | undefined): void {
  const newest = Math.max(baselineSeq, lastFrameSeq ?? 0);
  if (at > newest) {
    throw new CliError(
      "seq-out-of-range",
      `--at ${at} is beyond graph ${JSON.stringify(graph)}'s newest seq ${newest}: pick a seq from ${baselineSeq} (its baseline) to ${newest}, or leave --at out for the latest state`,
    );
  }
}

/** The reader's "point in time no longer stored" said in the command's terms: what was asked, what exists, what to do. */
function belowBaseline(err: unknown, graph: string, at: number | undefined): unknown {
  if (!(err instanceof RestoreError) || at === undefined || typeof err.details.baselineSeq !== "number") return err;
  const baselineSeq = err.details.baselineSeq;
  return new CliError(
    "seq-out-of-range",
    `--at ${at} is older than graph ${JSON.stringify(graph)}'s baseline (seq ${baselineSeq}): compaction folded that history away, so the earliest seq export can give is ${baselineSeq}`,
  );
}

export function exportCommand(): Command {
  return withStoreOptions(
    new Command("export")
      .description("print the restored snapshot of a graph as canonical JSON (what restore would rebuild)")
      .argument("<store>", "SQLite file or file-backend directory")
      .requiredOption("--graph <name>", "graph to export")
      .option("--at <seq>", "restore up to this frame seq (point in time; not below the baseline)", nonNegativeInt)
      .option("--out <file>", "write the JSON to this file instead of stdout (`-`: stdout)"),
  ).action(async (store: string, opts: ExportOptions) => {
    // `--out -` is stdout, as for most tools: it made a file named `-` (review r309 F2).
    if (opts.out === "-") delete opts.out;
    // Before anything is read: an --out naming one of the store's own files would overwrite the store.
    if (opts.out !== undefined && !isPostgresStore(store)) {
      const path = localStorePath(store);
      assertOutsideStore(opts.out, path, detectStoreKind(path, opts.backend, "read"));
    }
    const { fold, skipped } = await withStore(store, { kind: opts.backend, mode: "read" }, async (s) => {
      await selectGraphs(s.backend, opts.graph, s.path);
      const progress = createProgress(opts.progress);
      try {
        return await foldStoredGraph(backendSource(s.backend), opts.graph, {
          ...(opts.at === undefined ? {} : { targetSeq: opts.at }),
          onStart: (view) => {
            if (opts.at !== undefined) checkAt(opts.graph, opts.at, view.baseline.seq, view.keys[view.keys.length - 1]?.seq);
            progress.start(`read ${opts.graph}`, view.keys.filter((k) => k.seq > view.baseline.seq && k.seq <= (opts.at ?? Infinity)).length);
          },
          onFrame: () => progress.advance(),
        });
      } catch (err) {
        throw belowBaseline(err, opts.graph, opts.at);
      } finally {
        progress.stop();
      }
    });
    const json = canonicalJson(fold.snapshot);
    for (const t of skipped) {
      process.stderr.write(`warning: skipped torn tail frame seq ${t.frame_seq} (${t.reason}), as restore does\n`);
    }
    if (opts.out === undefined) {
      printLine(json);
    } else {
      writeFileWhole(opts.out, json + "\n");
      const frames = fold.appliedFrames + fold.ignoredFrames;
      printLine(`exported graph ${JSON.stringify(opts.graph)} at seq ${fold.seq} (${plural(frames, "frame")} folded) to ${opts.out}`);
    }
    process.exitCode = EXIT.ok;
  });
}
