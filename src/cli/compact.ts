/**
 * `compact <store> --graph NAME [--keep N]`: the engine's compaction (`compactGraph`, the same code the store
 * actor runs in the background) run inline on a store no process is using: fold the WAL into a new baseline,
 * commit it, delete the frames it covers (keeping the newest N). The bar counts the frames read.
 */
import { Command } from "commander";
import type { StorageBackend } from "../backend/types.js";
import { canonicalJson } from "../codec/json.js";
import { graphWalPrefix, parseWalFrameKey } from "../wal/keys.js";
import { compactGraph, type CompactionResult } from "../graph/compaction.js";
import { backendSource, listFrameKeys } from "../graph/stored-graph.js";
import { EXIT } from "./errors.js";
import { selectGraphs } from "./inspect.js";
import { formatBytes, printLine } from "./output.js";
import { nonNegativeInt, withStoreOptions, type ProgressOptions, type StoreCommandOptions } from "./options.js";
import { createProgress, type Progress } from "./progress.js";
import { withStore, type CliBackend } from "./store.js";

/** The backend with every frame read counted on the bar (compaction reads each frame of the graph once). */
function counting(backend: CliBackend, graph: string, progress: Progress): StorageBackend {
  const prefix = graphWalPrefix(graph);
  return {
    name: backend.name,
    supports: backend.supports,
    read: (key) => {
      if (parseWalFrameKey(prefix, key) !== undefined) progress.advance();
      return backend.read(key);
    },
    write: (key, bytes) => backend.write(key, bytes),
    delete: (key) => backend.delete(key),
    list: (prefix) => backend.list(prefix),
    writeBatch: (ops) => backend.writeBatch(ops),
  };
}

function summary(r: CompactionResult): string {
  const lines = [
    r.foldedFrames === 0
      ? `graph ${JSON.stringify(r.graphName)}: nothing to fold, baseline stays at seq ${r.baselineSeq}`
      : `graph ${JSON.stringify(r.graphName)}: baseline seq ${r.previousBaselineSeq} -> ${r.baselineSeq} (${r.foldedFrames} frames folded)`,
    `  deleted ${r.deletedFrames} frames, kept ${r.keptFrames} at or below the baseline`,
    `  ${formatBytes(r.bytesBefore)} -> ${formatBytes(r.bytesAfter)}${r.atomic ? "" : " (committed in two steps: the backend has no atomic batch)"}`,
  ];
  if (r.skippedTornFrames > 0) lines.push(`  skipped torn tail frame seq ${r.tornFrameSeqs.join(", ")} (left in place, as restore skips it)`);
  return lines.join("\n");
}

export function compactCommand(): Command {
  return withStoreOptions(
    new Command("compact")
      .description("fold a graph's WAL into a new baseline and delete the frames it covers (store must not be in use)")
      .argument("<store>", "SQLite file or file-backend directory")
      .requiredOption("--graph <name>", "graph to compact")
      .option("--keep <n>", "frames at or below the new baseline to keep (newest first)", nonNegativeInt, 0)
      .option("--json", "machine-readable output (the compaction result)"),
  ).action(async (store: string, opts: StoreCommandOptions & ProgressOptions & { graph: string; keep: number; json?: boolean }) => {
    const result = await withStore(store, { kind: opts.backend, mode: "modify" }, async (s) => {
      selectGraphs(s.backend, opts.graph, store);
      const progress = createProgress(opts.progress);
      progress.start(`compact ${opts.graph}`, (await listFrameKeys(backendSource(s.backend), opts.graph)).length);
      try {
        return await compactGraph({ backend: counting(s.backend, opts.graph, progress) }, { graphName: opts.graph, keepFrames: opts.keep });
      } finally {
        progress.stop();
      }
    });
    printLine(opts.json ? canonicalJson(result) : summary(result));
    process.exitCode = EXIT.ok;
  });
}
