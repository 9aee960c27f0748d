/**
 * A graph writer whose PostgreSQL lease was taken over acknowledges nothing it did not store (postgres-failover's
 * SIGSTOP case, 1 run in 3-4: "B's wave 32 at seq 161: expected { w: 'A', ... }").
 *
 * Through an engine, the store actor refuses a whole puts op (a wave's WAL frames) once its backend's lease is lost,
 * when the main thread posted it before it heard: a refusal of unknown keys. The pair's loss check then read the
 * store to see whether its frames were there, and found the new holder's: the new holder restored up to the old
 * writer's last acknowledged seq, so its own baseline (and frames) stand at exactly the seqs the old writer had not
 * acknowledged yet. handle.flush() resolved with the seq of a wave that was never stored.
 *
 * The interleaving is forced, no timing: the old writer's lease is expired by the database clock (as a paused
 * process's would) and a new holder takes the store, restores and attaches; then, in one tick, the old writer deletes
 * a key of another tier of the store (the actor awaits a delete before its next op: the fence refuses it, and the
 * backend's lease is lost) and sets a wave, whose frames reach the actor after that.
 * Real parts: PostgreSQL, the engine's worker thread.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import {
  attachSnapshotStorage,
  createGraph,
  kvStorage,
  openStorageEngine,
  postgresBackend,
  restoreSnapshot,
  snapshotStorage,
  walFrameCodec,
  type GraphCheckpointRecord,
  type StorageEngine,
  type WALFrame,
} from "../../src/index.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { codeOf } from "../support/lease-loss.js";

const database = useTestDatabase();
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ENTRY = new URL("../../dist/src/index.js", import.meta.url).href;

/**
 * The new holder, in a process of its own (one process attaches a graph to a store once): takes the lapsed store,
 * restores graph g, attaches, writes one wave and closes; says what it restored and the seq its flush acknowledged.
 */
const NEW_HOLDER = `
const [entry, url, schema, store] = process.argv.slice(1);
const m = await import(entry);
const backend = await m.postgresBackend({ url, schema, store, lease: { holder: "new" } });
const pair = { snapshot: m.snapshotStorage(backend), wal: m.kvStorage(backend, { codec: m.walFrameCodec }) };
const g = m.createGraph("g");
g.state("v", "");
await m.restoreSnapshot(g, pair);
const restored = g.get("v");
const handle = m.attachSnapshotStorage(g, [pair]);
g.set("v", "new holder");
const seq = await handle.flush();
await handle.dispose();
await backend.close();
process.stdout.write(JSON.stringify({ restored, seq }));
`;

async function newHolder(url: string, schema: string, store: string): Promise<unknown> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", NEW_HOLDER, ENTRY, url, schema, store], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  const [code] = (await once(child, "close")) as [number | null];
  expect(code, "the new holder's exit code").toBe(0);
  return JSON.parse(out) as unknown;
}

/** How a flush ended: the seq it acknowledged, or its error's code and its cause's. */
const ending = (p: Promise<number>): Promise<string> =>
  p.then(
    (seq) => `resolved ${seq}`,
    (e: unknown) => `rejected ${String(codeOf(e))} (${String(codeOf((e as Error).cause))})`,
  );

it("engine: a wave refused in the actor after a takeover is not acknowledged, whatever the new holder stored", async () => {
  const db = await database();
  const store = "lost-lease-ack";
  const engine: StorageEngine = openStorageEngine({ threads: 1, onError: () => undefined });
  cleanups.push(() => engine.close());
  // A long lease: the old writer's own deadline never passes here, its writes reach the database and are fenced there.
  const spec = { kind: "postgres", url: db.url, schema: db.schema, store, lease: { holder: "old", ttlMs: 60_000 } } as const;
  const pair = { snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal: engine.kv<WALFrame>(spec, { codec: walFrameCodec }) };
  const other = engine.kv<number>(spec, { name: "other" });
  const g = createGraph("g");
  g.state("v", "");
  const handle = attachSnapshotStorage(g, [pair]);
  cleanups.push(() => handle.dispose());
  g.set("v", "acknowledged");
  const acked = await handle.flush();

  // The old writer's lease lapses by the database clock; a new holder takes the store over and attaches.
  const raw = await db.raw();
  await raw.query(`UPDATE "${db.schema}".graphrefly_storage_lease SET expires_at = clock_timestamp() WHERE store = $1`, [store]);
  expect(await newHolder(db.url, db.schema, store)).toEqual({ restored: "acknowledged", seq: acked + 2 }); // its baseline at acked + 1

  // One tick of the old writer: the fenced delete runs in the actor before the wave's frames arrive there.
  const deleted = other.delete("x").then(
    () => "deleted",
    (e: unknown) => String(codeOf(e)),
  );
  g.set("v", "stale");
  const stale = await ending(handle.flush());
  expect(await deleted).toBe("not-owner");
  // Before the fix: "resolved <acked + 1>", the seq of the new holder's baseline, the stale wave nowhere.
  expect(stale).toBe("rejected write-refused (not-owner)");
  // And it stays so: nothing of the old writer is acknowledged any more.
  expect(await ending(handle.flush())).toBe("rejected write-refused (not-owner)");

  const check = createGraph("g");
  check.state("v", "");
  const reader = await postgresBackend({ url: db.url, schema: db.schema, store, readOnly: true });
  cleanups.push(() => reader.close());
  await restoreSnapshot(check, { snapshot: snapshotStorage<GraphCheckpointRecord>(reader), wal: kvStorage<WALFrame>(reader, { codec: walFrameCodec }) });
  expect(check.get("v")).toBe("new holder");
});
