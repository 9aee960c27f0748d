/**
 * Fault injection inside the worker, with real OS faults (a worker can only open sqlite/file/memory
 * stores, so a wrapper cannot reach it):
 * - RLIMIT_FSIZE = 0 on this process (set and cleared from outside with `prlimit`): every file write of
 *   the process fails — EFBIG for the file backend, SQLITE_IOERR for SQLite — exactly as a full or
 *   refusing disk would, and it clears without restarting anything.
 * - a file store whose directory is swapped for a regular file (ENOTDIR, even for root).
 * Required: the typed error reaches flush() and the engine's onError, pending data is kept, the retry
 * after the fault clears persists it exactly once (append entries in order, none duplicated), nothing
 * acknowledged is lost, and the engine keeps serving other stores meanwhile.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { kvStorage } from "../../src/tier/kv.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { assertBuilt, tempDir, type TempDir } from "./fixtures/crash-harness.js";
import { rejectionOf } from "../engine/fixtures/helpers.js";

let tmp: TempDir;
beforeAll(() => {
  assertBuilt();
  tmp = tempDir("faults-worker");
});
afterAll(() => tmp.remove());

let engine: StorageEngine | undefined;
afterEach(async () => {
  clearDiskFull();
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

// ---- the OS fault: RLIMIT_FSIZE of this process -------------------------------------------------------------

const pid = String(process.pid);
let savedSoftLimit: string | undefined;

function prlimit(...args: string[]): string {
  return execFileSync("prlimit", ["--pid", pid, ...args], { encoding: "utf8" }).trim();
}

/** From now on every write to a regular file by this process (worker threads included) fails. */
function makeDiskFull(): void {
  savedSoftLimit ??= prlimit("--fsize", "--output=SOFT", "--noheadings");
  prlimit("--fsize=0:");
}

function clearDiskFull(): void {
  if (savedSoftLimit === undefined) return;
  prlimit(`--fsize=${savedSoftLimit}:`);
  savedSoftLimit = undefined;
}

// ---- helpers -------------------------------------------------------------------------------------------------

interface Reported {
  error: Error;
  store: StoreSpec;
}

function open(reported: Reported[]): StorageEngine {
  engine = openStorageEngine({ threads: 1, onError: (error, ctx) => reported.push({ error, store: ctx.store }) });
  return engine;
}

/** `code`: the errno in `details.osCode`, or where SQLite names no OS cause, its own code in `details.sqliteCode`. */
function expectBackendError(err: unknown, code: RegExp): void {
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe("backend-error");
  const details = (err as StorageError).details;
  expect(String(details.osCode ?? details.sqliteCode)).toMatch(code);
}

function specOf(kind: "sqlite" | "file", name: string): StoreSpec {
  return kind === "sqlite" ? { kind, path: join(tmp.dir, `${name}.db`) } : { kind, dir: join(tmp.dir, name) };
}

function inlineBackend(spec: StoreSpec): StorageBackend {
  if (spec.kind === "sqlite") return sqliteBackend(spec.path);
  if (spec.kind === "file") return fileBackend(spec.dir);
  throw new Error("test bug: memory stores are not reopened inline");
}

/** The OS code each backend reports when the process may not grow any file. */
const DISK_FULL_CODE = { sqlite: /^SQLITE_(IOERR|FULL)/, file: /^EFBIG$/ };

