/**
 * flush() calls against a stuck store keep memory bounded (review s15c D2): a call with no write of its tier since the
 * tier's previous call answers for the same writes, so it adds no op. While that call's op is in flight it shares ONE
 * next flush, held until the one in flight is answered: per tier at most one flush op in flight and one held, however
 * many calls. Before, each call added an op, a waiter and a message (4 GB RSS in 25 s of a server flushing per
 * request against a locked SQLite file). A test worker entry (fixtures/flush-gate-worker.mjs) counts the flush ops
 * the actor receives and holds its thread at a gate: a store that does not answer, for as long as the test needs.
 * Real worker threads, real SQLite files, a real second process holding the file's write lock.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngineForTests, type EngineTestAccess } from "../../src/engine/engine.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import { StorageError } from "../../src/errors.js";
import { flushCalls } from "../support/flush-calls.js";
import { tempRoot } from "./fixtures/helpers.js";
import { ARMED, FLUSH_GATE_MESSAGE, GATE, GATE_CELLS, OPEN, RECEIVED, WAITING } from "./fixtures/probe-messages.mjs";

const GATE_WORKER = fileURLToPath(new URL("./fixtures/flush-gate-worker.mjs", import.meta.url));
const LOCKER = fileURLToPath(new URL("./fixtures/sqlite-locker.mjs", import.meta.url));

const root = tempRoot("flush-join");
afterAll(() => root.remove());
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

interface Gated {
  access: EngineTestAccess;
  store: StoreSpec;
  kv: KvStorageTier<unknown>;
  cells: Int32Array;
  /** Holds the actor's thread at the next message carrying a flush; resolves once it waits there. */
  holdNext(): Promise<void>;
  /** Lets the held thread go on. */
  open(): void;
  /** Flush ops the actor received since `stuckFlush`. */
  received(): number;
  /**
   * Counts from zero, saves "a" = 1 and flushes it; resolves once the actor's thread holds that flush unapplied (no
   * flush is answered from then until `open` or `holdNext`), with its answer (`first`).
   */
  stuckFlush(): Promise<{ first: Promise<void> }>;
}

/** An engine on a fresh SQLite store through the gate worker, a kv tier warmed up (opened, one flush answered). */
async function gated(): Promise<Gated> {
  // The gate holds the thread without a heartbeat: the watchdog must not take that for a hung worker.
  const access = openStorageEngineForTests({ threads: 1, watchdogMs: 600_000, onError: () => undefined }, GATE_WORKER);
  const cells = new Int32Array(new SharedArrayBuffer(GATE_CELLS * Int32Array.BYTES_PER_ELEMENT));
  const open = (): void => {
    Atomics.store(cells, GATE, OPEN);
    Atomics.notify(cells, GATE);
  };
  cleanups.push(() => {
    open(); // a test that failed must not leave the thread held
    return access.engine.close();
  });
  const store: StoreSpec = { kind: "sqlite", path: root.fresh("s.db") };
  const kv = access.engine.kv<unknown>(store, { name: "kv", debounceMs: 60_000 });
  kv.save("warm", 0);
  await kv.flush();
  await access.post(store, { type: FLUSH_GATE_MESSAGE, cells: cells.buffer });
  const holdNext = async (): Promise<void> => {
    Atomics.store(cells, GATE, ARMED);
    Atomics.notify(cells, GATE); // a thread waiting at the gate goes on, and waits again at the next flush
    const waiting = waitAsync(cells, GATE, ARMED);
    if (waiting.async) await waiting.value;
    expect(Atomics.load(cells, GATE)).toBe(WAITING);
  };
  const stuckFlush = async (): Promise<{ first: Promise<void> }> => {
    Atomics.store(cells, RECEIVED, 0);
    const stuck = holdNext();
    kv.save("a", 1);
    const first = kv.flush();
    await stuck;
    return { first };
  };
  return { access, store, kv, cells, holdNext, open, received: () => Atomics.load(cells, RECEIVED), stuckFlush };
}

/** Atomics.waitAsync (Node 16+; TypeScript declares it from lib es2024, this project's lib is older). */
const waitAsync = (Atomics as unknown as {
  waitAsync(cells: Int32Array, index: number, value: number): { async: boolean; value: Promise<string> | string };
}).waitAsync;

