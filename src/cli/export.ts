/**
 * `export <store> --graph NAME [--at SEQ] [--out FILE]`: the restored snapshot (baseline + WAL folded by the
 * library's code, see fold.ts) as canonical JSON, to stdout or a file. A skipped torn tail is reported on stderr.
 */
import { writeFileSync } from "node:fs";
import { Command } from "commander";
import { canonicalJson } from "../codec/json.js";
import { EXIT } from "./errors.js";
import { foldStoredGraph } from "./fold.js";
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
    const { fold, skipped } = await withStore(store, { kind: opts.backend, mode: "read" }, (s) => {
      const [keys] = selectGraphs(s.backend, opts.graph, store);
      return foldStoredGraph(s.backend, keys!, opts.at, createProgress(opts.progress));
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
