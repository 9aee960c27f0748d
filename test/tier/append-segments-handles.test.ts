/**
 * Segments layout (the default), several handles of one store (review r188): each handle numbers its segments, and a
 * segment put applies only while its key is absent, so a number another handle took is listed and skipped, never
 * overwritten. Real handles: two SQLite handles of one file (named differently, so they share no allocator), two
 * file-store handles, an engine's actor beside an inline tier on one SQLite file, two engines on one store. Each
 * flush below resolved (acknowledged) before the other handle wrote; before the fix the second handle's segment
 * took the first's number and replaced its entries.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { acknowledgedAppends, appendFlushed, flushed } from "../support/racing-appends.js";
import { alternateFlushes, expectEachHolds } from "./fixtures/alternating-appends.js";
import { claimOfTwoKeys } from "./fixtures/claims.js";

const dir = mkdtempSync(join(tmpdir(), "append-seg-handles-"));
const engines: Array<ReturnType<typeof openStorageEngine>> = [];
afterAll(async () => {
  for (const e of engines) await e.close();
  rmSync(dir, { recursive: true, force: true });
});

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

/** Two handles of one store; the SQLite pair by absolute and relative path (different names: no shared allocator). */
const PAIRS: Array<[string, (p: string) => [StorageBackend, StorageBackend]]> = [
  ["sqlite, two names", (p) => [sqliteBackend(`${p}.db`), sqliteBackend(relative(process.cwd(), `${p}.db`))]],
  ["sqlite, one name", (p) => [sqliteBackend(`${p}.db`), sqliteBackend(`${p}.db`)]],
  ["file store", (p) => [fileBackend(p), fileBackend(p)]],
];

describe.each(PAIRS)("two handles, %s", (kind, open) => {
  it("alternate one-append flushes to one bucket: every acknowledged entry is stored once", async () => {
    const [h1, h2] = open(join(dir, kind.replace(/\W/g, "-")));
    try {
      const one = appendLogStorage<string>(h1, { name: "log", keyOf: () => "k" });
      const two = appendLogStorage<string>(h2, { name: "log", keyOf: () => "k" });
      const want = await alternateFlushes(one, two, ["one", "two"]);
      await expectEachHolds([one, two], want);
      // Each flush's entries keep their order within the bucket, both handles' alike.
      const all = (await one.loadEntries({ keyFilter: "k" })).entries;
      expect(all.filter((e) => e.startsWith("one"))).toEqual(want.filter((e) => e.startsWith("one")));
      await one.close();
      await two.close();
    } finally {
      await h1.close?.();
      await h2.close?.();
    }
  });

  it("several buckets and several segments in one flush: one conditional batch, renumbered whole", async () => {
    const [h1, h2] = open(join(dir, `multi-${kind.replace(/\W/g, "-")}`));
    try {
      const keyOf = (e: string): string => e.slice(-1);
      const one = appendLogStorage<string>(h1, { name: "log", keyOf });
      const two = appendLogStorage<string>(h2, { name: "log", keyOf });
      one.appendEntries(["one-a", "one-b"]);
      await one.flush();
      two.appendEntries(["two-a", "two-b"]);
      await two.flush();
      one.appendEntries(["one2-a", "one2-b"]);
      await one.flush();
      for (const bucket of ["a", "b"]) {
        const got = (await two.loadEntries({ keyFilter: bucket })).entries;
        expect(sorted(got)).toEqual(sorted([`one-${bucket}`, `two-${bucket}`, `one2-${bucket}`]));
      }
      await one.close();
      await two.close();
    } finally {
      await h1.close?.();
      await h2.close?.();
    }
  });
});

describe("the write stays unconditional where the backend has no conditional batch", () => {
  it("a memory store without writeBatchIf still writes (one handle, numbers from its allocator)", async () => {
    const m = memoryBackend();
    const plain: StorageBackend = {
      name: "plain",
      supports: { ...m.supports, conditionalBatch: false, conditionalKeys: false },
      read: (k) => m.read(k),
      write: (k, v) => m.write(k, v),
      delete: (k) => m.delete(k),
      list: (p) => m.list(p),
      writeBatch: (ops) => m.writeBatch(ops),
    };
    const log = appendLogStorage<string>(plain, { name: "log" });
    log.appendEntries(["a"]);
    await log.flush();
    log.appendEntries(["b"]);
    await log.flush();
    expect((await log.loadEntries()).entries).toEqual(["a", "b"]);
    await log.close();
  });
});

