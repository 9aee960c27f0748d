/**
 * One SQLite store under several names (review F1). The writer lock was named after the path given, so a symbolic
 * link to the store got a lock of its own and a second writer was admitted beside the holder. The lock is now named
 * after the real file; a file with several hard links (names nothing can tell apart) is refused. As a second guard,
 * an inline compaction whose graph's baseline changed while it folded commits nothing (store-busy), never laying its
 * older baseline over a newer one (that left a WAL gap: acknowledged changes lost). Real files, child processes.
 */
import { existsSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { StorageError } from "../../src/errors.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { GRAPH, inlinePair, randomWave, restoredSnapshot, rng, sqliteStoreWithFrames, storedBaseline } from "../graph-compaction/fixtures.js";
import { killAllStoreChildren, openStoreInChild } from "./store-holder.js";
import { storageErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-names-"));
let counter = 0;
const freshDir = (): string => {
  const dir = join(root, `case-${counter++}`);
  mkdirSync(dir);
  return dir;
};
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await killAllStoreChildren();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));


/** The keys of the store at `path`, read by a reader that takes no lock. */
function keysOf(path: string): readonly string[] {
  const reader = sqliteBackend(path, { readOnly: true });
  try {
    return reader.list();
  } finally {
    reader.close();
  }
}

describe("a SQLite store reached under another name", () => {
  it("through a symbolic link while another process writes it: store-locked, and nothing is written", async () => {
    const dir = freshDir();
    const path = join(dir, "real.db");
    const holder = await openStoreInChild("sqlite", path);
    expect(holder.report.code).toBe("acquired");
    const alias = join(dir, "alias.db");
    symlinkSync(path, alias);
    const err = storageErrorOf(() => sqliteBackend(alias));
    expect(err.code).toBe("store-locked");
    expect(err.details.pid).toBe(holder.pid);
    expect(existsSync(`${alias}-lock`)).toBe(false);
    expect(keysOf(path)).toEqual(["from-child"]);
    await holder.release();
  });

  it("through a symbolic link to a store not created yet (a dangling link): the link and the target share one lock", async () => {
    const dir = freshDir();
    const path = join(dir, "later.db");
    const alias = join(dir, "alias.db");
    symlinkSync(path, alias);
    const holder = await openStoreInChild("sqlite", alias);
    expect(holder.report.code).toBe("acquired");
    expect(existsSync(path)).toBe(true); // SQLite created the file where the link leads
    expect(storageErrorOf(() => sqliteBackend(path)).code).toBe("store-locked");
    expect(keysOf(path)).toEqual(["from-child"]);
    await holder.release();
  });

  it("a directory reached through a symbolic link: one lock", async () => {
    const dir = freshDir();
    const path = join(dir, "real.db");
    const holder = await openStoreInChild("sqlite", path);
    expect(holder.report.code).toBe("acquired");
    const linkedDir = join(root, `linked-${counter++}`);
    symlinkSync(dir, linkedDir);
    expect(storageErrorOf(() => sqliteBackend(join(linkedDir, "real.db"))).code).toBe("store-locked");
    await holder.release();
  });

  it("a file with a second hard link: refused (invalid-argument, reason hard-links) under either name, writable or read-only", async () => {
    const dir = freshDir();
    const path = join(dir, "real.db");
    const b = sqliteBackend(path);
    b.write("k", Uint8Array.of(1));
    b.close();
    const alias = join(dir, "alias.db");
    linkSync(path, alias);
    for (const name of [path, alias]) {
      for (const opts of [{}, { readOnly: true }]) {
        const err = storageErrorOf(() => sqliteBackend(name, opts));
        expect(err.code).toBe("invalid-argument");
        expect(err.details).toMatchObject({ reason: "hard-links", links: 2 });
      }
    }
    // Nothing of the store changed, and one name again makes it a store again.
    rmSync(alias);
    expect(existsSync(`${alias}-lock`)).toBe(false);
    const again = sqliteBackend(path);
    expect(again.read("k")).toEqual(Uint8Array.of(1));
    again.close();
  });

  it("a hard link made while another process writes the store: no second writer", async () => {
    const dir = freshDir();
    const path = join(dir, "real.db");
    const holder = await openStoreInChild("sqlite", path);
    expect(holder.report.code).toBe("acquired");
    const alias = join(dir, "alias.db");
    linkSync(path, alias);
    expect(storageErrorOf(() => sqliteBackend(alias)).code).toBe("invalid-argument");
    expect(existsSync(`${alias}-lock`)).toBe(false);
    await holder.release();
  });
});

describe("inline compaction when another writer got in (the second guard)", () => {
  it("the baseline changed after the fold read it: store-busy, the newer baseline stays, no frame is lost", async () => {
    const dir = freshDir();
    const { backend, graph, handle } = await sqliteStoreWithFrames(join(dir, "store.db"), 12, 0x5eed, cleanups);
    const random = rng(7);
    let baselineReads = 0;
    let newerSeq: number | undefined;
    // What a second writer does between the fold's read and its commit: more changes, and a compaction of its own
    // that stores a newer baseline and deletes the frames below it.
    const secondWriter = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) randomWave(graph, random);
      await handle.flush();
      newerSeq = (await compactGraph({ backend }, { graphName: GRAPH })).baselineSeq;
    };
    const watched: StorageBackend = {
      name: backend.name,
      supports: backend.supports,
      // The stored-graph reader reads the baseline twice (at its start and to see that it did not move meanwhile).
      async read(key) {
        const value = backend.read(key);
        if (key === GRAPH && ++baselineReads === 2) await secondWriter();
        return value;
      },
      readMany: (keys) => backend.readMany(keys),
      write: (key, bytes) => backend.write(key, bytes),
      delete: (key) => backend.delete(key),
      list: (prefix) => backend.list(prefix),
      writeBatch: (ops) => backend.writeBatch(ops),
    };
    const foldStart = (await storedBaseline(backend)).seq;
    const err = await compactGraph({ backend: watched }, { graphName: GRAPH }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(newerSeq).toBeGreaterThan(foldStart);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("store-busy");
    expect((await storedBaseline(backend)).seq).toBe(newerSeq);
    // Every acknowledged change is restored (the fold's older baseline over the newer one left a WAL gap).
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
  });
});
