/**
 * What a flush whose batch shares a commit answers (src/engine/flush-group.ts, docs/design.md §3.30; review s14c).
 * D1: a flush of a tier whose earlier batch still waits in the store's flush group answers for that batch (it took
 * nothing itself, yet a value saved before its call is in it), and each joined flush's account settles in taking
 * order, inside the commit: a refusal found in an earlier batch is answered by the flush that took it, not by a
 * flush or compact() called after it. D2: when a group's commit fails, each batch is committed alone, so a row one
 * tier can never store fails that tier's flushes only, and the other tiers' flushes resolve as separate commits
 * would. Real SQLite files and real store actors (as flush-group.test.ts); the engine cases in a real worker.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import type { Op, OpResult, TierSpec } from "../../src/engine/protocol.js";
import { tempRoot } from "./fixtures/helpers.js";
import { acceptRows, rejectRow } from "./fixtures/refused-rows.js";

const root = tempRoot("flush-group-answers");
afterAll(() => root.remove());
const REFUSING = new URL("./fixtures/refusing-records.mjs", import.meta.url).href;
const json = { kind: "builtin", name: "json" } as const;
const retry = { initialMs: 60_000, maxMs: 60_000 };
const kvSpec = (name: string, codec: TierSpec["codec"] = json): TierSpec => ({ kind: "kv", name, debounceMs: 60_000, compactEvery: undefined, codec, retry });
const refusingSpec = kvSpec("a", { kind: "module", specifier: REFUSING, exportName: "codec" });
const snapshotSpec = (name: string): TierSpec => ({ kind: "snapshot", name, debounceMs: 60_000, compactEvery: undefined, codec: json, retry });
const logSpec = (name: string): TierSpec => ({ kind: "append-log", name, debounceMs: 60_000, compactEvery: undefined, codec: json, retry });

let ids = 1000;
const put = (tier: number, key: string, value: unknown): Op => ({ t: "puts", tier, keys: [key], values: [value], w: 1, n: 1 });
const flush = (tier: number): Op => ({ t: "flush", tier, id: ids++ });
const load = (tier: number, key: string): Op => ({ t: "load", tier, key, id: ids++ });
const append = (tier: number, bucket: string, entry: string): Op => ({ t: "append", tier, bucket, entries: [entry], count: 1, w: 1, n: 1 });
const oks = (results: readonly OpResult[]): boolean[] => results.map((r) => r.ok);
const outcome = (p: Promise<void>): Promise<string> => p.then(() => "resolved", (e: Error) => `rejected: ${e.message}`);

interface Opened {
  actor: StoreActor;
  counters: ActorCounters;
  apply(ops: Op[]): Promise<OpResult[]>;
  value(tier: number, key: string): Promise<unknown>;
  entries(tier: number, bucket: string): Promise<unknown[]>;
}

/** Runs `body` on a store actor over the SQLite file `path` with one tier per spec (tiers 1, 2, ...), then shuts it down. */
async function withActor(path: string, specs: TierSpec[], body: (s: Opened) => Promise<void>): Promise<void> {
  const counters = new ActorCounters();
  const actor = new StoreActor({ store: { kind: "sqlite", path }, synchronous: "FULL", counters: counters.buffer });
  await actor.ready();
  try {
    const opened = await actor.apply(specs.map((spec, i) => ({ t: "open", tier: i + 1, spec, id: ids++ })));
    expect(oks(opened.results)).toEqual(specs.map(() => true));
    const apply = async (ops: Op[]): Promise<OpResult[]> => (await actor.apply(ops)).results;
    const value = async (tier: number, key: string): Promise<unknown> => ((await apply([load(tier, key)]))[0] as { value: unknown }).value;
    const entries = async (tier: number, bucket: string): Promise<unknown[]> =>
      ((await apply([{ t: "loadEntries", tier, id: ids++, opts: { keyFilter: bucket } }]))[0] as { value: { entries: unknown[] } }).value.entries;
    await body({ actor, counters, apply, value, entries });
  } finally {
    await actor.shutdown().catch(() => undefined);
  }
}

