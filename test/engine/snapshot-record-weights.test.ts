/**
 * An engine snapshot tier (its core in the store's actor, a worker thread) through an outage: a record a failed write
 * does not keep (replaced by a newer save of its key, discarded) holds no room and counts as no pending entry from
 * then on (task 283: review r278 F1 in the worker, F2). Before, the actor weighed each message's writes as a whole,
 * so such a record's weight and entry stayed held until a flush succeeded: stats().pendingEntries counted replaced
 * and discarded records, and saves of one key during the outage were refused with backpressure though one record
 * was pending. Real engine, real worker, a real file store whose writes fail with EIO while a marker file sits beside
 * its directory (src/backend/file-faults.ts). Both ways a save crosses: values the worker encodes (a "puts" op per
 * turn, one record per key) and bytes a main-thread codec encoded (a "put" op per save, weighed exactly).
 */
import { rmSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { WRITE_FAULT_ENV } from "../../src/backend/file-faults.js";
import type { Codec } from "../../src/codec/types.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import type { SnapshotStorageTier } from "../../src/tier/types.js";
import { recordWeight } from "../../src/tier/weights.js";
import { tempRoot } from "./fixtures/helpers.js";

// Before any engine starts: its workers copy process.env when they are made.
const SUFFIX = ".fail-writes";
process.env[WRITE_FAULT_ENV] = SUFFIX;
const root = tempRoot("snapshot-record-weights");
afterAll(() => root.remove());

type Rec = { name: string; v: number };

/** Runs on the main thread: its bytes cross, weighed exactly (RECORD_OVERHEAD + the key + the bytes). */
const mainJson: Codec<Rec> = {
  name: "main-json",
  version: 1,
  encode: (r) => new TextEncoder().encode(JSON.stringify(r)),
  decode: (b) => JSON.parse(new TextDecoder().decode(b)) as Rec,
};
const exactWeight = (r: Rec): number => recordWeight(r.name, mainJson.encode(r).byteLength);

const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => "ok", (e: unknown) => (e as { code?: string }).code ?? String(e));
const saved = (save: () => void): string => {
  try {
    save();
    return "saved";
  } catch (e) {
    return (e as { code?: string }).code ?? "thrown";
  }
};

/** Long debounce and retry: nothing is written unless the test flushes. */
const tierOpts = { name: "s", debounceMs: 60_000, retry: { initialMs: 60_000, maxMs: 60_000 } };

function open(engine: StorageEngine, dir: string, mainCodec: boolean): SnapshotStorageTier<Rec> {
  const store = { kind: "file" as const, dir };
  return mainCodec ? engine.snapshot<Rec>(store, { ...tierOpts, codec: mainJson }) : engine.snapshot<Rec>(store, tierOpts);
}

async function pending(engine: StorageEngine): Promise<{ entries: number; bytes: number }> {
  const [s] = await engine.stats();
  return { entries: s!.pendingEntries, bytes: s!.pendingBytes };
}

