/**
 * A snapshot tier's failed write puts back only some of the records it took (review r278 F1): one replaced by a newer
 * save of its key while its write was in flight, one the codec refused inside a batch, one discarded after a flush
 * took it. Their weight must settle with the failing write: before, the whole batch's weight was held again as
 * pending, so during an outage the tier refused saves with backpressure while one small record was pending. Real
 * inline tiers over a memory store behind a failing wrapper, synchronous and asynchronous (a macrotask per call).
 * Every record weighs the same here (a user codec without a value rule: the tier's per-entry estimate, keys of equal
 * length), so the bounds are counted in records.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { Codec } from "../../src/codec/types.js";
import { StorageError } from "../../src/errors.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { wrapBackend } from "../support/test-backend.js";

type Rec = { name: string; v: number };

/** Refuses the record named "bad" (a permanent CodecError: never retried). */
const picky: Codec<Rec> = {
  name: "picky",
  version: 1,
  encode: (r) => {
    if (r.name === "bad") throw new Error("not this one");
    return new TextEncoder().encode(JSON.stringify(r));
  },
  decode: (b) => JSON.parse(new TextDecoder().decode(b)) as Rec,
};

/** A record's weight (keys of three characters), as a tier with no room reports it refusing one. */
function recordWeight(): number {
  // Beside nothing held a write of any weight is taken: the second one is refused.
  const probe = snapshotStorage<Rec>(memoryBackend(), { codec: picky, maxPendingBytes: 1, debounceMs: 60_000 });
  try {
    probe.save({ name: "k00", v: 0 });
    probe.save({ name: "k99", v: 0 });
  } catch (e) {
    const w = (e as StorageError).details.weight;
    if (e instanceof StorageError && e.code === "backpressure" && typeof w === "number") return w;
    throw e;
  }
  throw new Error("test bug: the probe accepted two records beyond its bound");
}
const W = recordWeight();
/** Long retry and debounce: nothing is written unless the test flushes. */
const opts = (records: number) => ({
  codec: picky,
  retry: { initialMs: 60_000, maxMs: 60_000 },
  debounceMs: 60_000,
  maxPendingBytes: Math.floor(records * W),
  onError: () => {},
});

const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => "ok", (e: unknown) => (e as { code?: string }).code ?? "rejected");
const saved = (save: () => void): string => {
  try {
    save();
    return "saved";
  } catch (e) {
    return (e as { code?: string }).code ?? "thrown";
  }
};

for (const async of [false, true]) {
  describe(`snapshot tier: a failed write settles the records it does not put back (${async ? "async" : "sync"} store)`, () => {
    it("a record the codec refused inside a failed batch holds no room", async () => {
      const f = wrapBackend(memoryBackend(), { async });
      // Room for 2.5 records: "bad" and "gud" fit; after the failure only "gud" is pending, so "oth" fits beside it.
      const t = snapshotStorage<Rec>(f, opts(2.5));
      t.save({ name: "bad", v: 1 });
      t.save({ name: "gud", v: 2 });
      f.failNext(1);
      expect(await outcome(t.flush())).toBe("backend-error"); // the refusal is reported too; the write failed
      expect(saved(() => t.save({ name: "oth", v: 3 }))).toBe("saved");
      // It stores both; it still answers for the refusal the failed flush did not report (core.ts `refuse`).
      expect(await outcome(t.flush())).toBe("encode-failed");
      expect({ gud: await t.load("gud"), oth: await t.load("oth"), bad: await t.load("bad") }).toEqual({
        gud: { name: "gud", v: 2 },
        oth: { name: "oth", v: 3 },
        bad: undefined,
      });
    });

    it("a record replaced by a newer save of its key while its write was in flight holds no room", async () => {
      const f = wrapBackend(memoryBackend(), { async });
      // Room for 2.5 records: one in flight and its replacement fit; after the failure only the replacement is pending.
      const t = snapshotStorage<Rec>(f, opts(2.5));
      t.save({ name: "k01", v: 1 });
      f.failNext(1);
      const flushed = outcome(t.flush()); // async store: in flight; sync store: already failed and put back
      t.save({ name: "k01", v: 2 });
      await flushed;
      expect(saved(() => t.save({ name: "k02", v: 3 }))).toBe("saved");
      expect(await outcome(t.flush())).toBe("ok");
      expect([await t.load("k01"), await t.load("k02")]).toEqual([
        { name: "k01", v: 2 },
        { name: "k02", v: 3 },
      ]);
    });

    it("saves of one key while each retry is in flight are all accepted through an outage", async () => {
      const f = wrapBackend(memoryBackend(), { async });
      // Room for 2.5 records: at most one pending and one in flight at a time.
      const t = snapshotStorage<Rec>(f, opts(2.5));
      f.failAll();
      t.save({ name: "k01", v: 0 });
      const seen: string[] = [];
      for (let v = 1; v <= 6; v++) {
        const flushed = outcome(t.flush());
        seen.push(saved(() => t.save({ name: "k01", v })));
        expect(await flushed).toBe("backend-error");
      }
      expect(seen).toEqual(Array(6).fill("saved"));
      f.heal();
      expect(await outcome(t.flush())).toBe("ok");
      expect(await t.load("k01")).toEqual({ name: "k01", v: 6 });
    });
  });
}

describe("snapshot tier: a record discarded after a flush took it (async store)", () => {
  it("holds no room once the failed write did not put it back", async () => {
    const f = wrapBackend(memoryBackend(), { async: true });
    const t = snapshotStorage<Rec>(f, opts(2.5));
    t.save({ name: "k01", v: 1 });
    t.save({ name: "k02", v: 2 });
    f.failNext(1);
    const flushed = outcome(t.flush()); // takes both, waits a macrotask on the async store
    t.discard!("k01"); // the taken k01 writes nothing and is not put back
    expect(await flushed).toBe("backend-error");
    expect(saved(() => t.save({ name: "k03", v: 3 }))).toBe("saved");
    expect(await outcome(t.flush())).toBe("ok");
    expect([await t.load("k01"), await t.load("k02"), await t.load("k03")]).toEqual([undefined, { name: "k02", v: 2 }, { name: "k03", v: 3 }]);
  });
});
