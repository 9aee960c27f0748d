// A graph stored in PostgreSQL through the worker engine: the store any of your server machines can open, one
// writer at a time (a fenced lease), restored here by a second engine as another machine would.
// Run: PG_URL=postgres://user:password@host:5432/db node examples/postgres.mjs [schema]
import { attachSnapshotStorage, createGraph, openStorageEngine, restoreSnapshot, walFrameCodec } from "graphrefly-storage";

const url = process.env.PG_URL;
if (!url) {
  console.error("set PG_URL to a PostgreSQL database, e.g. postgres://postgres:secret@127.0.0.1:5432/postgres");
  process.exit(2);
}
const store = { kind: "postgres", url, store: "inventory", ...(process.argv[2] ? { schema: process.argv[2] } : {}) };

function buildGraph() {
  const graph = createGraph("inventory");
  graph.state("apples", 0);
  graph.state("pears", 0);
  graph.derived("fruit", ["apples", "pears"], (a, p) => a + p);
  return graph;
}

// The writer: takes the store's lease, persists every change; close() releases the lease for the next writer.
const writer = openStorageEngine({ threads: 1 });
const graph = buildGraph();
const handle = attachSnapshotStorage(graph, [{ snapshot: writer.snapshot(store), wal: writer.kv(store, { codec: walFrameCodec }) }]);
graph.set("apples", 12);
graph.set("pears", 30);
console.log(`writer: durable up to seq ${await handle.flush()}`);
handle.dispose();
await writer.close();

// Another machine (here: another engine) restores the graph from the same database.
const reader = openStorageEngine({ threads: 1 });
const restored = buildGraph();
const result = await restoreSnapshot(restored, { snapshot: reader.snapshot(store), wal: reader.kv(store, { codec: walFrameCodec }) });
console.log(`restored at seq ${result.finalSeq}: apples=${restored.get("apples")} pears=${restored.get("pears")} fruit=${restored.get("fruit")}`);
await reader.close();