for (const mainCodec of [false, true]) {
  describe(`engine snapshot tier through an outage (${mainCodec ? "main-thread codec: put ops" : "worker codec: puts ops"})`, () => {
    it("stats() counts only the records pending: replaced and discarded ones settle at once", async () => {
      const engine = openStorageEngine({ threads: 1, onError: () => {} });
      const dir = root.fresh("stats");
      try {
        const s = open(engine, dir, mainCodec);
        s.save({ name: "k0", v: 0 });
        expect(await outcome(s.flush())).toBe("ok");
        writeFileSync(`${dir}${SUFFIX}`, "");
        s.save({ name: "k1", v: 1 });
        expect(await outcome(s.flush())).toBe("backend-error"); // k1 kept for a retry
        s.save({ name: "k2", v: 2 });
        s.save({ name: "k1", v: 3 }); // replaces the kept k1
        s.save({ name: "k3", v: 4 });
        s.discard!("k3"); // pending, dropped
        expect(await outcome(s.flush())).toBe("backend-error"); // k2 and k1 kept
        const mid = await pending(engine);
        s.save({ name: "k4", v: 5 });
        expect(await outcome(s.flush())).toBe("backend-error");
        s.discard!("k4"); // kept by a failed write, dropped
        await s.load("k4"); // the discard crosses unanswered: a read after it was applied after it
        const afterDiscard = await pending(engine);
        rmSync(`${dir}${SUFFIX}`);
        expect(await outcome(s.flush())).toBe("ok");
        const end = await pending(engine);
        const got = { k1: await s.load("k1"), k2: await s.load("k2"), k3: await s.load("k3"), k4: await s.load("k4") };
        expect({ mid: mid.entries, afterDiscard: afterDiscard.entries, end, got }).toEqual({
          mid: 2,
          afterDiscard: 2,
          end: { entries: 0, bytes: 0 },
          got: { k1: { name: "k1", v: 3 }, k2: { name: "k2", v: 2 }, k3: undefined, k4: undefined },
        });
        // Exact where the main thread encodes: the two records pending weigh what they weighed when saved.
        if (mainCodec) expect(mid.bytes).toBe(exactWeight({ name: "k2", v: 2 }) + exactWeight({ name: "k1", v: 3 }));
      } finally {
        rmSync(`${dir}${SUFFIX}`, { force: true });
        await engine.close();
      }
    });

    it("saves of one key through an outage hold one record's weight, in one message or one per save", async () => {
      const engine = openStorageEngine({ threads: 1, onError: () => {} });
      const dir = root.fresh("one-key");
      try {
        const s = open(engine, dir, mainCodec);
        writeFileSync(`${dir}${SUFFIX}`, "");
        s.save({ name: "k1", v: 0 });
        const one = await pending(engine); // one record's weight, as the main thread counted it
        expect(await outcome(s.flush())).toBe("backend-error");
        for (let v = 1; v <= 4; v++) {
          s.save({ name: "k1", v });
          expect(await outcome(s.flush())).toBe("backend-error");
        }
        // A turn's burst: other keys between, so each save crosses (one op, one record per key in the actor).
        for (let v = 5; v <= 7; v++) {
          s.save({ name: "k1", v });
          s.save({ name: "k2", v });
        }
        expect(await outcome(s.flush())).toBe("backend-error");
        s.discard!("k2");
        await s.load("k2"); // applied after the discard
        const mid = await pending(engine);
        rmSync(`${dir}${SUFFIX}`);
        expect(await outcome(s.flush())).toBe("ok");
        const end = await pending(engine);
        expect({ one: one.entries, mid, end, k1: await s.load("k1"), k2: await s.load("k2") }).toEqual({
          one: 1,
          mid: { entries: 1, bytes: one.bytes },
          end: { entries: 0, bytes: 0 },
          k1: { name: "k1", v: 7 },
          k2: undefined,
        });
      } finally {
        rmSync(`${dir}${SUFFIX}`, { force: true });
        await engine.close();
      }
    });
  });
}

describe("engine snapshot tier through an outage: room (maxPendingBytes)", () => {
  it("saves of one key, each flushed and failing, are all accepted with room for two records and a half", async () => {
    const w = exactWeight({ name: "k1", v: 0 }); // every save below weighs the same (one-digit v)
    const engine = openStorageEngine({ threads: 1, onError: () => {}, maxPendingBytes: Math.floor(2.5 * w) });
    const dir = root.fresh("room");
    try {
      const s = open(engine, dir, true);
      writeFileSync(`${dir}${SUFFIX}`, "");
      const seen: string[] = [];
      for (let v = 0; v <= 6; v++) {
        seen.push(saved(() => s.save({ name: "k1", v })));
        expect(await outcome(s.flush())).toBe("backend-error");
      }
      expect(seen).toEqual(Array(7).fill("saved"));
      rmSync(`${dir}${SUFFIX}`);
      expect(await outcome(s.flush())).toBe("ok");
      expect(await s.load("k1")).toEqual({ name: "k1", v: 6 });
      expect(await pending(engine)).toEqual({ entries: 0, bytes: 0 });
    } finally {
      rmSync(`${dir}${SUFFIX}`, { force: true });
      await engine.close();
    }
  });
});
