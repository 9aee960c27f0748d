/**
 * An engine appendEntries whose keyOf spreads the entries over several buckets is one write, all or nothing, as
 * inline (AppendLogCore.appendGroups): a bucket the store's backend refuses refuses the whole call (its next flush
 * rejects, onError hears it), and no other bucket of that call is stored. Real parts: a file store (file names have
 * a length limit), real worker threads; the worker's codec and a main-thread codec.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Codec } from "../../src/codec/types.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { CodecError, StorageError } from "../../src/errors.js";
import { expectCoded, rejectionOf, settledBacklog, tempRoot, waitFor } from "./fixtures/helpers.js";

const root = tempRoot("append-groups");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

interface Entry {
  to: string;
  n: number;
}
/** A bucket the shared rule accepts whose segment keys are too long for a file name. */
const LONG = "b".repeat(240);
const keyOf = (e: Entry): string => (e.to === "long" ? LONG : e.to);
/** Not the built-in object: runs on the main thread, the worker gets one encoded segment per bucket. */
const mainJson: Codec<readonly Entry[]> = {
  name: "main-json",
  version: 1,
  encode: (v) => new TextEncoder().encode(JSON.stringify(v)),
  decode: (b) => JSON.parse(new TextDecoder().decode(b)) as Entry[],
};

const sorted = (entries: readonly Entry[]): Entry[] => [...entries].sort((a, b) => a.n - b.n);

for (const [label, codec] of [
  ["worker codec", undefined],
  ["main-thread codec", mainJson],
] as const) {
  describe(`appendEntries over several buckets (${label})`, () => {
    it("a bucket the backend refuses refuses the whole call: no bucket of it is stored", async () => {
      const errors: Error[] = [];
      engine = openStorageEngine({ threads: 1, onError: (e) => void errors.push(e) });
      const log = engine.appendLog<Entry>({ kind: "file", dir: root.fresh("refused") }, {
        name: "log",
        keyOf,
        debounceMs: 60_000,
        ...(codec ? { codec } : {}),
      });
      log.appendEntries([{ to: "a", n: 0 }]);
      await log.flush();
      log.appendEntries([
        { to: "a", n: 1 },
        { to: "long", n: 2 },
        { to: "c", n: 3 },
      ]);
      log.appendEntries([{ to: "c", n: 4 }]); // another call of the same tick stands on its own
      expectCoded(await rejectionOf(log.flush()), StorageError, "invalid-key");
      expect(sorted((await log.loadEntries()).entries)).toEqual([
        { to: "a", n: 0 },
        { to: "c", n: 4 },
      ]);
      await log.flush(); // reported once
      await waitFor(() => errors.length >= 1);
      expect(errors.map((e) => (e as StorageError).code)).toEqual(["invalid-key"]);
      expect(await settledBacklog(engine!)).toBe(0);
    });

    it("a call whose buckets are all storable stores every bucket", async () => {
      engine = openStorageEngine({ threads: 1 });
      const log = engine.appendLog<Entry>({ kind: "file", dir: root.fresh("stored") }, {
        name: "log",
        keyOf,
        debounceMs: 60_000,
        ...(codec ? { codec } : {}),
      });
      log.appendEntries([
        { to: "a", n: 1 },
        { to: "b", n: 2 },
        { to: "a", n: 3 },
        { to: "c", n: 4 },
      ]);
      log.appendEntries([{ to: "b", n: 5 }]);
      await log.flush();
      expect(sorted((await log.loadEntries()).entries).map((e) => e.n)).toEqual([1, 2, 3, 4, 5]);
      expect((await log.loadEntries({ keyFilter: "a" })).entries).toEqual([
        { to: "a", n: 1 },
        { to: "a", n: 3 },
      ]);
      expect(await settledBacklog(engine!)).toBe(0);
    });
  });
}

describe("appendEntries over several buckets (main-thread codec refusing one bucket's entries)", () => {
  it("the codec refusing one bucket refuses the whole call: nothing of it crosses", async () => {
    engine = openStorageEngine({ threads: 1, onError: () => undefined });
    const picky: Codec<readonly Entry[]> = {
      ...mainJson,
      name: "picky-json",
      encode: (v) => {
        if (v.some((e) => e.n < 0)) throw new CodecError("encode-failed", "negative n");
        return mainJson.encode(v);
      },
    };
    const log = engine.appendLog<Entry>({ kind: "file", dir: root.fresh("codec-refused") }, { name: "log", keyOf, debounceMs: 60_000, codec: picky });
    log.appendEntries([
      { to: "a", n: 1 },
      { to: "c", n: -1 },
    ]);
    log.appendEntries([{ to: "c", n: 2 }]);
    expectCoded(await rejectionOf(log.flush()), CodecError, "encode-failed");
    expect((await log.loadEntries()).entries).toEqual([{ to: "c", n: 2 }]);
    expect(await settledBacklog(engine!)).toBe(0);
  });
});
