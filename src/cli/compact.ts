/**
 * `compact <store> --graph NAME [--keep N] [--keep-above SEQ] [--forget-store ID]... [--force]`: the engine's compaction
 * (`compactGraph`, the same code the store actor runs in the background) run inline on a store no process is using:
 * fold the WAL into a new baseline, commit it, delete the frames it covers (keeping the newest N, every frame above
 * SEQ, and every frame above the baselines of the other stores the WAL's store records as restoring from it: pairs
 * sharing a WAL tier; `--forget-store` drops one removed for good from that record first, an id it does not name
 * being a usage error, exit 64; one a live handle named in the record within the last hour is refused, StorageError
 * store-live, exit 4, unless `--force`). The bar counts the frames read.
 */
import { Command } from "commander";
import type { SqliteBackend } from "../backend/sqlite.js";
import type { StorageBackend } from "../backend/types.js";
import { canonicalJson } from "../codec/json.js";
import { graphWalPrefix, parseWalFrameKey } from "../wal/keys.js";
import { compactGraph, type CompactionResult } from "../persistence/compaction.js";
import { backendSource, listFrameKeys } from "../persistence/stored-graph.js";
import { StorageError } from "../errors.js";
import { CliError, EXIT } from "./errors.js";
import { selectGraphs } from "./inspect.js";
import { formatBytes, plural, printLine } from "./output.js";
import { nonNegativeInt, withStoreOptions, type ProgressOptions, type StoreCommandOptions } from "./options.js";
import { createProgress, type Progress } from "./progress.js";
import { withStore, type CliBackend } from "./store.js";

/** The backend with every frame read counted on the bar (compaction reads each frame of the graph once). */
function counting(backend: CliBackend, graph: string, progress: Progress): StorageBackend {
  const prefix = graphWalPrefix(graph);
  return {
    name: backend.name,
    supports: { ...backend.supports, readPrefix: false, sizes: false }, // this wrapper reads whole values only
    read: (key) => {
      if (parseWalFrameKey(prefix, key) !== undefined) progress.advance();
      return backend.read(key);
    },
    write: (key, bytes) => backend.write(key, bytes),
    delete: (key) => backend.delete(key),
    list: (prefix) => backend.list(prefix),
    writeBatch: (ops) => backend.writeBatch(ops),
    // The fold's commit is conditional on the baseline it folded (another writer's newer one is never overwritten).
    writeBatchIf: (expected, ops) => backend.writeBatchIf(expected, ops),
  };
}

/** What a SQLite file occupies on disk, and how much of it is free pages (space the file keeps after deletes). */
export interface SqliteSpace {
  fileBytes: number;
  freeBytes: number;
  /** True when VACUUM ran and gave the free pages back to the file system. */
  vacuumed: boolean;
}

/**
 * Deleting rows frees pages inside a SQLite file, not on disk: the file keeps its size until VACUUM rewrites it.
 * The WAL is checkpointed first so the figures describe the database file itself.
 */
function sqliteSpace(backend: SqliteBackend, vacuum: boolean): SqliteSpace {
  const { db } = backend;
  db.pragma("wal_checkpoint(TRUNCATE)");
  if (vacuum) {
    db.exec("VACUUM");
    db.pragma("wal_checkpoint(TRUNCATE)");
  }
  const pageSize = db.pragma("page_size", { simple: true }) as number;
  const pages = db.pragma("page_count", { simple: true }) as number;
  const free = db.pragma("freelist_count", { simple: true }) as number;
  return { fileBytes: pages * pageSize, freeBytes: free * pageSize, vacuumed: vacuum };
}

function summary(r: CompactionResult, space: SqliteSpace | undefined): string {
  const lines = [
    r.foldedFrames === 0
      ? `graph ${JSON.stringify(r.graphName)}: nothing to fold, baseline stays at seq ${r.baselineSeq}`
      : `graph ${JSON.stringify(r.graphName)}: baseline seq ${r.previousBaselineSeq} -> ${r.baselineSeq} (${plural(r.foldedFrames, "frame")} folded)`,
    `  deleted ${plural(r.deletedFrames, "frame")}, kept ${r.keptFrames} at or below the baseline`,
    `  graph data ${formatBytes(r.bytesBefore)} -> ${formatBytes(r.bytesAfter)}${r.atomic ? "" : " (committed in two steps: the backend has no atomic batch)"}`,
  ];
  if (space !== undefined) {
    lines.push(
      space.vacuumed
        ? `  SQLite file vacuumed: ${formatBytes(space.fileBytes)} on disk`
        : space.freeBytes > 0
          ? `  SQLite file ${formatBytes(space.fileBytes)}, of which ${formatBytes(space.freeBytes)} is free space it keeps; run again with --vacuum to give it back`
          : `  SQLite file ${formatBytes(space.fileBytes)}`,
    );
  }
  for (const pin of r.sharedWalPins ?? []) {
    lines.push(`  kept frames above seq ${pin.seq} for store ${pin.store} (it restores from this WAL; --forget-store if it is gone for good)`);
  }
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
      .option(
        "--keep-above <seq>",
        "keep every frame above this seq: the lowest baseline seq of other stores restoring from this WAL (shared WAL)",
        nonNegativeInt,
      )
      .option(
        "--forget-store <id>",
        "drop a store removed for good from the record of stores restoring from this WAL (repeatable; ids as compact lists them)",
        (id: string, ids: string[]) => [...ids, id],
        [] as string[],
      )
      .option("--force", "with --forget-store: forget a store even if a live handle named it in the record within the last hour")
      .option("--vacuum", "SQLite: rewrite the file afterwards (VACUUM) so the space of deleted frames returns to the disk")
      .option("--json", "machine-readable output (the compaction result)"),
  ).action(
    async (
      store: string,
      opts: StoreCommandOptions &
        ProgressOptions & {
          graph: string;
          keep: number;
          keepAbove?: number;
          forgetStore: string[];
          force?: boolean;
          vacuum?: boolean;
          json?: boolean;
        },
    ) => {
      const { result, space } = await withStore(store, { kind: opts.backend, mode: "modify" }, async (s) => {
        await selectGraphs(s.backend, opts.graph, s.path);
        const progress = createProgress(opts.progress);
        progress.start(`compact ${opts.graph}`, (await listFrameKeys(backendSource(s.backend), opts.graph)).length);
        let result: CompactionResult;
        try {
          result = await compactGraph(
            { backend: counting(s.backend, opts.graph, progress) },
            {
              graphName: opts.graph,
              keepFrames: opts.keep,
              ...(opts.keepAbove !== undefined ? { keepAboveSeq: opts.keepAbove } : {}),
              ...(opts.forgetStore.length > 0 ? { forgetStores: opts.forgetStore } : {}),
              ...(opts.force === true ? { forceForget: true } : {}),
            },
          );
        } catch (err) {
          // A --forget-store id the record does not name is a mistake on the command line (exit 64), which the
          // error's message says with the ids the record does name; before, it was silently ignored.
          if (err instanceof StorageError && err.code === "invalid-argument" && Array.isArray(err.details.unknownStores)) {
            throw new CliError("usage", err.message);
          }
          throw err;
        } finally {
          progress.stop();
        }
        const space = s.kind === "sqlite" ? sqliteSpace(s.backend as SqliteBackend, opts.vacuum === true) : undefined;
        return { result, space };
      });
      printLine(opts.json ? canonicalJson(space === undefined ? result : { ...result, sqliteFile: space }) : summary(result, space));
      process.exitCode = EXIT.ok;
    },
  );
}