describe("D1: a flush of a tier whose earlier batch waits in the group answers for it, in taking order", () => {
  it("the group's commit fails: a second flush that took nothing rejects too (the value saved before it is not stored)", async () => {
    const path = root.fresh("second.db");
    await withActor(path, [kvSpec("a")], async (s) => {
      rejectRow(path, "boom");
      const answers = await s.apply([put(1, "boom", "x"), flush(1), flush(1)]);
      expect(await s.value(1, "boom")).toBeUndefined();
      expect(oks(answers), "the second flush resolved although 'boom', saved before its call, is not stored").toEqual([false, false]);
      // The batch is pending again: once the store takes the row, the next flush stores it.
      acceptRows(path);
      expect(oks(await s.apply([flush(1)]))).toEqual([true]);
      expect(await s.value(1, "boom")).toBe("x");
    });
  });

  it("the group commits: a second flush that took nothing resolves after the first, and the value is stored", async () => {
    await withActor(root.fresh("second-ok.db"), [kvSpec("a")], async (s) => {
      const answers = await s.apply([put(1, "k", 1), flush(1), flush(1), put(1, "j", 2), flush(1), flush(1)]);
      expect(oks(answers)).toEqual([true, true, true, true]);
      expect(await s.value(1, "k")).toBe(1);
      expect(await s.value(1, "j")).toBe(2);
    });
  });

  it("a snapshot tier alike: its second flush fails with its batch, a kv tier's flush between them resolves", async () => {
    const path = root.fresh("snapshot.db");
    await withActor(path, [snapshotSpec("s"), kvSpec("a")], async (s) => {
      rejectRow(path, "boom");
      const answers = await s.apply([put(1, "boom", { v: 1 }), flush(1), put(2, "k", 1), flush(2), flush(1)]);
      expect(oks(answers), "[snapshot, kv, snapshot again with nothing new]").toEqual([false, true, false]);
      expect(await s.value(2, "k")).toBe(1);
      acceptRows(path);
      expect(oks(await s.apply([flush(1)]))).toEqual([true]);
      expect(await s.value(1, "boom")).toEqual({ v: 1 });
    });
  });

  it("a refusal in the first flush's batch rejects that flush only: a flush called after it does not answer for it", async () => {
    await withActor(root.fresh("refusal.db"), [refusingSpec], async (s) => {
      const answers = await s.apply([put(1, "k", "bad"), put(1, "j", "ok"), flush(1), flush(1)]);
      expect((answers[0] as { error: { code: string } }).error.code).toBe("encode-failed");
      expect(oks(answers), JSON.stringify(answers[1])).toEqual([false, true]);
      expect(await s.value(1, "j")).toBe("ok");
    });
  });

  it("compact() after a joined flush that reported a refusal does not answer for it (as after a flush committing alone)", async () => {
    await withActor(root.fresh("compact.db"), [refusingSpec], async (s) => {
      const answers = await s.apply([put(1, "k", "bad"), put(1, "j", "ok"), flush(1), { t: "compact", tier: 1, id: ids++ }]);
      expect(oks(answers), JSON.stringify(answers[1])).toEqual([false, true]);
    });
  });
});

