/**
 * An overwrite-mode flush of several chunks (a failed flush's segment, encoded once, and entries appended since)
 * leaves what a flush of one chunk leaves: no fold and no emptied segment, only the new content, as the base (its first
 * chunk) and one segment for each other chunk (task 365, design §3.11). It left the fold holding the chunks, the
 * old segments emptied and the old base beside them until the next overwrite or merge: this build read the new
 * content, but the whole old log stayed stored, and a build before task 351 (which knows no fold) read the old base.
 * Over memory (sync and async, behind the fault wrapper: unconditional batches), a real SQLite file (a trigger fails
 * the first flush; conditional batches) and a file store; and through an engine whose codec runs on the main thread
 * (each append call one chunk the worker cannot decode, so every flush of two calls wrote a fold it never merged).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { foldKey, orderBucketKeys, parseBucketKey, segmentKey } from "../../src/tier/append-layout.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { countingCodec } from "../support/counting-codec.js";
import { failOnceStores } from "../support/fail-once-stores.js";

type Entry = { v: string };
const HELD = { debounceMs: 60_000, retry: { initialMs: 60_000, maxMs: 60_000 }, onError: () => {} } as const;
const dir = mkdtempSync(join(tmpdir(), "append-overwrite-chunks-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** The bucket's stored values in read order, each as [kind, value]: an empty value as null. */
async function storedValues(backend: StorageBackend): Promise<Array<[string, unknown]>> {
  const out: Array<[string, unknown]> = [];
  for (const key of orderBucketKeys(await backend.list!("log"))) {
    const bytes = await backend.read(key);
    const kind = parseBucketKey(key).kind;
    out.push([kind, bytes === undefined || bytes.byteLength === 0 ? null : kind === "fold" ? "(fold)" : JSON.parse(new TextDecoder().decode(bytes))]);
  }
  return out;
}

describe.each(failOnceStores((name) => join(dir, `${n++}-${name}`)))("%s", (_name, open) => {
  it("an overwrite of two chunks leaves the base and one segment; appends and a merge go on from there", async () => {
    const store = open();
    const { backend } = store;
    const overwrite = appendLogStorage<Entry>(backend, { name: "log", mode: "overwrite", ...HELD });
    const appender = appendLogStorage<Entry>(backend, { name: "log", ...HELD });
    overwrite.appendEntries([{ v: "a" }]);
    await overwrite.flush();
    appender.appendEntries([{ v: "b" }]);
    await appender.flush();
    expect(await storedValues(backend)).toEqual([["base", [{ v: "a" }]], ["segment", [{ v: "b" }]]]);

    store.failOnce("log");
    overwrite.appendEntries([{ v: "c" }]);
    await expect(overwrite.flush()).rejects.toThrow();
    store.heal();
    overwrite.appendEntries([{ v: "d" }]); // a chunk of its own after the put-back segment [c]
    await overwrite.flush();
    expect((await overwrite.loadEntries()).entries).toEqual([{ v: "c" }, { v: "d" }]);
    // Before: [["base", [a]], ["fold", …], ["segment", null]]: the old base and the emptied segment stayed.
    expect(await storedValues(backend)).toEqual([["base", [{ v: "c" }]], ["segment", [{ v: "d" }]]]);

    appender.appendEntries([{ v: "e" }]);
    await appender.flush();
    expect((await appender.loadEntries()).entries).toEqual([{ v: "c" }, { v: "d" }, { v: "e" }]);
    await appender.compact();
    expect(await storedValues(backend)).toEqual([["base", [{ v: "c" }, { v: "d" }, { v: "e" }]]]);
    // A one-chunk overwrite after it leaves the base alone, as before.
    overwrite.appendEntries([{ v: "f" }]);
    await overwrite.flush();
    expect(await storedValues(backend)).toEqual([["base", [{ v: "f" }]]]);
    await overwrite.close();
    await appender.close();
    store.close();
  });
});

describe("engine, codec on the main thread", () => {
  it("an overwrite flush of two append calls leaves the base and one segment", async () => {
    const path = join(dir, "engine.db");
    const engine = openStorageEngine({ threads: 1 });
    try {
      const log = engine.appendLog<Entry>({ kind: "sqlite", path }, { name: "log", mode: "overwrite", codec: countingCodec<readonly Entry[]>() });
      log.appendEntries([{ v: "a" }]);
      await log.flush();
      log.appendEntries([{ v: "b" }]);
      log.appendEntries([{ v: "c" }]);
      await log.flush();
      expect((await log.loadEntries()).entries).toEqual([{ v: "b" }, { v: "c" }]);
    } finally {
      await engine.close();
    }
    const backend = sqliteBackend(path, { readOnly: true });
    // Before: [["base", [a]], ["fold", …]].
    expect(await storedValues(backend)).toEqual([["base", [{ v: "b" }]], ["segment", [{ v: "c" }]]]);
    backend.close();
  });
});

describe("an overwrite over a damaged fold", () => {
  const memory = failOnceStores(() => dir).find(([name]) => name === "memory, sync")![1];
  for (const chunks of [1, 2]) {
    it(`replaces it (${chunks} chunk${chunks > 1 ? "s" : ""}): the old fold is not read for numbers, the batch deletes it`, async () => {
      const store = memory();
      const { backend } = store;
      await backend.write("log", new TextEncoder().encode('[{"v":"a"}]'));
      await backend.write(segmentKey("log", 1), new Uint8Array(0));
      await backend.write(foldKey("log"), new TextEncoder().encode("not a fold"));
      const log = appendLogStorage<Entry>(backend, { name: "log", mode: "overwrite", ...HELD });
      const written = chunks === 1 ? [{ v: "b" }] : [{ v: "b" }, { v: "c" }];
      if (chunks === 2) {
        store.failOnce("log"); // [b] put back as its encoded segment, [c] a chunk after it
        log.appendEntries([{ v: "b" }]);
        await expect(log.flush()).rejects.toThrow();
        log.appendEntries([{ v: "c" }]);
      } else log.appendEntries(written);
      await log.flush(); // 2005819 failed it corrupt-store, reading the damaged fold for its numbers
      expect((await log.loadEntries()).entries).toEqual(written);
      expect(await storedValues(backend)).toEqual(written.map((w, i) => [i === 0 ? "base" : "segment", [w]]));
      await log.close();
    });
  }
});
