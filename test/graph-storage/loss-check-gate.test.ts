/**
 * While a loss check cannot read the WAL's store (a PostgreSQL lease the dead worker holds), a rebaseline's flush
 * (and any handle.flush() behind its gate) waited on the gate, which waits for the check's end, instead of
 * rejecting with why the store could not be read (review; design §3.16). Real parts: PostgreSQL, SQLite, workers.
 */
import { expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage, type GraphCheckpointRecord } from "../../src/index.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { openFaultEngine } from "../support/faults.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { smallGraph } from "../support/small-graphs.js";
import { afterAll } from "vitest";

const tmp = tempDir("loss-check-gate");
afterAll(() => tmp.remove());
const database = useTestDatabase();

it("a check failing to read the WAL's store: a rebaseline's flush rejects with why, it does not wait", async () => {
  const db = await database();
  let locked = 0;
  const e1 = openFaultEngine({ threads: 1, onError: (e) => void ((e as { code?: string }).code === "store-locked" && locked++) });
  const e2 = openStorageEngine({ threads: 1, onError: () => {} });
  const walStore: StoreSpec = { kind: "postgres", url: db.url, schema: db.schema, store: "review-gate-hang", lease: { ttlMs: 8_000 } };
  const snapStore: StoreSpec = { kind: "sqlite", path: tmp.path("snap.db") };
  let state = "pending";
  let lockedWhenLooked = 0;
  let stateWhenLooked = "";
  let final = "";
  try {
    const wal = e1.kv<WALFrame>(walStore, { codec: walFrameCodec, debounceMs: 60_000 });
    const snapshot = e2.snapshot<GraphCheckpointRecord>(snapStore);
    const a = smallGraph("a");
    const ha = attachSnapshotStorage(a, [{ snapshot, wal }], { onError: () => {} });
    a.set("v", 1);
    await ha.flush();
    a.set("v", 2); // lost with the worker
    await new Promise((r) => setTimeout(r, 50));
    await e1.injectFault(walStore, "terminate");
    while (locked < 1) await new Promise((r) => setTimeout(r, 10));
    const reb = ha.rebaseline().then(
      () => "resolved",
      (err) => `rejected ${(err as { code?: string }).code}`,
    );
    void reb.then((o) => void (state = o));
    const start = locked;
    // Two more attempts of the check failed to read the store since: a flush would have rejected by now.
    while (locked < start + 2 && state === "pending") await new Promise((r) => setTimeout(r, 10));
    lockedWhenLooked = locked;
    stateWhenLooked = state;
    final = await reb;
    await ha.dispose().catch(() => undefined);
  } finally {
    await e1.close().catch(() => undefined);
    await e2.close().catch(() => undefined);
  }
  expect(lockedWhenLooked).toBeGreaterThan(0);
  expect(stateWhenLooked).not.toBe("pending");
  expect(final).toMatch(/^rejected/); // nothing acknowledged while the store cannot say what was lost
}, 60_000);
