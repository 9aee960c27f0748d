/**
 * Issue 11 item 1, inline tiers and graph attach: a store that cannot keep up (here a full disk, so nothing
 * commits) bounds what a tier holds. Past maxPendingBytes a save throws StorageError("backpressure") and is not
 * accepted; tier.drained() resolves once the tier is back under half the bound; everything accepted lands. attach
 * treats backpressure as transient: frames wait in its outbox (never "write-refused"), onError hears it once,
 * handle.drained() is the writer's signal, and once space is freed every change is stored and restores.
 */
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { StorageError } from "../../src/errors.js";
import {
  attachSnapshotStorage,
  createGraph,
  restoreSnapshot,
  type GraphCheckpointRecord,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { WALFrame } from "../../src/wal/index.js";
import { describeWithTmpfs, tmpfsRoot } from "../support/tmpfs.js";

const disks = tmpfsRoot("backpressure");
afterAll(() => disks.remove());

const RETRY = { initialMs: 20, maxMs: 100 };
const pad = "x".repeat(1000);

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describeWithTmpfs(import.meta.url, "backpressure (inline tiers)", () => {
  it("past maxPendingBytes a save throws backpressure and is not accepted; drained() says when to write again; all accepted values land", async () => {
    const disk = disks.mount("kv", 16 * 1024);
    const backend = fileBackend(join(disk.dir, "store"));
    const kv = kvStorage<{ i: number; pad: string }>(backend, { maxPendingBytes: 64 * 1024, retry: RETRY, onError: () => {} });
    kv.save("warm", { i: -1, pad });
    await kv.flush();
    disk.fill();
    let accepted = 0;
    let refused: unknown;
    while (accepted < 1000) {
      refused = thrown(() => kv.save(`k${accepted}`, { i: accepted, pad }));
      if (refused !== undefined) break;
      accepted++;
    }
    expect(refused).toBeInstanceOf(StorageError);
    expect(refused).toMatchObject({ code: "backpressure", details: { maxPendingBytes: 64 * 1024 } });
    expect(accepted).toBeGreaterThan(10);
    expect(accepted).toBeLessThan(200); // ~1 KB each against a 64 KiB bound
    let drained = false;
    const waiting = kv.drained!().then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(drained, "nothing can commit while the disk is full").toBe(false);

    disk.free(); // the backed-off retry commits the backlog
    await waiting;
    kv.save(`k${accepted}`, { i: accepted, pad }); // the refused value, saved again
    await kv.flush();
    const keys = await kv.list("k");
    expect(keys).toHaveLength(accepted + 1);
    expect(await kv.load(`k${accepted}`)).toEqual({ i: accepted, pad });
    await kv.close();
  });

  it("maxPendingBytes is validated", () => {
    const backend = fileBackend(join(disks.mount("opts", 1024).dir, "s"));
    expect(() => kvStorage(backend, { maxPendingBytes: 0 })).toThrow(RangeError);
    expect(() => kvStorage(backend, { maxPendingBytes: "1" as unknown as number })).toThrow(TypeError);
    expect(() => kvStorage(backend, { retry: { initialMs: 10, maxMs: 5 } })).toThrow(RangeError);
  });
});

describeWithTmpfs(import.meta.url, "backpressure through graph attach", () => {
  it("frames wait in the outbox (never write-refused), onError hears it once, handle.drained() resolves once space is freed, everything restores", async () => {
    const disk = disks.mount("attach", 16 * 1024);
    const backend = fileBackend(join(disk.dir, "store"));
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap", retry: RETRY });
    const wal = kvStorage<WALFrame>(backend, { name: "wal", maxPendingBytes: 16 * 1024, retry: RETRY });
    const g = createGraph("g");
    g.state("a", "");
    const errors: Error[] = [];
    // Counts the saves the WAL tier refused: once full, attach waits for drained() instead of trying every wave.
    let refusedSaves = 0;
    const countingWal = new Proxy(wal, {
      get(target, prop, receiver) {
        if (prop !== "save") return Reflect.get(target, prop, receiver) as unknown;
        return (key: string, frame: WALFrame) => {
          try {
            target.save(key, frame);
          } catch (err) {
            refusedSaves++;
            throw err;
          }
        };
      },
    });
    const h = attachSnapshotStorage(g, [{ snapshot, wal: countingWal }], { compactEvery: Number.POSITIVE_INFINITY, onError: (e) => errors.push(e) });
    await h.flush();
    disk.fill();
    for (let i = 0; i < 300; i++) g.set("a", `${i}:${pad}`);
    const backpressure = errors.filter((e) => (e as StorageError).code === "backpressure");
    expect(backpressure, "heard once, not once per change").toHaveLength(1);
    expect(refusedSaves, "one refused save per spell, not one per change").toBe(1);
    expect(errors.some((e) => (e as StorageError).code === "write-refused")).toBe(false);

    let drained = false;
    const waiting = h.drained().then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(drained).toBe(false);
    disk.free();
    await waiting;
    const seq = await h.flush();
    expect(seq).toBe(h.seq);
    expect(errors.some((e) => (e as StorageError).code === "write-refused")).toBe(false);

    const copy = createGraph("g");
    copy.state("a", "");
    await restoreSnapshot(copy, { snapshot, wal });
    expect(copy.snapshot()).toEqual(g.snapshot());
    await h.dispose();
  });
});