describe("D2: a row one tier's batch can never store fails that tier's flushes only", () => {
  it("tier a's flushes resolve, round after round, while tier b's bad row is pending and b flushes in the same message", async () => {
    const path = root.fresh("isolation.db");
    await withActor(path, [kvSpec("a"), kvSpec("b")], async (s) => {
      rejectRow(path, "boom");
      const rounds: boolean[][] = [];
      for (let round = 0; round < 3; round++) {
        const ops = [put(1, `k${round}`, round), flush(1), ...(round === 0 ? [put(2, "boom", "x")] : []), flush(2)];
        rounds.push(oks(await s.apply(ops)));
      }
      expect(rounds, "[a's flush, b's flush] per round").toEqual([
        [true, false],
        [true, false],
        [true, false],
      ]);
      for (const round of [0, 1, 2]) expect(await s.value(1, `k${round}`)).toBe(round);
      acceptRows(path);
      expect(oks(await s.apply([flush(2)]))).toEqual([true]);
      expect(await s.value(2, "boom")).toBe("x");
    });
  });

  it("a tier's later batch fails with its failed one (committed alone it would have taken it back); newest values win", async () => {
    const path = root.fresh("later.db");
    await withActor(path, [kvSpec("a"), kvSpec("b")], async (s) => {
      rejectRow(path, "boom");
      const commits = s.counters.get("commits");
      const ops = [put(1, "k", 1), flush(1), put(2, "boom", "x"), put(2, "j", 1), flush(2), put(1, "k", 2), flush(1), put(2, "j", 2), flush(2)];
      expect(oks(await s.apply(ops))).toEqual([true, false, true, false]);
      // The group's transaction failed; then a's two batches committed alone, b's first failed and its second was not written.
      expect(s.counters.get("commits") - commits).toBe(2);
      expect(await s.value(1, "k")).toBe(2);
      expect(await s.value(2, "j")).toBeUndefined();
      acceptRows(path);
      expect(oks(await s.apply([flush(2)]))).toEqual([true]);
      expect(await s.value(2, "j"), "b's newer value went back over its older one").toBe(2);
      expect(await s.value(2, "boom")).toBe("x");
    });
  });
  it("an append-log's failed batches go back in order (each entry once) while a kv tier's flushes between them resolve", async () => {
    const path = root.fresh("log.db");
    await withActor(path, [logSpec("log"), kvSpec("a")], async (s) => {
      rejectRow(path, "boom");
      const ops = [append(1, "boom", "e1"), flush(1), put(2, "k", 1), flush(2), append(1, "boom", "e2"), flush(1), append(1, "fine", "f1"), flush(1)];
      expect(oks(await s.apply(ops))).toEqual([false, true, false, false]);
      expect(await s.value(2, "k")).toBe(1);
      expect(await s.entries(1, "boom")).toEqual([]);
      acceptRows(path);
      expect(oks(await s.apply([flush(1)]))).toEqual([true]);
      expect(await s.entries(1, "boom")).toEqual(["e1", "e2"]);
      expect(await s.entries(1, "fine")).toEqual(["f1"]);
    });
  });
});

describe("through an engine (real worker)", () => {
  let engine: StorageEngine | undefined;
  afterEach(async () => {
    await engine?.close().catch(() => undefined);
    engine = undefined;
  });

  it("D1: save; flush(); flush() in one turn on a store that refuses the row: both flushes reject, the value is not stored", async () => {
    const path = root.fresh("engine.db");
    engine = openStorageEngine({ threads: 1, onError: () => undefined });
    const kv = engine.kv<string>({ kind: "sqlite", path }, { name: "a", debounceMs: 60_000, retry });
    await kv.flush();
    rejectRow(path, "boom");
    kv.save("boom", "x");
    const outcomes = await Promise.all([outcome(kv.flush()), outcome(kv.flush())]);
    expect(await kv.load("boom")).toBeUndefined();
    expect(outcomes[0]).toMatch(/boom rejected/);
    expect(outcomes[1], "a flush resolved while a value saved before its call is not stored").toMatch(/boom rejected/);
  });

  it("D1: save(bad); save(ok); flush(); flush() in one turn: only the first flush answers for the refusal", async () => {
    engine = openStorageEngine({ threads: 1, onError: () => undefined });
    const kv = engine.kv<string>({ kind: "sqlite", path: root.fresh("engine-refusal.db") }, { name: "a", debounceMs: 60_000, codec: { module: REFUSING, export: "codec" } });
    await kv.flush();
    kv.save("k", "bad");
    kv.save("j", "ok");
    const outcomes = await Promise.all([outcome(kv.flush()), outcome(kv.flush())]);
    expect(outcomes).toEqual(["rejected: cannot encode bad", "resolved"]);
    expect(await kv.load("j")).toBe("ok");
  });

  it("D2: a's flush resolves beside b's failing one in the same turn; b's value stays for its next flush", async () => {
    const path = root.fresh("engine-isolation.db");
    engine = openStorageEngine({ threads: 1, onError: () => undefined });
    const a = engine.kv<number>({ kind: "sqlite", path }, { name: "a", debounceMs: 60_000, retry });
    const b = engine.kv<number>({ kind: "sqlite", path }, { name: "b", debounceMs: 60_000, retry });
    await Promise.all([a.flush(), b.flush()]);
    rejectRow(path, "boom");
    a.save("k", 1);
    const first = outcome(a.flush());
    b.save("boom", 2);
    const second = outcome(b.flush());
    expect(await Promise.all([first, second])).toEqual(["resolved", expect.stringMatching(/boom rejected/)]);
    expect(await a.load("k")).toBe(1);
    acceptRows(path);
    await b.flush();
    expect(await b.load("boom")).toBe(2);
  });
});