describe("engines", () => {
  it("an engine's actor beside an inline tier on one SQLite file: every acknowledged append is stored", async () => {
    const engine = openStorageEngine({ threads: 1, onError: () => undefined });
    engines.push(engine);
    const path = join(dir, "beside.db");
    const viaEngine = engine.appendLog<string>({ kind: "sqlite", path }, { name: "log", keyOf: () => "k" });
    const backend = sqliteBackend(path);
    try {
      const inline = appendLogStorage<string>(backend, { name: "log", keyOf: () => "k" });
      const want = await alternateFlushes(viaEngine, inline, ["e", "i"]);
      await expectEachHolds([inline, viaEngine], want);
      await inline.close();
    } finally {
      backend.close();
    }
  });

  it.each([
    ["sqlite", (d: string) => ({ kind: "sqlite" as const, path: join(d, "s.db") })],
    ["file", (d: string) => ({ kind: "file" as const, dir: d })],
  ])("two engines on one %s store appending at once: every acknowledged append is stored once", async (kind, spec) => {
    const store = mkdtempSync(join(dir, `two-engines-${kind}-`));
    const e1 = openStorageEngine({ threads: 1, onError: () => undefined });
    const e2 = openStorageEngine({ threads: 1, onError: () => undefined });
    engines.push(e1, e2);
    const logs = [e1, e2].map((e) => e.appendLog<string>(spec(store), { name: "log", keyOf: () => "k" }));
    // Each engine's actor opens the store before the race (in this process two actors opening at once may see the
    // other's lock first: that flush fails, a separate matter). Warm-up entries are left out of what is counted.
    for (const log of logs) {
      for (let tries = 0; ; tries++) {
        log.appendEntries(["warm"]);
        try {
          await log.flush();
          break;
        } catch (err) {
          if (tries === 20) throw err;
        }
      }
    }
    const N = 60;
    // A rejected flush (store-busy or a busy store) leaves its entry pending: each writer's last flush, retried until
    // written, stores it.
    const acked = await acknowledgedAppends(logs, N, appendFlushed, (log) => flushed(() => log.flush(), Number.POSITIVE_INFINITY));
    const stored = (await logs[0]!.loadEntries({ keyFilter: "k" })).entries.filter((e) => e !== "warm");
    expect(acked.length).toBeGreaterThan(0);
    for (const entry of acked) expect(stored).toContain(entry);
    expect(new Set(stored).size).toBe(2 * N);
    expect(stored.length).toBe(2 * N);
    await e1.close();
    await e2.close();
  });
});

describe("file store: a conditional batch claiming absent keys (hard links)", () => {
  it("a claim lost on its second key leaves the store as it was and answers false", () => {
    const store = mkdtempSync(join(dir, "claims-"));
    const b = fileBackend(store);
    try {
      b.write("taken", new Uint8Array([9]));
      const { ops, absent } = claimOfTwoKeys();
      expect(b.writeBatchIf(absent, ops)).toBe(false);
      expect(b.read("free")).toBeUndefined();
      expect(b.read("taken")).toEqual(new Uint8Array([9]));
      expect(b.list()).toEqual(["taken"]);
      b.delete("taken");
      expect(b.writeBatchIf(absent, ops)).toBe(true);
      expect(b.read("free")).toEqual(new Uint8Array([1]));
      expect(b.read("taken")).toEqual(new Uint8Array([2]));
      expect(b.list()).toEqual(["free", "taken"]);
    } finally {
      b.close();
    }
  });
});

describe("SQLite: a conditional batch claiming absent keys (inserts, no read)", () => {
  it("a key stored already refuses the whole batch: the insert before it is rolled back", () => {
    const b = sqliteBackend(join(dir, "claims.db"));
    try {
      b.write("taken", new Uint8Array([9]));
      const { ops, absent } = claimOfTwoKeys();
      expect(b.writeBatchIf(absent, ops)).toBe(false);
      expect(b.list()).toEqual(["taken"]);
      expect(b.read("taken")).toEqual(new Uint8Array([9]));
      b.delete("taken");
      expect(b.writeBatchIf(absent, ops)).toBe(true);
      expect(b.read("free")).toEqual(new Uint8Array([1]));
      expect(b.read("taken")).toEqual(new Uint8Array([2]));
    } finally {
      b.close();
    }
  });
});