describe.each(["sqlite", "file"] as const)("disk refuses writes (RLIMIT_FSIZE) under a %s store in the worker", (kind) => {
  it("flush rejects typed, onError hears it, other stores keep serving, the retry writes everything once", async () => {
    const reported: Reported[] = [];
    const e = open(reported);
    const store = specOf(kind, `full-${kind}`);
    const kv = e.kv<number>(store, { name: "kv", debounceMs: 60_000 });
    const log = e.appendLog<number>(store, { name: "log", debounceMs: 60_000 });
    const snap = e.snapshot<{ name: string; v: number }>(store, { name: "snap", debounceMs: 60_000 });
    const bystander = e.kv<string>({ kind: "memory", name: `bystander-${kind}` }, { name: "other" });
    kv.save("acked", 0);
    log.appendEntries([0, 1]);
    snap.save({ name: "g", v: 0 });
    await Promise.all([kv.flush(), log.flush(), snap.flush()]);

    let failures: unknown[];
    try {
      makeDiskFull();
      kv.save("during", 1);
      log.appendEntries([2, 3]);
      snap.save({ name: "g", v: 1 });
      failures = [await rejectionOf(kv.flush()), await rejectionOf(log.flush()), await rejectionOf(snap.flush())];
      // Retried while the disk is still full: fails again, data still pending.
      failures.push(await rejectionOf(log.flush()));
      // The same worker thread keeps serving a store that needs no disk.
      bystander.save("k", "served during the fault");
      await bystander.flush();
      expect(await bystander.load("k")).toBe("served during the fault");
      const [stats] = (await e.stats()).filter((s) => s.store.kind === kind);
      expect(stats!.pendingEntries).toBe(1 + 2 + 1);
      // Acknowledged data is still readable.
      expect(await kv.load("acked")).toBe(0);
    } finally {
      clearDiskFull();
    }
    for (const f of failures) expectBackendError(f, DISK_FULL_CODE[kind]);
    const fromStore = reported.filter((r) => r.store.kind === kind);
    expect(fromStore).toHaveLength(3); // each failing tier once, not per attempt (issue 11 item 3)
    for (const r of fromStore) expectBackendError(r.error, DISK_FULL_CODE[kind]);

    await Promise.all([kv.flush(), log.flush(), snap.flush()]);
    expect(await kv.load("during")).toBe(1);
    expect((await log.loadEntries()).entries).toEqual([0, 1, 2, 3]);
    expect(await snap.load("g")).toEqual({ name: "g", v: 1 });
    await e.close();
    engine = undefined;

    // Durable, as acknowledged: read back inline after the engine is gone.
    const b = inlineBackend(store);
    try {
      expect(await kvStorage<number>(b, { name: "kv" }).load("during")).toBe(1);
      expect((await appendLogStorage<number>(b, { name: "log" }).loadEntries()).entries).toEqual([0, 1, 2, 3]);
      if (kind === "file") {
        // Failed writes left no temp files behind.
        expect(readdirSync(store.kind === "file" ? store.dir : "").filter((f) => f.startsWith(".tmp-"))).toEqual([]);
      }
    } finally {
      b.close?.();
    }
  });

  it("a fault that comes and goes under sustained appends: every entry lands exactly once, in order", async () => {
    const reported: Reported[] = [];
    const e = open(reported);
    const store = specOf(kind, `flaky-${kind}`);
    const log = e.appendLog<number>(store, { name: "log" }); // sync-through: every tick flushes in the worker
    let next = 0;
    const acked: number[] = [];
    const rejected: unknown[] = [];
    const flushes: Promise<void>[] = [];
    const round = (): void => {
      const upTo = next + 4;
      const entries: number[] = [];
      for (; next < upTo; next++) entries.push(next);
      log.appendEntries(entries);
      flushes.push(
        log.flush().then(
          () => void acked.push(upTo - 1),
          (err: unknown) => void rejected.push(err),
        ),
      );
    };
    try {
      for (let i = 0; i < 10; i++) round();
      await Promise.all(flushes);
      makeDiskFull();
      for (let i = 0; i < 10; i++) round();
      await Promise.all(flushes);
    } finally {
      clearDiskFull();
    }
    for (let i = 0; i < 10; i++) round();
    await Promise.all(flushes);
    await log.flush();

    expect(rejected.length).toBeGreaterThan(0);
    for (const err of rejected) expectBackendError(err, DISK_FULL_CODE[kind]);
    expect(reported.length).toBeGreaterThan(0);
    const { entries } = await log.loadEntries();
    expect(entries).toEqual(Array.from({ length: next }, (_, i) => i));
    // Acknowledgements are monotonic and every acknowledged entry is stored.
    expect(acked).toEqual([...acked].sort((a, b) => a - b));
    expect(entries.length).toBeGreaterThan(Math.max(...acked));
  });
});

describe("a broken file store does not stop the engine", () => {
  it("while one store's directory is gone (ENOTDIR), a SQLite store on the same worker keeps committing", async () => {
    const reported: Reported[] = [];
    const e = open(reported);
    const dir = join(tmp.dir, "swapped");
    const broken = e.kv<number>({ kind: "file", dir }, { name: "kv", debounceMs: 60_000 });
    const healthy = e.kv<number>(specOf("sqlite", "healthy"), { name: "kv", debounceMs: 60_000 });
    broken.save("acked", 1);
    await broken.flush();
    renameSync(dir, `${dir}.aside`);
    writeFileSync(dir, "not a directory");
    try {
      broken.save("pending", 2);
      const err = await rejectionOf(broken.flush());
      expectBackendError(err, /^ENOTDIR$/);
      for (let i = 0; i < 20; i++) {
        healthy.save(`k${i}`, i);
        await healthy.flush();
      }
      expect(await healthy.list()).toHaveLength(20);
    } finally {
      unlinkSync(dir);
      renameSync(`${dir}.aside`, dir);
    }
    await broken.flush();
    expect(await broken.load("pending")).toBe(2);
    expect(await broken.load("acked")).toBe(1);
    expect(reported.map((r) => r.store.kind)).toEqual(["file"]);
  });
});
