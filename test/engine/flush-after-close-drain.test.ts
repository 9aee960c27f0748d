/**
 * A tier's flush() called once engine.close()'s drain ended (task 299). Every write a tier took was taken before the
 * drain began (nothing is taken once the close started), so the drain answers for all of them: a flush after a
 * clean drain resolves (the data is read back by a fresh engine), one after a drain that failed for the tier
 * rejects with `closed` carrying that failure (never a call to retry, never "refused"), and one after a drain the
 * close gave up on (closeTimeoutMs) rejects with the close-timeout the close reported. Before, any flush after the
 * drain ended rejected `closed` ("tier is closing") although the drain had stored its writes: attach's pair took that
 * as its write refused for good (test/persistence/attach-dispose-close-pending). Kv, snapshot and append-log
 * proxies used directly; real engine workers over real SQLite and file stores; the file store's EIO comes from the
 * test-only marker file beside its directory (src/backend/file-faults.ts), the held drain from the
 * fixture's flush gate (a worker entry that holds the actor's thread at a flush until the test opens it).
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";
import { WRITE_FAULT_ENV } from "../../src/backend/file-faults.js";
import { openStorageEngine, openStorageEngineForTests } from "../../src/engine/engine.js";
import { StorageError } from "../../src/errors.js";
import { expectCoded, tempRoot } from "./fixtures/helpers.js";
import { until } from "../support/wait.js";
import { settledTo } from "../support/settled.js";

const SUFFIX = ".t299-fault";
// Read by each engine worker as it starts (a worker copies process.env): set before any engine opens.
process.env[WRITE_FAULT_ENV] = SUFFIX;

const GATE_WORKER = fileURLToPath(new URL("./fixtures/flush-gate-worker.mjs", import.meta.url));
// The fixture's gate (its FLUSH_GATE_MESSAGE and cells), spelled here: importing the fixture on this thread loads
// dist/'s modules, whose error classes then replace src/'s in comlink's error transfer (instanceof fails at random).
const FLUSH_GATE_MESSAGE = "graphrefly.test-flush-gate";
const GATE = 1;
const GATE_CELLS = 2;
const OPEN = 0;
const ARMED = 1;
const WAITING = 2;
const root = tempRoot("flush-after-close-drain");
afterAll(() => root.remove());

it.each(["kv", "snapshot", "append-log"] as const)(
  "%s: save(); engine.close(); flush() resolves during and after the drain, and the write is stored",
  async (kind) => {
    const store = { kind: "sqlite", path: root.fresh(`${kind}.db`) } as const;
    const engine = openStorageEngine({ threads: 1 });
    const opts = { name: "t", debounceMs: 60_000 };
    const kv = kind === "kv" ? engine.kv<number>(store, opts) : undefined;
    const snap = kind === "snapshot" ? engine.snapshot<{ v: number }>(store, opts) : undefined;
    const log = kind === "append-log" ? engine.appendLog<number>(store, opts) : undefined;
    const tier = kv ?? snap ?? log!;
    kv?.save("k", 1);
    snap?.save({ v: 1 });
    log?.appendEntries([1]);
    const closing = engine.close();
    const during = settledTo(tier.flush());
    expect(await settledTo(closing)).toBe("resolved");
    expect(await during).toBe("resolved");
    // After the drain ended: the same answer (it rejected closed before the fix).
    expect(await settledTo(tier.flush())).toBe("resolved");
    expect(await settledTo(tier.flush())).toBe("resolved");
    expectCoded(await settledTo(Promise.resolve().then(() => kv?.save("k", 2) ?? snap?.save({ v: 2 }) ?? log!.appendEntries([2]))), StorageError, "closed");

    const again = openStorageEngine({ threads: 1 });
    try {
      if (kind === "kv") expect(await again.kv<number>(store, opts).load("k")).toBe(1);
      if (kind === "snapshot") expect(await again.snapshot<{ v: number }>(store, opts).load()).toEqual({ v: 1 });
      if (kind === "append-log") expect((await again.appendLog<number>(store, opts).loadEntries()).entries).toEqual([1]);
    } finally {
      await again.close();
    }
  },
  30_000,
);

it("after a drain that failed for the tier, flush() rejects closed with the drain's failure as cause", async () => {
  const dir = root.fresh("failing");
  const engine = openStorageEngine({ threads: 1, onError: () => undefined });
  const kv = engine.kv<number>({ kind: "file", dir }, { name: "kv", debounceMs: 60_000 });
  kv.save("a", 1);
  await kv.flush(); // the store exists
  writeFileSync(`${dir}${SUFFIX}`, ""); // every write fails EIO from now on
  kv.save("b", 2);
  const closeErr = await settledTo(engine.close());
  expectCoded(closeErr, StorageError, "backend-error");
  const err = await settledTo(kv.flush());
  expectCoded(err, StorageError, "closed");
  // The drain's own failure (not "closing"): the tier's, as the actor reported it.
  expect((err as StorageError).cause).toMatchObject({ code: "backend-error", message: (closeErr as Error).message });
  expect((err as StorageError).message).not.toMatch(/refused/);
}, 30_000);

it("after a drain the close gave up on (closeTimeoutMs), flush() rejects with the close-timeout it reported", async () => {
  // No watchdog within the test: the close's deadline is what gives the held store up.
  const access = openStorageEngineForTests({ threads: 1, watchdogMs: 600_000, closeTimeoutMs: 300, onError: () => undefined }, GATE_WORKER);
  const cells = new Int32Array(new SharedArrayBuffer(GATE_CELLS * Int32Array.BYTES_PER_ELEMENT));
  const openGate = (): void => {
    Atomics.store(cells, GATE, OPEN);
    Atomics.notify(cells, GATE);
  };
  try {
    const store = { kind: "sqlite", path: root.fresh("held.db") } as const;
    const kv = access.engine.kv<number>(store, { name: "kv", debounceMs: 60_000 });
    kv.save("a", 1);
    await kv.flush();
    await access.post(store, { type: FLUSH_GATE_MESSAGE, cells: cells.buffer });
    Atomics.store(cells, GATE, ARMED);
    kv.save("b", 2);
    const held = settledTo(kv.flush()); // its message holds the actor's thread at the gate: the drain is never answered
    await until(() => Atomics.load(cells, GATE) === WAITING, "the actor's thread waits at the gate");
    const closing = settledTo(access.engine.close());
    // The close gave the store up (its deadline passed): the held flush hears it; the thread may go on now.
    expectCoded(await held, StorageError, "close-timeout");
    openGate();
    expectCoded(await closing, StorageError, "close-timeout");
    // After the drain ended: the abandon's report, not closed (it said "closing", as if nothing had happened).
    expectCoded(await settledTo(kv.flush()), StorageError, "close-timeout");
  } finally {
    openGate();
  }
}, 30_000);
