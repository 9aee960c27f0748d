/**
 * Fault injection, inline tiers: a real backend (SQLite file or memory) wrapped by `faultyBackend`,
 * which fails chosen calls with system errors (EIO, ENOSPC, EACCES), synchronously or on a later
 * macrotask. Required for every tier: the typed error reaches flush() and onError, pending data is
 * kept through any number of failed retries, a retry after the fault clears persists it exactly once,
 * nothing acknowledged is lost, and a fault never becomes an unhandled rejection.
 */
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { StorageError } from "../../src/errors.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { faultyBackend, type FaultErrno, type FaultyBackend, type FaultRule } from "../support/faulty-backend.js";
import { tempDir } from "./fixtures/crash-harness.js";
import { rejectionOf } from "../engine/fixtures/helpers.js";

const tmp = tempDir("faults-inline");
afterAll(() => tmp.remove());

const opened: StorageBackend[] = [];
afterEach(async () => {
  for (const b of opened.splice(0)) await b.close?.();
});

let storeNo = 0;
type Inner = "sqlite" | "memory";

function innerBackend(kind: Inner): StorageBackend {
  const b = kind === "sqlite" ? sqliteBackend(join(tmp.dir, `s${storeNo++}.db`)) : memoryBackend();
  opened.push(b);
  return b;
}

const text = new TextDecoder();
function stored(b: StorageBackend, key: string): unknown {
  const bytes = b.read(key) as Uint8Array | undefined;
  return bytes === undefined ? undefined : (JSON.parse(text.decode(bytes)) as unknown);
}

/** The wrapped system error, typed: StorageError("backend-error") naming the OS code, with the original as cause. */
function expectBackendError(err: unknown, errno: string): void {
  expect(err).toBeInstanceOf(StorageError);
  const e = err as StorageError;
  expect(e.code).toBe("backend-error");
  expect(e.details.osCode).toBe(errno);
  expect((e.cause as { code?: unknown } | undefined)?.code).toBe(errno);
}

const writeFaults = (errno: FaultErrno): FaultRule[] => [
  { op: "write", errno },
  { op: "writeBatch", errno },
];

interface Combo {
  errno: FaultErrno;
  inner: Inner;
  async: boolean;
}

const combos: Combo[] = [
  { errno: "EIO", inner: "sqlite", async: false },
  { errno: "ENOSPC", inner: "memory", async: true },
  { errno: "EACCES", inner: "sqlite", async: true },
  { errno: "EIO", inner: "memory", async: false },
];

