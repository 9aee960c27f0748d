// The graphrefly-storage command-line tool on a store this program wrote: inspect, verify and export.
// Run: node examples/cli-inspect.mjs [dir]
// In a project that installed the package, the same commands are `npx graphrefly-storage inspect <store>` etc.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { attachSnapshotStorage, createGraph, openStorageEngine, walFrameCodec } from "graphrefly-storage";

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), "grf-example-cli-"));
const path = join(dir, "app.db");
const store = { kind: "sqlite", path };

const engine = openStorageEngine({ threads: 1 });
const graph = createGraph("app");
graph.state("greeting", "hello");
const handle = attachSnapshotStorage(graph, [{ snapshot: engine.snapshot(store), wal: engine.kv(store, { codec: walFrameCodec }) }]);
graph.set("greeting", "hello, world");
await handle.flush();
handle.dispose();
await engine.close();

// The bin the package installs (node_modules/.bin/graphrefly-storage), resolved through the package's own entry.
const cli = fileURLToPath(new URL("./cli/main.js", import.meta.resolve("graphrefly-storage")));
const run = (...args) => execFileSync(process.execPath, [cli, ...args], { encoding: "utf8" });
process.stdout.write(run("inspect", path, "--no-progress"));
process.stdout.write(run("verify", path, "--no-progress"));
process.stdout.write(run("export", path, "--graph", "app", "--no-progress"));