/** Another process holding the SQLite file's write lock until `release()`. */
async function lockFile(path: string): Promise<{ release(): Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, [LOCKER, path], { stdio: ["pipe", "pipe", "inherit"] });
  const said = (word: string): Promise<void> =>
    new Promise((resolve, reject) => {
      let out = "";
      const onData = (d: Buffer): void => {
        out += d.toString();
        if (out.includes(word)) {
          child.stdout!.off("data", onData);
          resolve();
        }
      };
      child.stdout!.on("data", onData);
      child.once("exit", (code) => reject(new Error(`locker exited (${code}) before saying ${word}`)));
    });
  await said("locked");
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    const unlocked = said("unlocked");
    child.stdin!.end();
    await unlocked;
    if (child.exitCode === null) await once(child, "exit");
  };
  cleanups.push(release);
  return { release };
}

describe("flush() calls while the tier's flush is unanswered", () => {
  it("calls with no write since share one flush op: one in flight, one held, however many calls", async () => {
    const { kv, open, received, stuckFlush } = await gated();
    const { first } = await stuckFlush(); // nothing is answered from here on
    const calls = await flushCalls(kv, 100, 20);
    open();
    await first;
    await Promise.all(calls);
    // The held one was not needed: `first` stored what the calls answer for. Before: 2,001 ops (one per call).
    expect(received()).toBe(1);
    expect(await kv.load("a")).toBe(1);
  });

  it("calls in one turn with no write since share the first one's op", async () => {
    const { kv, cells, received } = await gated();
    Atomics.store(cells, RECEIVED, 0);
    kv.save("a", 1);
    const calls = Array.from({ length: 1000 }, () => kv.flush());
    await Promise.all(calls);
    expect(received()).toBe(1); // before: 1,000
    expect(await kv.load("a")).toBe(1);
  });

  it("a write between calls: the held flush goes before it, so it answers only for the writes before its calls", async () => {
    const { kv, open, received, stuckFlush } = await gated();
    const { first } = await stuckFlush();
    const before = await flushCalls(kv, 30, 10);
    // A value the store can never take, saved after those calls: its refusal is not theirs (design §3.16).
    kv.save("bad", Number.NaN);
    kv.save("b", 2);
    const after = kv.flush();
    const later = await flushCalls(kv, 30, 10);
    open();
    await first;
    await Promise.all(before);
    const refused = await after.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(Error);
    expect((refused as { code?: string }).code).toBe("encode-failed");
    // The calls after `after`: `after`, called before them, reported the refusal (design §3.16); their writes are
    // stored.
    await Promise.all(later);
    expect([await kv.load("a"), await kv.load("b"), await kv.load("bad")]).toEqual([1, 2, undefined]);
    // `first`, the held flush (sent before the refused write) and `after`; the later calls' held one was not sent
    // (`after` stored their writes). Before: 602 ops.
    expect(received()).toBe(3);
    // Reported once: the next call answers for nothing more.
    await kv.flush();
    expect(received()).toBe(4);
  });

  it("a failure after the calls: they get a retry (the held flush is sent then), which stores the writes", async () => {
    const { kv, store, holdNext, open, received, stuckFlush } = await gated();
    const lock = await lockFile((store as { path: string }).path);
    const { first } = await stuckFlush();
    const calls = await flushCalls(kv, 50, 20);
    const stuck = holdNext(); // lets `first` go (it fails: the file is locked) and holds the next flush message
    const failed = await first.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failed).toBeInstanceOf(StorageError);
    await stuck; // the held flush was sent once `first` failed
    await lock.release();
    open();
    await Promise.all(calls); // the retry stored "a": every call made before the failure resolves
    expect(received()).toBe(2); // `first` and the retry; before: 1,001 ops
    expect(await kv.load("a")).toBe(1);
  });

  it("the engine closing while a flush is held: the calls are answered by the close's drain, never resolved unstored", async () => {
    const { access, kv, store, open, received, stuckFlush } = await gated();
    const lock = await lockFile((store as { path: string }).path);
    const { first } = await stuckFlush();
    const calls = await flushCalls(kv, 10, 10);
    const closing = access.engine.close();
    open(); // `first` fails (the file is locked), and so does the close's drain: "a" is never stored
    const heard = await Promise.allSettled([first, ...calls, closing]);
    expect(heard.map((r) => r.status)).toEqual(heard.map(() => "rejected"));
    expect(received()).toBe(1);
    await lock.release();
  });

  it("the tier closing while a flush is held: the held flush goes before the close", async () => {
    const { kv, open, received, stuckFlush } = await gated();
    const { first } = await stuckFlush();
    const calls = await flushCalls(kv, 10, 10);
    const closing = kv.close();
    open();
    await first;
    await Promise.all(calls);
    await closing;
    expect(received()).toBe(2); // `first` and the held one (the close is no flush op)
  });
});