describe.each(combos)("write faults: $errno on $inner (async: $async)", ({ errno, inner, async }) => {
  function setup(): { b: FaultyBackend; errors: Error[] } {
    return { b: faultyBackend(innerBackend(inner), [], { async }), errors: [] };
  }

  it("kv: flush rejects typed, onError hears it, pending survives failed retries, the healed retry writes once", async () => {
    const { b, errors } = setup();
    const kv = kvStorage<number>(b, { name: "kv", debounceMs: 60_000, onError: (e) => errors.push(e) });
    kv.save("acked", 1);
    await kv.flush();

    for (const r of writeFaults(errno)) b.inject(r);
    kv.save("a", 2);
    kv.save("b", 3);
    expectBackendError(await rejectionOf(kv.flush()), errno);
    // A later save of one of the failed keys wins over the failed value on retry.
    kv.save("b", 4);
    expectBackendError(await rejectionOf(kv.flush()), errno);
    expect(errors).toHaveLength(1); // once per failing spell, not per attempt (issue 11 item 3)
    for (const e of errors) expectBackendError(e, errno);
    expect(stored(b.inner, "a")).toBeUndefined();
    expect(stored(b.inner, "acked")).toBe(1);

    b.heal();
    const before = { ...b.calls };
    await kv.flush();
    // One backend batch carried both keys: written exactly once.
    expect(b.calls.writeBatch - before.writeBatch + b.calls.write - before.write).toBe(1);
    expect(stored(b.inner, "a")).toBe(2);
    expect(stored(b.inner, "b")).toBe(4);
    expect(stored(b.inner, "acked")).toBe(1);
    await kv.flush(); // nothing pending: no further write
    expect(b.calls.writeBatch - before.writeBatch + b.calls.write - before.write).toBe(1);
    expect(errors).toHaveLength(1);
  });

  it("append-log: failed flushes keep entries in order; the healed retry appends each entry once", async () => {
    const { b, errors } = setup();
    const log = appendLogStorage<number>(b, {
      name: "log",
      debounceMs: 60_000,
      keyOf: (n) => (n % 2 === 0 ? "even" : "odd"),
      onError: (e) => errors.push(e),
    });
    log.appendEntries([0, 1]);
    await log.flush();
    for (const r of writeFaults(errno)) b.inject(r);
    log.appendEntries([2, 3]);
    expectBackendError(await rejectionOf(log.flush()), errno);
    log.appendEntries([4, 5]); // appended while the failed batch waits for its retry
    expectBackendError(await rejectionOf(log.flush()), errno);
    expect(errors).toHaveLength(1); // once per failing spell
    expect((await log.loadEntries()).entries).toEqual([0, 1]); // only the acknowledged ones

    b.heal();
    await log.flush();
    // Buckets in key order ("even" < "odd"), entries in append order, none duplicated or lost.
    expect((await log.loadEntries()).entries).toEqual([0, 2, 4, 1, 3, 5]);
    log.appendEntries([6]);
    await log.flush();
    expect((await log.loadEntries()).entries).toEqual([0, 2, 4, 6, 1, 3, 5]);
  });

  it("snapshot: a failed save stays pending until a newer save supersedes it; the acknowledged one survives", async () => {
    const { b, errors } = setup();
    const snap = snapshotStorage<{ name: string; v: number }>(b, { name: "snap", debounceMs: 60_000, onError: (e) => errors.push(e) });
    snap.save({ name: "g", v: 1 });
    await snap.flush();
    b.inject({ op: "write", errno });
    snap.save({ name: "g", v: 2 });
    expectBackendError(await rejectionOf(snap.flush()), errno);
    expectBackendError(await rejectionOf(snap.flush()), errno); // still pending: the retry fails again
    expect(await snap.load("g")).toEqual({ name: "g", v: 1 });
    b.heal();
    await snap.flush();
    expect(await snap.load("g")).toEqual({ name: "g", v: 2 });

    b.inject({ op: "write", errno });
    snap.save({ name: "g", v: 3 });
    expectBackendError(await rejectionOf(snap.flush()), errno);
    snap.save({ name: "g", v: 4 }); // supersedes the failed v3
    b.heal();
    const writes = b.calls.write;
    await snap.flush();
    expect(b.calls.write - writes).toBe(1);
    expect(await snap.load("g")).toEqual({ name: "g", v: 4 });
    expect(errors).toHaveLength(2); // two failing spells, each heard once
  });

  it("sync-through saves that fail in the background reach onError only; the next flush retries them", async () => {
    const { b, errors } = setup();
    const kv = kvStorage<number>(b, { name: "sync", onError: (e) => errors.push(e) });
    kv.save("acked", 0);
    await kv.flush();
    b.inject({ op: "write", errno, times: 2 });
    kv.save("x", 1); // fails in the background (nobody awaits it)
    kv.save("y", 2);
    await kv.flush().catch(() => undefined);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    for (const e of errors) expectBackendError(e, errno);
    await kv.flush();
    expect(stored(b.inner, "x")).toBe(1);
    expect(stored(b.inner, "y")).toBe(2);
    expect(stored(b.inner, "acked")).toBe(0);
  });
});

describe("fault timing and semantics", () => {
  it("a save that arrives while a failing flush is in flight wins over the failed value on retry", async () => {
    const b = faultyBackend(innerBackend("memory"), [{ op: "write", errno: "EIO", times: 1 }], { async: true });
    const kv = kvStorage<number>(b, { name: "kv", debounceMs: 60_000 });
    kv.save("k", 1);
    const failing = kv.flush();
    kv.save("k", 2); // lands in pending while the write of k=1 is failing
    expectBackendError(await rejectionOf(failing), "EIO");
    await kv.flush();
    expect(stored(b.inner, "k")).toBe(2);
  });

  it("rollback after a failed flush discards the restored data: nothing unacknowledged is written later", async () => {
    const b = faultyBackend(innerBackend("sqlite"), [{ op: "writeBatch", errno: "ENOSPC" }]);
    const kv = kvStorage<number>(b, { name: "kv", debounceMs: 60_000 });
    kv.save("acked", 1);
    await kv.flush();
    kv.save("x", 1);
    kv.save("y", 2);
    expectBackendError(await rejectionOf(kv.flush()), "ENOSPC");
    kv.rollback();
    b.heal();
    await kv.flush();
    expect(stored(b.inner, "x")).toBeUndefined();
    expect(stored(b.inner, "y")).toBeUndefined();
    expect(stored(b.inner, "acked")).toBe(1);
  });

  it("a torn append batch (first segment landed, then EIO) is overwritten by the retry, never duplicated", async () => {
    // A non-atomic backend (like the file backend) can apply a prefix of a batch before failing.
    const b = faultyBackend(innerBackend("memory"), [{ op: "writeBatch", errno: "EIO", torn: 1, times: 2 }]);
    expect(b.supports.atomicBatch).toBe(false);
    const log = appendLogStorage<string>(b, { name: "log", debounceMs: 60_000, keyOf: (s) => s.slice(0, 1) });
    log.appendEntries(["a0", "b0"]);
    expectBackendError(await rejectionOf(log.flush()), "EIO");
    expect((await log.loadEntries()).entries).toEqual(["a0"]); // the torn prefix is visible
    log.appendEntries(["a1", "c0"]);
    expectBackendError(await rejectionOf(log.flush()), "EIO");
    await log.flush();
    expect((await log.loadEntries()).entries).toEqual(["a0", "a1", "b0", "c0"]);
    await log.compact();
    expect((await log.loadEntries()).entries).toEqual(["a0", "a1", "b0", "c0"]);
  });

  it("a list fault while an append flush looks up its segment number fails that flush and is retried", async () => {
    const b = faultyBackend(innerBackend("sqlite"), [{ op: "list", errno: "EIO", times: 1 }]);
    const errors: Error[] = [];
    const log = appendLogStorage<number>(b, { name: "log", debounceMs: 60_000, onError: (e) => errors.push(e) });
    log.appendEntries([1, 2]);
    expectBackendError(await rejectionOf(log.flush()), "EIO");
    expect(errors).toHaveLength(1);
    await log.flush();
    expect((await log.loadEntries()).entries).toEqual([1, 2]);
  });

  it("a failed compaction write leaves the log readable and complete", async () => {
    const b = faultyBackend(innerBackend("sqlite"));
    const log = appendLogStorage<number>(b, { name: "log", debounceMs: 60_000 });
    for (let i = 0; i < 5; i++) {
      log.appendEntries([i]);
      await log.flush();
    }
    b.inject({ op: "writeBatch", errno: "ENOSPC" });
    const err = await rejectionOf(log.compact());
    expect((await log.loadEntries()).entries).toEqual([0, 1, 2, 3, 4]);
    b.heal();
    await log.compact();
    expect((await log.loadEntries()).entries).toEqual([0, 1, 2, 3, 4]);
    expectBackendError(err, "ENOSPC");
  });
});

