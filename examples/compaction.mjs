// Compaction keeps the disk bounded: the WAL is folded into a new baseline in the store's worker, and the frames it
// covers are deleted in the same SQLite transaction.
// Run: node examples/compaction.mjs [dir]
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { attachSnapshotStorage, compactGraphInEngine, createGraph, openStorageEngine, walFrameCodec } from "graphrefly-storage";

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), "grf-example-compact-"));
const store = { kind: "sqlite", path: join(dir, "counter.db") };
const engine = openStorageEngine({ threads: 1 });
const wal = engine.kv(store, { codec: walFrameCodec });

const graph = createGraph("counter");
graph.state("count", 0);
// compactEvery: a large number, so this example's baseline stays old and the WAL grows until we compact.
const handle = attachSnapshotStorage(graph, [{ snapshot: engine.snapshot(store), wal }], { compactEvery: 1_000_000 });
for (let i = 1; i <= 200; i++) graph.set("count", i);
await handle.flush();

const framesBefore = (await wal.list("counter/")).length;
const result = await compactGraphInEngine(engine, store, "counter");
const framesAfter = (await wal.list("counter/")).length;
console.log(`frames before: ${framesBefore}, after: ${framesAfter}; new baseline at seq ${result.baselineSeq}`);

handle.dispose();
await engine.close();
