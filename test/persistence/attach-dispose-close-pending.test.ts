/**
 * handle.dispose() racing engine.close() with writes still pending (task 285; task 277 covered the acknowledged case,
 * test/persistence/attach-dispose-engine-close). dispose() and a flush() started with it resolve only if what the
 * graph changed is stored: the store is opened again and restored to check; otherwise they reject with a typed error
 * (StorageError). Nothing hangs. Both orders (dispose first, close first) in the same tick, over a store that is
 * slow (many waves pending in the worker), failing (EIO on every write) and failing then healing (the fault goes
 * while they run). Real engine workers over real file and SQLite stores; the file store's EIO comes from the
 * test-only marker file (src/backend/file-faults.ts) beside its directory, its lock left in place.
 * A close that resolved drained every write: then dispose() and flush() resolve too and the last wave restores (task
 * 299; they rejected write-refused before, "the write at seq 1 was refused for good", cause "tier is closing": a
 * flush the pair made after the engine's drain finished met the closing tier, and the pair stopped on `closed`). A
 * healthy (slow) store's close always resolves; a store failing for good never stores the waves.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { WRITE_FAULT_ENV } from "../../src/backend/file-faults.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";

const SUFFIX = ".t285-fault";
// Read by each engine worker as it starts (a worker copies process.env): set before any engine opens.
process.env[WRITE_FAULT_ENV] = SUFFIX;

const root = mkdtempSync(join(tmpdir(), "grf-dispose-close-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const WAVES = 50;
/** A bound far above any run here: a promise not settled by then is a hang, said as such (not a timing check). */
const HANG_MS = 20_000;

type Outcome = "resolved" | { rejected: unknown } | "hung";

function outcomeOf(p: Promise<unknown>): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<Outcome>((resolve) => (timer = setTimeout(() => resolve("hung"), HANG_MS)));
  const settled = p.then(
    (): Outcome => "resolved",
    (e: unknown): Outcome => ({ rejected: e }),
  );
  return Promise.race([settled, hung]).finally(() => clearTimeout(timer));
}

/** What node `c` of graph "g" restores to from the store at `spec`, opened again on this thread. */
async function restoredC(spec: StoreSpec): Promise<unknown> {
  const b: StorageBackend = spec.kind === "file" ? fileBackend(spec.dir) : sqliteBackend((spec as { path: string }).path);
  try {
    const g = createGraph("g");
    g.state("c", -1);
    await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }) });
    return g.get("c");
  } finally {
    await b.close?.();
  }
}

type Mode = "slow" | "failing" | "failing then healing";
type Order = "dispose first" | "close first";

const cases: Array<[string, Mode, Order]> = [];
for (const kind of ["file", "sqlite"]) {
  for (const mode of ["slow", "failing", "failing then healing"] as const) {
    if (kind === "sqlite" && mode !== "slow") continue; // the EIO marker is the file store's
    for (const order of ["dispose first", "close first"] as const) cases.push([kind, mode, order]);
  }
}

it.each(cases)("%s store, %s: dispose() and engine.close() in one tick (%s) resolve only over stored data, else reject typed", async (kind, mode, order) => {
  const name = `${kind}-${mode.replace(/ /g, "-")}-${order.replace(/ /g, "-")}`;
  const spec: StoreSpec = kind === "file" ? { kind: "file", dir: join(root, name) } : { kind: "sqlite", path: join(root, `${name}.db`) };
  const marker = kind === "file" ? `${(spec as { dir: string }).dir}${SUFFIX}` : "";
  const engine = openStorageEngine({ threads: 1 });
  const g = createGraph("g");
  g.state("c", 0);
  const heard: unknown[] = [];
  const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal: engine.kv<WALFrame>(spec, { codec: walFrameCodec }) }], {
    onError: (e) => void heard.push(e),
  });
  await h.flush(); // the store exists, its first baseline stored
  if (mode !== "slow") writeFileSync(marker, ""); // every write fails EIO from now on (a passing failure)
  for (let v = 1; v <= WAVES; v++) g.set("c", v);
  const flushing = outcomeOf(h.flush());
  let disposing: Promise<Outcome>;
  let closing: Promise<Outcome>;
  if (order === "dispose first") {
    disposing = outcomeOf(h.dispose());
    closing = outcomeOf(engine.close());
  } else {
    closing = outcomeOf(engine.close());
    disposing = outcomeOf(h.dispose());
  }
  if (mode === "failing then healing") {
    await new Promise((r) => setTimeout(r, 20));
    rmSync(marker, { force: true });
  }
  const [f, d, c] = await Promise.all([flushing, disposing, closing]);
  rmSync(marker, { force: true });
  const restored = await restoredC(spec);
  const verdict = JSON.stringify({ flush: f, dispose: d, close: c, restored }, (_k, v: unknown) =>
    v instanceof Error ? `${(v as StorageError).code}: ${v.message}` : v,
  );
  for (const o of [f, d, c]) {
    expect(o, verdict).not.toBe("hung");
    if (o !== "resolved" && o !== "hung") expect(o.rejected, String(o.rejected)).toBeInstanceOf(StorageError);
  }
  // Resolved: the data is stored (the last wave restores). A failing store that never heals cannot have stored it.
  if (f === "resolved" || d === "resolved") expect(restored, verdict).toBe(WAVES);
  if (mode === "failing") expect(d, verdict).not.toBe("resolved");
  // The close's drain stored every write: nothing may report one refused or lost (the misreport task 299 fixed).
  if (mode === "slow") expect(c, verdict).toBe("resolved");
  if (c === "resolved") {
    expect(restored, verdict).toBe(WAVES);
    expect(f, verdict).toBe("resolved");
    expect(d, verdict).toBe("resolved");
  }
}, 60_000);

it("flush() and dispose() after engine.close() resolved: the drain stored every wave, so they resolve (task 299)", async () => {
  const spec: StoreSpec = { kind: "sqlite", path: join(root, "after-close.db") };
  const engine = openStorageEngine({ threads: 1 });
  const g = createGraph("g");
  g.state("c", 0);
  const heard: unknown[] = [];
  const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal: engine.kv<WALFrame>(spec, { codec: walFrameCodec }) }], {
    onError: (e) => void heard.push(e),
  });
  await h.flush();
  for (let v = 1; v <= WAVES; v++) g.set("c", v);
  await engine.close(); // drains every wave
  const f = await outcomeOf(h.flush());
  const d = await outcomeOf(h.dispose());
  const verdict = JSON.stringify({ flush: f, dispose: d, heard: heard.map(String) });
  // Before the fix both rejected write-refused (the pair's flush met the closed tier and stopped on `closed`).
  expect(f, verdict).toBe("resolved");
  expect(d, verdict).toBe("resolved");
  expect(heard, verdict).toEqual([]);
  expect(await restoredC(spec)).toBe(WAVES);
}, 60_000);
