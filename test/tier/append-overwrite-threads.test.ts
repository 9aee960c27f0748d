/**
 * An append-log overwrite of two chunks (a failed flush's chunk, kept encoded, and one appended since) racing another
 * thread's handle of a real store (review r373; design §3.11). Commit 2005819 wrote the first chunk as the base and
 * the others as new segments, no fold: a one-chunk overwrite listed before it landed passed its fold check and stored
 * [A, B2] (H1); another thread's appender numbering from its cache put its entry in the middle, [c, e, d] (H2); a
 * reader of the file store mid-batch read the old base and segment and the new segment, [a, b, d] (H3); a reader that
 * listed before the batch and read after it returned the first chunk alone, [c] (H4). The fold, kept for several
 * chunks until the next merge or overwrite, makes each an expectation failure or a read of the old or the new
 * content. And a stale merge whose base an overwrite wrote again with the same bytes (its first chunk) resurrected
 * the overwritten segment (M1): the merge also expects the last segment it read.
 */
import { createRequire, syncBuiltinESMExports } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { segmentKey } from "../../src/tier/append-layout.js";
import { KINDS, otherThread, seededStore } from "./fixtures/overwrite-threads.js";
import { CELL, HELD, gatedBackend, pendingChunks } from "./fixtures/race-handles.mjs";

const fs = createRequire(import.meta.url)("node:fs") as typeof import("node:fs");
const dir = mkdtempSync(join(tmpdir(), "append-overwrite-threads-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(KINDS)("%s, another thread's handle", (_name, kind) => {
  it("H1: a one-chunk overwrite listed before another thread's two-chunk overwrite landed stores its own content alone", async () => {
    const store = await seededStore(dir, kind, "h1", "a", ["b"]);
    const other = otherThread(kind, store, { part: "overwrite", chunks: ["B1", "B2"] });
    const inner = store.open();
    // Its batch waits until the other thread's overwrite is stored.
    const log = appendLogStorage<string>(gatedBackend(inner, { beforeWrite: other.pauseWhileDone() }), { name: "log", mode: "overwrite", ...HELD });
    log.appendEntries(["A"]);
    await log.flush();
    await other.finished;
    expect(await store.entries()).toEqual(["A"]); // 2005819: [A, B2]
    await log.close();
    await inner.close?.();
  });

  it("H2: an entry another thread's appender stores after a two-chunk overwrite follows it", async () => {
    const store = await seededStore(dir, kind, "h2");
    const other = otherThread(kind, store, { part: "append-late", first: "b1", late: "e" });
    await other.cells.waitAsync(CELL.ready); // its allocator's next number: 2
    const inner = store.open();
    const appender = appendLogStorage<string>(inner, { name: "log", ...HELD });
    for (const x of ["x1", "x2"]) {
      appender.appendEntries([x]);
      await appender.flush();
    }
    const overwrite = await pendingChunks(appendLogStorage, inner, ["c", "d"]);
    await overwrite.flush();
    other.cells.signal(CELL.go);
    await other.finished;
    expect(await store.entries()).toEqual(["c", "d", "e"]); // 2005819: [c, e, d] (segment 2 freed below [d]'s)
    await appender.compact();
    expect(await store.entries()).toEqual(["c", "d", "e"]);
    await overwrite.close();
    await appender.close();
    await inner.close?.();
  });

  it("H4: a reader that listed before another thread's two-chunk overwrite and reads after it gets the old content or the new", async () => {
    const store = await seededStore(dir, kind, "h4", "a");
    const other = otherThread(kind, store, { part: "overwrite", chunks: ["c", "d"] });
    const inner = store.open(true);
    const reader = appendLogStorage<string>(gatedBackend(inner, { afterList: other.pauseWhileDone() }), { name: "log" });
    const got = (await reader.loadEntries()).entries;
    await other.finished;
    expect([["a"], ["c", "d"]], JSON.stringify(got)).toContainEqual(got); // 2005819: [c]
    expect(await store.entries()).toEqual(["c", "d"]);
    await reader.close();
    await inner.close?.();
  });

  for (const chunks of [["a"], ["a", "c"]]) {
    it(`M1: a stale merge over an overwrite (${chunks.length} chunk${chunks.length > 1 ? "s" : ""}) whose first chunk is the old base keeps the overwrite`, async () => {
      const store = await seededStore(dir, kind, `m1-${chunks.length}`, "a", ["b"]);
      const other = otherThread(kind, store, { part: "overwrite", chunks });
      const inner = store.open();
      // Its merge lists and reads base [a] and segment [b], then waits at its batch for the other thread's overwrite.
      const merger = appendLogStorage<string>(gatedBackend(inner, { beforeWrite: other.pauseWhileDone() }), { name: "log", ...HELD });
      await merger.compact();
      await other.finished;
      expect(await store.entries()).toEqual(chunks); // before: [a, b] (one chunk; 2005819: [a, b, c] for two)
      await merger.close();
      await inner.close?.();
    });
  }
});

describe("file store, a reader thread", () => {
  it("H3: a read while a two-chunk overwrite's batch is renamed into place gets the old content or the new", async () => {
    const store = await seededStore(dir, "file", "h3", "a", ["b"]);
    // The reader lists and reads with the batch's first rename done; a read of segment 2 (2005819's new one, empty
    // until the batch's end) waits for the batch to end.
    const reader = otherThread("file", store, { part: "read-paused", pauseAt: segmentKey("log", 2) });
    const inner = store.open();
    const log = await pendingChunks(appendLogStorage, inner, ["c", "d"]);
    const real = fs.renameSync;
    let renames = 0;
    fs.renameSync = ((from: string, to: string) => {
      if (++renames === 2) {
        reader.cells.signal(CELL.go);
        reader.cells.wait(CELL.paused);
      }
      return real(from, to);
    }) as typeof fs.renameSync;
    syncBuiltinESMExports();
    try {
      await log.flush();
    } finally {
      fs.renameSync = real;
      syncBuiltinESMExports();
    }
    expect(renames, "the batch renamed more than one file").toBeGreaterThan(1);
    reader.cells.signal(CELL.resume);
    const got = await reader.finished;
    expect([["a", "b"], ["c", "d"]], JSON.stringify(got)).toContainEqual(got); // 2005819: [a, b, d]
    expect(await store.entries()).toEqual(["c", "d"]);
    await log.close();
    await inner.close?.();
  });
});
