/**
 * A stored append-log value the codec cannot decode names its key (task 365 L1): a read or a compaction of a bucket
 * whose base, segment or fold chunk holds bad bytes fails CodecError("decode-failed") with the key in its message and
 * in `details.key`, so the damaged value can be found among the bucket's keys. It said only the codec's words.
 * Through an engine whose codec runs on the main thread too (task 375): the store's actor sent the bytes without
 * their keys, so the main thread's decode could not name them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { CodecError } from "../../src/errors.js";
import { encodeFold, foldKey, segmentKey } from "../../src/tier/append-layout.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { countingCodec } from "../support/counting-codec.js";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const BAD = utf8('[{"i":');

type Damaged = "base" | "segment" | "fold";

/** Stores a bucket "log" as base [0] + segments [1], [2] in `backend`, the one named `damaged` holding bad bytes. */
function storeWith<B extends StorageBackend>(damaged: Damaged, backend: B): { backend: B; key: string } {
  const seg1 = segmentKey("log", 1);
  backend.write("log", damaged === "base" ? BAD : utf8('[{"i":0}]'));
  backend.write(seg1, damaged === "segment" ? BAD : utf8('[{"i":1}]'));
  backend.write(segmentKey("log", 2), utf8('[{"i":2}]'));
  if (damaged === "fold") {
    // A fold standing for the base and segment 1 (an overwrite or merge cut short), its second chunk damaged.
    backend.write(foldKey("log"), encodeFold({ covers: [seg1.slice(-20)], chunks: [utf8('[{"i":0}]'), BAD] }));
  }
  const key = { base: "log", segment: seg1, fold: foldKey("log") }[damaged];
  return { backend, key };
}

function expectNamed(err: unknown, key: string): void {
  expect(err).toBeInstanceOf(CodecError);
  const e = err as CodecError;
  expect(e.code).toBe("decode-failed");
  expect(e.details).toMatchObject({ key });
  expect(e.message).toContain(`"${key}"`);
}

describe("an append-log value with bad bytes names its key", () => {
  for (const damaged of ["base", "segment", "fold"] as const) {
    it(`${damaged}: loadEntries (paged too) and compact() fail decode-failed naming it; nothing is rewritten`, async () => {
      const { backend, key } = storeWith(damaged, memoryBackend());
      const before = new Map(await Promise.all(backend.list!("").map(async (k) => [k, await backend.read(k)] as const)));
      const log = appendLogStorage<{ i: number }>(backend, { name: "log" });
      expectNamed(await log.loadEntries().catch((e: unknown) => e), key);
      expectNamed(await log.loadEntries({ pageSize: 100 }).catch((e: unknown) => e), key);
      expectNamed(await log.compact().catch((e: unknown) => e), key);
      const after = new Map(await Promise.all(backend.list!("").map(async (k) => [k, await backend.read(k)] as const)));
      expect(after).toEqual(before);
      await log.close();
    });
  }

  it("array layout: a flush over a stored array with bad bytes fails decode-failed naming the key", async () => {
    const backend = memoryBackend();
    backend.write("log", BAD);
    const log = appendLogStorage<{ i: number }>(backend, { name: "log", layout: "array", debounceMs: 60_000, onError: () => {} });
    log.appendEntries([{ i: 1 }]);
    expectNamed(await log.flush().catch((e: unknown) => e), "log");
    expect(backend.read("log")).toEqual(BAD);
    log.rollback();
    await log.close();
  });
});

describe("through an engine, codec on the main thread", () => {
  const dir = mkdtempSync(join(tmpdir(), "grf-append-decode-key-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;

  for (const damaged of ["base", "segment", "fold"] as const) {
    it(`${damaged}: loadEntries (paged too) fails decode-failed naming it`, async () => {
      const path = join(dir, `${n++}-${damaged}.db`);
      const { backend, key } = storeWith(damaged, sqliteBackend(path));
      backend.close();
      const engine = openStorageEngine({ threads: 1 });
      try {
        const log = engine.appendLog<{ i: number }>({ kind: "sqlite", path }, { name: "log", codec: countingCodec<readonly { i: number }[]>() });
        expectNamed(await log.loadEntries().catch((e: unknown) => e), key);
        expectNamed(await log.loadEntries({ pageSize: 100 }).catch((e: unknown) => e), key);
      } finally {
        await engine.close();
      }
    });
  }
});
