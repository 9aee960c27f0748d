/**
 * `export <store> --graph NAME [--at SEQ] [--out FILE]`: the restored snapshot (the graph read by the library's
 * stored-graph reader, as restore reads it, folded by the library's fold) as canonical JSON, to stdout or a file.
 * A skipped torn tail is reported on stderr.
 */
import { writeFileSync } from "node:fs";
import { Command } from "commander";
import { canonicalJson } from "../codec/json.js";
import { foldStoredGraph } from "../graph/fold.js";
import { backendSource } from "../graph/stored-graph.js";
import { EXIT } from "./errors.js";
import { selectGraphs } from "./inspect.js";
import { printLine } from "./output.js";
import { nonNegativeInt, withStoreOptions, type ProgressOptions, type StoreCommandOptions } from "./options.js";
import { createProgress } from "./progress.js";
import { withStore } from "./store.js";

interface ExportOptions extends StoreCommandOptions, ProgressOptions {
  graph: string;
  at?: number;
  out?: string;
}

export function exportCommand(): Command {
  return withStoreOptions(
    new Command("export")
      .description("print the restored snapshot of a graph as canonical JSON (what restore would rebuild)")
      .argument("<store>", "SQLite file or file-backend directory")
      .requiredOption("--graph <name>", "graph to export")
      .option("--at <seq>", "restore up to this frame seq (point in time; not below the baseline)", nonNegativeInt)
      .option("--out <file>", "write the JSON to this file instead of stdout"),
  ).action(async (store: string, opts: ExportOptions) => {
    const { fold, skipped } = await withStore(store, { kind: opts.backend, mode: "read" }, async (s) => {
      selectGraphs(s.backend, opts.graph, store);
      const progress = createProgress(opts.progress);
      try {
        return await foldStoredGraph(backendSource(s.backend), opts.graph, {
          ...(opts.at === undefined ? {} : { targetSeq: opts.at }),
          onStart: (view) => progress.start(`read ${opts.graph}`, view.keys.filter((k) => k.seq > view.baseline.seq && k.seq <= (opts.at ?? Infinity)).length),
          onFrame: () => progress.advance(),
        });
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
      writeFileSync(opts.out, json + "\n");
      const frames = fold.appliedFrames + fold.ignoredFrames;
      printLine(`exported graph ${JSON.stringify(opts.graph)} at seq ${fold.seq} (${frames} frames folded) to ${opts.out}`);
    }
    process.exitCode = EXIT.ok;
  });
}
