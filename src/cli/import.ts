/**
 * `import <file> <store>`: writes a snapshot (as `export` prints it) as the graph's new baseline. Its seq is one
 * above the highest seq stored for the graph (baseline or frame), so restore replays none of the existing frames
 * (they are superseded, and `compact` deletes them) and a writer that attaches later continues above it.
 */
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { canonicalJson, parseJsonBytes } from "../codec/json.js";
import { assertStorableJson } from "../codec/strict.js";
import { isSlice } from "../persistence/apply.js";
import type { GraphCheckpointRecord } from "../persistence/storage-types.js";
import { SNAPSHOT_VERSION, type GraphPersistSnapshot } from "../graph/types.js";
import { snapshotStorage } from "../tier/snapshot.js";
import { CliError, EXIT } from "./errors.js";
import { plural, printLine } from "./output.js";
import { withStoreOptions, type StoreCommandOptions } from "./options.js";
import { backendSource, listFrameKeys } from "../persistence/stored-graph.js";
import { withStore, type CliBackend } from "./store.js";
import { isRecord } from "../base/records.js";
import { nameHolds, unrestorableSnapshot } from "./scan.js";
import { assertNameCanBeTyped, assertNoDuplicateKeys } from "./import-checks.js";
import { assertGraphName } from "../wal/keys.js";

/** A flat graph snapshot (docs/graph-model.md §1.1), or CliError `invalid-input` saying what is wrong. */
export function parseSnapshotFile(bytes: Uint8Array, file: string): GraphPersistSnapshot {
  let value: unknown;
  try {
    value = parseJsonBytes(bytes);
  } catch (err) {
    throw new CliError("invalid-input", `${file}: ${(err as Error).message}`);
  }
  const bad = (why: string): CliError => new CliError("invalid-input", `${file} is not a graph snapshot: ${why}`);
  if (!isRecord(value)) throw bad("not a JSON object");
  if (typeof value.name !== "string" || value.name === "") throw bad("name must be a non-empty string");
  if (value.version !== SNAPSHOT_VERSION) throw bad(`version must be ${SNAPSHOT_VERSION}`);
  if (!isRecord(value.nodes) || !Object.values(value.nodes).every(isSlice)) throw bad("nodes must map paths to node slices");
  const edges = value.edges;
  if (!Array.isArray(edges) || !edges.every((e) => isRecord(e) && typeof e.from === "string" && typeof e.to === "string")) {
    throw bad("edges must be an array of {from, to}");
  }
  if (!Array.isArray(value.subgraphs) || !value.subgraphs.every((m) => typeof m === "string")) {
    throw bad("subgraphs must be an array of paths");
  }
  return value as unknown as GraphPersistSnapshot;
}

/** CliError `invalid-input` for a snapshot no graph can restore (see `unrestorableSnapshot`). */
function refuseUnrestorable(snapshot: GraphPersistSnapshot, file: string): void {
  const why = unrestorableSnapshot(snapshot);
  if (why !== undefined) throw new CliError("invalid-input", `${file} is a snapshot no graph can restore: ${why}`);
}

/**
 * Highest seq stored for `name`: its last frame's (torn frames count: their seq is taken) or its baseline's, when
 * the record carries one (even a record the reader refuses: its seq may be taken too), and how many frames it has.
 */
async function storedSeqs(backend: CliBackend, name: string): Promise<{ highest: number; frames: number }> {
  const source = backendSource(backend);
  const keys = await listFrameKeys(source, name);
  const stored = await source.readBaseline(name);
  const seq = stored.state === "value" && isRecord(stored.value) ? stored.value.seq : undefined;
  const baselineSeq = Number.isSafeInteger(seq) ? (seq as number) : 0;
  return { highest: Math.max(keys[keys.length - 1]?.seq ?? 0, baselineSeq), frames: keys.length };
}

/**
 * All of stdin. A terminal is refused: an import waiting for a snapshot typed by hand (until Ctrl-D) looks hung.
 * Read as a stream, not readFileSync(0), which fails EAGAIN on a non-blocking pipe a parent process handed over.
 */
