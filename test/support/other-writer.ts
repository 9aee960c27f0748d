/**
 * Another writer of a store, in a process of its own (the compiled package: `npm run build` first), for tests of what
 * an engine's tiers do once someone else held their store (graph-storage/revived-takeover).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ENTRY = new URL("../../dist/src/index.js", import.meta.url).href;

export type Kind = "postgres" | "sqlite" | "file";

/**
 * The other writer: opens the store (a PostgreSQL contender waits out the dead worker's lease; a local store's lock
 * is free once the thread ended, tried again while it is not yet), then either restores graph g, attaches, sets v and
 * flushes, or saves kv key a; closes (the lease released, the lock let go).
 */
const OTHER_WRITER = `
const [entry, kind, where, mode] = process.argv.slice(1);
const m = await import(entry);
const at = JSON.parse(where);
const open = () =>
  kind === "postgres" ? m.postgresBackend({ ...at, lease: { holder: "other", waitMs: 60000 } })
  : kind === "sqlite" ? m.sqliteBackend(at.path) : m.fileBackend(at.dir);
let backend;
for (let i = 0; ; i++) {
  try { backend = await open(); break; } catch (e) { if (e.code !== "store-locked" || i > 600) throw e; await new Promise((r) => setTimeout(r, 50)); }
}
let out;
if (mode === "graph") {
  const pair = { snapshot: m.snapshotStorage(backend), wal: m.kvStorage(backend, { codec: m.walFrameCodec }) };
  const g = m.createGraph("g");
  g.state("v", 0);
  await m.restoreSnapshot(g, pair);
  const restored = g.get("v");
  const handle = m.attachSnapshotStorage(g, [pair]);
  g.set("v", "other writer");
  out = { restored, seq: await handle.flush() };
  await handle.dispose();
} else {
  const kv = m.kvStorage(backend);
  out = { before: await kv.load("a") };
  await kv.save("a", "other writer");
  await kv.flush();
}
await backend.close();
process.stdout.write(JSON.stringify(out));
`;

/** Runs the other writer on the store at `where` (kind's open options): what it restored or loaded first. */
export async function otherWriter(kind: Kind, where: object, mode: "graph" | "kv"): Promise<Record<string, unknown>> {
  // A non-zero exit rejects, with the child's stderr in the error.
  const args = ["--input-type=module", "-e", OTHER_WRITER, ENTRY, kind, JSON.stringify(where), mode];
  const { stdout } = await run(process.execPath, args, { cwd: REPO_ROOT, encoding: "utf8" });
  return JSON.parse(stdout) as Record<string, unknown>;
}
