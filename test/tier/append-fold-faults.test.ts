/**
 * The append-log's segments layout under a failed unlink, a damaged segment number, a reader racing merges and an
 * overwrite over a damaged fold (review r349 H1, M3, M1; design §3.11).
 */
import { mkdtempSync, rmSync, readdirSync } from "node:fs";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { StorageError } from "../../src/errors.js";
import { appendLogStorage, READ_ATTEMPTS } from "../../src/tier/append-log.js";
import { encodeFold, foldKey, parseBucketKey, segmentKey } from "../../src/tier/append-layout.js";
import { pendingChunks } from "./fixtures/race-handles.mjs";

const fs = createRequire(import.meta.url)("node:fs") as typeof import("node:fs");
const dir = mkdtempSync(join(tmpdir(), "append-fold-faults-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const storedNames = (d: string): string[] => readdirSync(d).filter((n) => !n.startsWith(".")).sort();

async function appendEach(log: { appendEntries(e: Array<{ i: number }>): void; flush(): Promise<void> }, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    log.appendEntries([{ i }]);
    await log.flush();
  }
}

const upTo = (n: number): Array<{ i: number }> => Array.from({ length: n }, (_, i) => ({ i }));

/** A flush over a store holding only `key`, a segment number past the allocator's range: corrupt-store naming it, nothing written. */
async function expectFlushRefusedOver(backend: StorageBackend, key: string): Promise<void> {
  const log = appendLogStorage<{ i: number }>(backend, { name: "log", onError: () => {} });
  log.appendEntries([{ i: 0 }]);
  const err = await log.flush().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  expect(err).toMatchObject({ code: "corrupt-store", details: { key } });
  expect(await backend.list!("log")).toEqual([key]);
  log.rollback();
  await log.close();
}

describe("a merge whose segment unlink fails (EIO)", () => {
  it("rejects, and the log reads each entry once, before and after a compact() that gets through", async () => {
    const store = join(dir, "eio");
    const log = appendLogStorage<{ i: number }>(fileBackend(store), { name: "log", onError: () => {} });
    await appendEach(log, 0, 3);
    const real = fs.unlinkSync;
    let failed = 0;
    fs.unlinkSync = ((p: string) => {
      if (String(p).includes("log%1f0") && failed++ === 0) throw Object.assign(new Error("EIO: injected"), { code: "EIO" });
      return real(p);
    }) as typeof fs.unlinkSync;
    syncBuiltinESMExports();
    try {
      await expect(log.compact()).rejects.toMatchObject({ code: "backend-error" });
    } finally {
      fs.unlinkSync = real;
      syncBuiltinESMExports();
    }
    expect(failed).toBeGreaterThan(0);
    expect((await log.loadEntries()).entries).toEqual(upTo(3));
    await log.compact();
    expect((await log.loadEntries()).entries).toEqual(upTo(3));
    expect(storedNames(store)).toEqual(["log.bin"]);
    await log.close();
  });
});

describe("an overwrite over a damaged fold", () => {
  for (const chunks of [["b"], ["b", "c"]]) {
    it(`replaces it (${chunks.length} chunk${chunks.length > 1 ? "s" : ""}): the old fold's bytes are compared, never decoded`, async () => {
      const backend = memoryBackend();
      await backend.write("log", utf8('["a"]'));
      await backend.write(segmentKey("log", 1), new Uint8Array(0));
      await backend.write(foldKey("log"), utf8("not a fold"));
      const log = await pendingChunks(appendLogStorage, backend, chunks);
      await log.flush(); // 2005819 failed it corrupt-store, reading the damaged fold for its numbers
      expect((await log.loadEntries()).entries).toEqual(chunks);
      await log.close();
    });
  }
});

describe("a stored segment number past 2^53 - 1", () => {
  it("refuses the flush with corrupt-store naming the key (no 21-digit key written)", async () => {
    const backend = memoryBackend();
    const huge = "log\u001f99999999999999999999";
    await backend.write(huge, utf8('[{"x":"foreign"}]'));
    await expectFlushRefusedOver(backend, huge);
    for (const key of await backend.list!("log")) expect(parseBucketKey(key).bucket, key).toBe("log");
  });
});

describe("a reader racing another handle's merges", () => {
  /** The reader's backend: before it reads a segment, `onSegment` runs (another handle merging, say). */
  function beforeSegmentReads(inner: StorageBackend, onSegment: () => Promise<void>): StorageBackend {
    return {
      name: inner.name,
      supports: inner.supports,
      readOnly: true,
      list: (p) => inner.list!(p),
      async read(k) {
        if (parseBucketKey(k).kind === "segment") await onSegment();
        return inner.read(k);
      },
      write: (k, v) => inner.write(k, v),
      close: () => inner.close?.(),
    };
  }

  it("a segment merged away after the listing: the read lists again, no entry missing or twice", async () => {
    const store = join(dir, "reader");
    const writer = appendLogStorage<{ i: number }>(fileBackend(store), { name: "log" });
    await appendEach(writer, 0, 3);
    await writer.compact();
    await appendEach(writer, 3, 5); // base [0, 1, 2] and two segments
    let merges = 0;
    const readerBackend = fileBackend(store, { readOnly: true });
    const reader = appendLogStorage<{ i: number }>(
      beforeSegmentReads(readerBackend, async () => {
        if (merges++ === 0) await writer.compact(); // after the reader read the old base
      }),
      { name: "log" },
    );
    expect((await reader.loadEntries()).entries).toEqual(upTo(5));
    expect(merges).toBeGreaterThan(0);
    await reader.close();
    await writer.close();
    await readerBackend.close();
  });

  it("keys that keep changing under every listing: store-busy after READ_ATTEMPTS listings", async () => {
    const store = join(dir, "reader-busy");
    const writer = appendLogStorage<{ i: number }>(fileBackend(store), { name: "log" });
    await appendEach(writer, 0, 2);
    let next = 2;
    let listings = 0;
    const readerBackend = fileBackend(store, { readOnly: true });
    const inner: StorageBackend = {
      name: readerBackend.name,
      supports: readerBackend.supports,
      read: (k) => readerBackend.read(k),
      write: (k, v) => readerBackend.write(k, v),
      list: (p) => (listings++, readerBackend.list(p)),
    };
    const reader = appendLogStorage<{ i: number }>(
      beforeSegmentReads(inner, async () => {
        // The segment about to be read is merged away, and a new one appended: there is always one to read.
        await writer.compact();
        writer.appendEntries([{ i: next++ }]);
        await writer.flush();
      }),
      { name: "log" },
    );
    await expect(reader.loadEntries()).rejects.toMatchObject({ code: "store-busy" });
    expect(listings).toBe(READ_ATTEMPTS);
    await reader.close();
    await writer.close();
    await readerBackend.close();
  });
});

/** Review r358: stores a merge cut short (or a damaged store) leaves, read and written on (design §3.11). */
describe("stores a merge cut short leaves", () => {
  const segment = (n: number): string => `log\u001f${String(n).padStart(20, "0")}`;
  const fold = "log\u001f\u001f00000000000000000000";
  const backends: Array<[string, () => StorageBackend]> = [
    ["memory", () => memoryBackend()],
    ["file", () => fileBackend(mkdtempSync(join(dir, "leftovers-")))],
  ];

  for (const [kind, make] of backends) {
    it(`${kind}: base + ${READ_ATTEMPTS + 2} emptied segments and no fold (killed after the fold's delete) loads exactly, read-only and read-write, paged too`, async () => {
      const backend = make();
      await backend.write("log", utf8(JSON.stringify(upTo(READ_ATTEMPTS + 2))));
      for (let n = 1; n <= READ_ATTEMPTS + 2; n++) await backend.write(segment(n), new Uint8Array(0));
      expect((await backend.list!("log")).length).toBe(READ_ATTEMPTS + 3);
      const view: StorageBackend = {
        name: backend.name,
        supports: backend.supports,
        readOnly: true,
        list: (p) => backend.list!(p),
        read: (k) => backend.read(k),
        write: (k, v) => backend.write(k, v),
      };
      const reader = appendLogStorage<{ i: number }>(view, { name: "log" });
      expect((await reader.loadEntries()).entries).toEqual(upTo(READ_ATTEMPTS + 2));
      expect(await reader.loadEntries({ cursor: { position: 3 }, pageSize: 2 })).toEqual({ entries: upTo(5).slice(3), cursor: { position: 5 } });
      await reader.close();
      const writer = appendLogStorage<{ i: number }>(backend, { name: "log" });
      expect((await writer.loadEntries()).entries).toEqual(upTo(READ_ATTEMPTS + 2));
      writer.appendEntries([{ i: READ_ATTEMPTS + 2 }]);
      await writer.flush();
      expect((await writer.loadEntries()).entries).toEqual(upTo(READ_ATTEMPTS + 3));
      await writer.compact();
      expect(await backend.list!("log")).toEqual(["log"]);
      expect((await writer.loadEntries()).entries).toEqual(upTo(READ_ATTEMPTS + 3));
      await writer.close();
    });

    it(`${kind}: an empty fold is absent: base and segments read as usual and compact() merges them`, async () => {
      const backend = make();
      await backend.write("log", utf8(JSON.stringify(upTo(3))));
      await backend.write(segment(4), utf8(JSON.stringify([{ i: 3 }])));
      await backend.write(fold, new Uint8Array(0));
      const log = appendLogStorage<{ i: number }>(backend, { name: "log" });
      expect((await log.loadEntries()).entries).toEqual(upTo(4));
      await log.compact();
      expect(await backend.list!("log")).toEqual(["log"]);
      expect((await log.loadEntries()).entries).toEqual(upTo(4));
      await log.close();
    });
  }

  it("a fold naming segments no longer stored (an older build merged over it): a new segment is numbered above them, never hidden", async () => {
    const backend = memoryBackend();
    const covers = [1, 2, 3].map((n) => String(n).padStart(20, "0"));
    await backend.write(fold, encodeFold({ covers, chunks: [utf8(JSON.stringify(upTo(3)))] }));
    await backend.write("log", utf8(JSON.stringify(upTo(4)))); // the older build's merged base, beside the stale fold
    const log = appendLogStorage<{ i: number }>(backend, { name: "log" });
    log.appendEntries([{ i: 4 }]);
    await log.flush();
    expect(await backend.list!("log")).toEqual(["log", fold, segment(4)]);
    expect((await log.loadEntries()).entries).toContainEqual({ i: 4 });
    await log.close();
  });

  it("a stored segment numbered exactly 2^53 - 1: the flush fails corrupt-store naming it (was backend-error, a RangeError)", async () => {
    const backend = memoryBackend();
    const top = segment(Number.MAX_SAFE_INTEGER);
    await backend.write(top, utf8('[{"x":"foreign"}]'));
    await expectFlushRefusedOver(backend, top);
  });
});