/**
 * Reads, lists, deletes and compactions of a backend that fails with a raw system error. The built-in
 * backends type their own failures; a custom backend (or this wrapper) does not, so the tier must.
 */
describe("read-side faults: typed errors, nothing lost", () => {
  it("kv load, list, listByPrefix and delete reject with StorageError('backend-error') naming the OS code", async () => {
    const b = faultyBackend(innerBackend("sqlite"));
    const kv = kvStorage<number>(b, { name: "kv", debounceMs: 60_000 });
    kv.save("p/a", 1);
    kv.save("p/b", 2);
    await kv.flush();
    b.inject({ op: "read", errno: "EIO" });
    b.inject({ op: "list", errno: "EACCES" });
    b.inject({ op: "delete", errno: "EIO" });
    const failures = {
      load: await rejectionOf(kv.load("p/a")),
      list: await rejectionOf(kv.list("p/")),
      listByPrefix: await rejectionOf(
        (async () => {
          for await (const entry of kv.listByPrefix("p/")) void entry;
        })(),
      ),
      delete: await rejectionOf(kv.delete("p/a")),
    };
    b.heal();
    // The failed delete removed nothing; everything acknowledged is intact.
    expect(await kv.list("p/")).toEqual(["p/a", "p/b"]);
    expect(await kv.load("p/a")).toBe(1);
    const typed = Object.fromEntries(
      Object.entries(failures).map(([op, e]) => [op, `${(e as Error).name}/${String((e as { code?: unknown }).code)}`]),
    );
    expect(typed).toEqual({
      load: "StorageError/backend-error",
      list: "StorageError/backend-error",
      listByPrefix: "StorageError/backend-error",
      delete: "StorageError/backend-error",
    });
  });

  it("a failed delete keeps a pending save of that key (the backend delete must succeed first)", async () => {
    const b = faultyBackend(innerBackend("memory"), [{ op: "delete", errno: "EIO" }]);
    const kv = kvStorage<number>(b, { name: "kv", debounceMs: 60_000 });
    kv.save("k", 1);
    await kv.flush();
    kv.save("k", 2);
    await rejectionOf(kv.delete("k"));
    b.heal();
    await kv.flush();
    expect(stored(b.inner, "k")).toBe(2);
  });

  it("snapshot and append-log reads reject typed; the data is readable once the fault clears", async () => {
    const b = faultyBackend(innerBackend("sqlite"));
    const snap = snapshotStorage<{ name: string }>(b, { name: "snap" });
    const log = appendLogStorage<number>(b, { name: "log" });
    snap.save({ name: "g" });
    log.appendEntries([1]);
    await Promise.all([snap.flush(), log.flush()]);
    b.inject({ op: "read", errno: "EACCES" });
    const snapErr = await rejectionOf(snap.load("g"));
    const logErr = await rejectionOf(log.loadEntries());
    b.heal();
    expect(await snap.load("g")).toEqual({ name: "g" });
    expect((await log.loadEntries()).entries).toEqual([1]);
    expectBackendError(snapErr, "EACCES");
    expectBackendError(logErr, "EACCES");
  });
});
