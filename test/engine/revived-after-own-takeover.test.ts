/**
 * An engine's store lost with its worker, then held by another process, then taken back by another engine of this
 * process before the first engine's new actor opened it (review r203): the new actor joins this process's hold, and
 * must still hear that another writer held the store since its lost actor's hold (design §3.17, §3.20).
 *
 * A store lock's hold was named by its process alone, and a handle joining its process's hold reported this process
 * as the hold before it: the revived actor was told its hold followed the lost one, and the kv tier's next write
 * landed over the other process's value. Holds are now named by process and `since`, and the lock's row keeps the hold
 * before it, which every handle of the hold reports.
 *
 * Real parts: SQLite and file stores, the engines' worker threads (one terminated through its gate), the other writer
 * in another process (the compiled package: `npm run build` first). No timing assertion.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it, onTestFinished } from "vitest";
import type { StoreSpec } from "../../src/engine/index.js";
import { fileBackend, kvStorage, sqliteBackend, type StorageBackend } from "../../src/index.js";
import { openFaultEngine, type FaultEngine } from "../support/faults.js";
import { otherWriter } from "../support/other-writer.js";

/** Undone once the test ended (whatever it left: an engine, a reader, a directory). */
function atEnd(undo: () => unknown): void {
  onTestFinished(async () => {
    await Promise.resolve().then(undo).catch(() => undefined);
  });
}

function openEngine(): FaultEngine {
  const engine = openFaultEngine({ threads: 1, onError: () => {} });
  atEnd(() => engine.close());
  return engine;
}

/** How a promise settled: "resolved <value>" or "rejected <code>". */
function settled(p: Promise<unknown>): Promise<string> {
  return p.then(
    (v) => `resolved ${String(v)}`,
    (e: unknown) => `rejected ${String((e as { code?: string }).code)}`,
  );
}

for (const kind of ["sqlite", "file"] as const) {
  it(`${kind}: a revived actor joining this process's hold taken over another writer hears that it held the store`, async () => {
    const dir = mkdtempSync(join(tmpdir(), `grf-own-takeover-${kind}-`));
    atEnd(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "s.db");
    const store = join(dir, "fs");
    const spec: StoreSpec = kind === "sqlite" ? { kind: "sqlite", path } : { kind: "file", dir: store };
    const where = kind === "sqlite" ? { path } : { dir: store };
    const reader = (): StorageBackend => (kind === "sqlite" ? sqliteBackend(path, { readOnly: true }) : fileBackend(store, { readOnly: true }));

    const first = openEngine();
    const kv = first.kv<string>(spec);
    kv.save("a", "engine");
    await kv.flush();
    await first.injectFault(spec, "terminate"); // the lock goes with the thread (its last handle)
    expect(await otherWriter(kind, where, "kv")).toEqual({ before: "engine" });
    // Another engine of this process takes the store over the other writer's hold, and keeps it.
    const second = openEngine();
    const kept = second.kv<string>(spec);
    expect(await kept.load("a")).toBe("other writer");
    // The first engine's tier opens the store again: its actor joins the second engine's hold, which followed the
    // other writer's, not the lost actor's.
    kv.save("a", "stale");
    expect(await settled(kv.flush())).toBe("rejected not-owner");
    expect(() => kv.save("a", "stale")).toThrow(expect.objectContaining({ code: "not-owner" }) as Error);
    const ro = reader();
    atEnd(async () => ro.close?.());
    expect(await kvStorage<string>(ro).load("a")).toBe("other writer");
  }, 120_000);

  it(`${kind}: a revived actor joining this process's hold that nobody else preceded writes on`, async () => {
    const dir = mkdtempSync(join(tmpdir(), `grf-own-hold-${kind}-`));
    atEnd(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "s.db");
    const store = join(dir, "fs");
    const spec: StoreSpec = kind === "sqlite" ? { kind: "sqlite", path } : { kind: "file", dir: store };

    const first = openEngine();
    const kv = first.kv<string>(spec);
    kv.save("a", "engine");
    await kv.flush();
    // Another engine of this process holds the store too: the lost actor's hold outlives its thread.
    const second = openEngine();
    const kept = second.kv<string>(spec);
    expect(await kept.load("a")).toBe("engine");
    await first.injectFault(spec, "terminate");
    kv.save("a", "again");
    expect(await settled(kv.flush())).toBe("resolved undefined");
    expect(await kept.load("a")).toBe("again");
  }, 120_000);
}
