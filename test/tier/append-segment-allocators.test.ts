/**
 * Task 196: the segments layout's allocators (next segment number per bucket) are shared by name by every handle of
 * one persistent store in a thread (d95f022: two handles with allocators of their own overwrote each other's
 * acknowledged appends). The by-name map kept every store's allocator for the thread's life: a long-lived server
 * opening and closing a store per tenant grew it by one entry per store, for good. Now the map forgets a store
 * once nothing uses its allocator, and two live handles still share one. Real SQLite files and file stores, V8's
 * collector (forced through --expose-gc set at run time).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { appendLogStorage, segmentAllocatorsForTesting } from "../../src/tier/append-log.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const dir = mkdtempSync(join(tmpdir(), "append-seg-alloc-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const STORES = 24;

const open = (kind: "sqlite" | "file", name: string): StorageBackend =>
  kind === "sqlite" ? sqliteBackend(join(dir, `${name}.db`)) : fileBackend(join(dir, name));

/** Opens a store, appends and flushes through a segments-layout log, closes both: nothing of it is kept. */
async function useAndClose(kind: "sqlite" | "file", name: string, entries: readonly string[]): Promise<void> {
  const b = open(kind, name);
  const log = appendLogStorage<string>(b, { name: "log", keyOf: () => "k" });
  log.appendEntries(entries);
  await log.flush();
  await log.close();
  await b.close?.();
}

/** Collects until the by-name map names at most `n` stores (a closed tier's last promises may hold it a few turns). */
async function namedAfterCollecting(n: number): Promise<number> {
  for (let i = 0; i < 50 && segmentAllocatorsForTesting.storesNamed() > n; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return segmentAllocatorsForTesting.storesNamed();
}

describe.each(["sqlite", "file"] as const)("%s stores: segment allocators by store name", (kind) => {
  it(`opening and closing ${STORES} stores leaves none of them in the map`, async () => {
    const before = await namedAfterCollecting(0);
    for (let i = 0; i < STORES; i++) await useAndClose(kind, `tenant-${i}`, [`e${i}`]);
    // Before the fix: `before` + 24, whatever was collected.
    expect(await namedAfterCollecting(before)).toBe(before);
  });

  it("two live handles of one store share one allocator across collections, and every append is stored", async () => {
    const h1 = open(kind, "shared");
    const one = appendLogStorage<string>(h1, { name: "log", keyOf: () => "k" });
    one.appendEntries(["one0"]);
    await one.flush();
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    const h2 = open(kind, "shared");
    const two = appendLogStorage<string>(h2, { name: "log", keyOf: () => "k" });
    expect(segmentAllocatorsForTesting.of(h2)).toBe(segmentAllocatorsForTesting.of(h1));
    for (let i = 1; i < 4; i++) {
      two.appendEntries([`two${i}`]);
      await two.flush();
      gc();
      one.appendEntries([`one${i}`]);
      await one.flush();
    }
    // Handle 1's tier closed and dropped, handle 1 still open: a third handle still finds the allocator by name.
    await one.close();
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    const h3 = open(kind, "shared");
    expect(segmentAllocatorsForTesting.of(h3)).toBe(segmentAllocatorsForTesting.of(h1));
    const stored = (await two.loadEntries({ keyFilter: "k" })).entries;
    expect([...stored].sort()).toEqual(["one0", "one1", "one2", "one3", "two1", "two2", "two3"]);
    await two.close();
    await h3.close?.();
    await h2.close?.();
    await h1.close?.();
  });

  it("a store opened again after its allocator was collected appends after what is stored", async () => {
    const before = await namedAfterCollecting(0);
    await useAndClose(kind, "reopened", ["a", "b"]);
    expect(await namedAfterCollecting(before)).toBe(before);
    await useAndClose(kind, "reopened", ["c"]);
    const b = open(kind, "reopened");
    const log = appendLogStorage<string>(b, { name: "log", keyOf: () => "k" });
    expect((await log.loadEntries({ keyFilter: "k" })).entries).toEqual(["a", "b", "c"]);
    await log.close();
    await b.close?.();
  });
});