async function readStdin(): Promise<Uint8Array> {
  if (process.stdin.isTTY) throw new CliError("usage", "import -: stdin is a terminal; pipe a snapshot in (graphrefly-storage export STORE --graph NAME | graphrefly-storage import - NEW.db)");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  // Said plainly: JSON's "Unexpected end of JSON input" hid that nothing was piped in (review r330).
  if (bytes.byteLength === 0) throw new CliError("invalid-input", "stdin is empty: pipe a snapshot in (graphrefly-storage export STORE --graph NAME | graphrefly-storage import - NEW.db)");
  return bytes;
}

export function importCommand(): Command {
  return withStoreOptions(
    new Command("import")
      .description("write a snapshot file (as printed by export) as a graph's new baseline, superseding its WAL")
      .argument("<file>", "snapshot JSON file (`-`: read it from stdin, as `export … | import - …`)")
      .argument("<store>", "SQLite file or file-backend directory (created if missing; pass --backend for a new path)")
      .option("--json", "machine-readable output (graph, baseline seq, superseded frames)"),
    false,
  ).action(async (arg: string, store: string, opts: StoreCommandOptions & { json?: boolean }) => {
    // `-` is stdin (a file named `-` is `./-`); messages name it "stdin".
    const file = arg === "-" ? "stdin" : arg;
    const bytes = arg === "-" ? await readStdin() : readFileSync(arg);
    const snapshot = parseSnapshotFile(bytes, file);
    // Written under its name: one shaped like another record's key would overwrite that record (design §3.27).
    assertGraphName(snapshot.name, `import of ${file}`);
    assertNameCanBeTyped(snapshot.name, file);
    const record = (seq: number): GraphCheckpointRecord => ({
      name: snapshot.name,
      mode: "full",
      snapshot,
      seq,
      timestamp_ns: Date.now() * 1_000_000,
      format_version: SNAPSHOT_VERSION,
    });
    // The record's rule before the store is opened: a refused import creates no store (nor its lock file). Only the
    // seq differs in the record written, and a number never changes the verdict.
    assertStorableJson(record(0), "reject", "$");
    assertNoDuplicateKeys(bytes, file);
    refuseUnrestorable(snapshot, file);
    const { seq, superseded } = await withStore(store, { kind: opts.backend, mode: "create" }, async (s) => {
      // A value under the name that is no graph's record (a kv value, say) is refused, not replaced: import wrote a
      // baseline over it and exited 0 (review r232). A broken baseline stays replaceable: import is its recovery.
      if ((await nameHolds(s.backend, snapshot.name)) === "other") {
        throw new CliError(
          "usage",
          `${s.path} holds a value under ${JSON.stringify(snapshot.name)} that is not a graph's record (another tier's value?): importing graph ${JSON.stringify(snapshot.name)} would overwrite it; nothing was written`,
        );
      }
      const stored = await storedSeqs(s.backend, snapshot.name);
      const seq = stored.highest + 1;
      // Seqs are safe integers: a baseline above 2^53 - 1 was stored and reported imported, and then every restore
      // refused it (baseline-missing), the good baseline it replaced gone. Only a store another program wrote gets
      // there (a frame key or a baseline seq of 2^53 - 1).
      if (!Number.isSafeInteger(seq)) {
        throw new CliError(
          "seq-out-of-range",
          `graph ${JSON.stringify(snapshot.name)}'s highest stored seq is ${stored.highest}: no seq is left above it for the imported baseline (seqs end at ${Number.MAX_SAFE_INTEGER}); nothing was written`,
        );
      }
      // The library's snapshot tier writes it (key = record name, canonical JSON), durable once flush resolves.
      const tier = snapshotStorage<GraphCheckpointRecord>(s.backend);
      tier.save(record(seq));
      await tier.flush();
      await tier.close();
      return { seq, superseded: stored.frames };
    });
    printLine(
      opts.json
        ? canonicalJson({ graph: snapshot.name, baselineSeq: seq, supersededFrames: superseded })
        : `imported graph ${JSON.stringify(snapshot.name)} as baseline seq ${seq}; ${plural(superseded, "stored frame")} now superseded`,
    );
    process.exitCode = EXIT.ok;
  });
}
