// A reactive graph persisted through the worker engine, then restored in a second process.
// Run: node examples/graph-two-processes.mjs [dir]
// The first process writes and exits; it spawns the second, which restores the graph from the same SQLite file.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { attachSnapshotStorage, createGraph, openStorageEngine, restoreSnapshot, walFrameCodec } from "graphrefly-storage";

/** Both processes build the same graph shape; storage restores its values. */
function buildGraph() {
  const graph = createGraph("shop");
  graph.state("orders", 0);
  graph.state("revenue", 0);
  graph.derived("average", ["orders", "revenue"], (orders, revenue) => (orders === 0 ? 0 : revenue / orders));
  return graph;
}

const [, , first, second] = process.argv;

if (first === "--restore") {
  const path = second;
  const engine = openStorageEngine({ threads: 1 });
  const store = { kind: "sqlite", path };
  const graph = buildGraph();
  const result = await restoreSnapshot(graph, {
    snapshot: engine.snapshot(store),
    wal: engine.kv(store, { codec: walFrameCodec }),
  });
  console.log(`restored at seq ${result.finalSeq}: orders=${graph.get("orders")} revenue=${graph.get("revenue")} average=${graph.get("average")}`);
  await engine.close(); // a process with an open engine keeps its worker threads: close() to exit
} else {
  const dir = first ?? mkdtempSync(join(tmpdir(), "grf-example-graph-"));
  const path = join(dir, "shop.db");
  const engine = openStorageEngine({ threads: 1 });
  const store = { kind: "sqlite", path };
  const graph = buildGraph();
  const handle = attachSnapshotStorage(graph, [
    { snapshot: engine.snapshot(store), wal: engine.kv(store, { codec: walFrameCodec }) },
  ]);
  for (let i = 1; i <= 5; i++) {
    graph.batch(() => {
      graph.set("orders", i);
      graph.set("revenue", i * 20);
    });
  }
  const seq = await handle.flush(); // every change above is now durable
  console.log(`writer: durable up to seq ${seq}`);
  handle.dispose();
  await engine.close(); // releases the store's lock so another process may open it

  const self = fileURLToPath(import.meta.url);
  process.stdout.write(execFileSync(process.execPath, [self, "--restore", path], { encoding: "utf8" }));
}
