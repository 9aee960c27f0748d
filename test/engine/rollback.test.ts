/**
 * Rollback crosses the thread boundary with the inline epoch semantics: every scenario runs through an
 * inline SQLite tier and through an engine proxy on a SQLite store, and both must persist exactly the same.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { sqliteAppendLog, sqliteKv, sqliteSnapshot } from "../../src/tier/index.js";
import type { AppendLogStorageTier, KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { tempRoot, turn } from "./fixtures/helpers.js";

const root = tempRoot("rollback");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

const DEBOUNCED = { debounceMs: 60_000 };

type Kv = KvStorageTier<number>;
type Log = AppendLogStorageTier<string>;
type Snap = SnapshotStorageTier<{ name: string; v: number }>;

/** Runs `steps` on an inline tier and on an engine proxy; returns what each persisted (read back inline). */
async function both<Tier extends { close(): Promise<void> }, R>(
  inline: (path: string) => Tier,
  proxy: (e: StorageEngine, path: string) => Tier,
  steps: (tier: Tier) => Promise<void>,
  read: (tier: Tier) => Promise<R>,
): Promise<{ inline: R; engine: R }> {
  const inlinePath = root.fresh("inline.db");
  const a = inline(inlinePath);
  await steps(a);
  await a.close();
  const reopenedInline = inline(inlinePath);
  const inlineResult = await read(reopenedInline);
  await reopenedInline.close();

  engine = openStorageEngine({ threads: 1 });
  const enginePath = root.fresh("engine.db");
  const b = proxy(engine, enginePath);
  await steps(b);
  await engine.close(); // releases the store; an inline tier then reads what the actor persisted
  engine = undefined;
  const reopenedEngineStore = inline(enginePath);
  const engineResult = await read(reopenedEngineStore);
  await reopenedEngineStore.close();
  return { inline: inlineResult, engine: engineResult };
}

const kvPair = [
  (path: string): Kv => sqliteKv<number>(path, { name: "kv", ...DEBOUNCED }),
  (e: StorageEngine, path: string): Kv => e.kv<number>({ kind: "sqlite", path }, { name: "kv", ...DEBOUNCED }),
] as const;
const logPair = [
  (path: string): Log => sqliteAppendLog<string>(path, { name: "log", ...DEBOUNCED }),
  (e: StorageEngine, path: string): Log => e.appendLog<string>({ kind: "sqlite", path }, { name: "log", ...DEBOUNCED }),
] as const;
const snapPair = [
  (path: string): Snap => sqliteSnapshot<{ name: string; v: number }>(path, { name: "snap", ...DEBOUNCED }),
  (e: StorageEngine, path: string): Snap =>
    e.snapshot<{ name: string; v: number }>({ kind: "sqlite", path }, { name: "snap", ...DEBOUNCED }),
] as const;

const readKv = async (t: Kv): Promise<Record<string, number | undefined>> => {
  const out: Record<string, number | undefined> = {};
  for (const k of await t.list()) out[k] = await t.load(k);
  return out;
};
const readLog = async (t: Log): Promise<string[]> => (await t.loadEntries()).entries;
const readSnap = async (t: Snap): Promise<Array<{ name: string; v: number } | undefined>> => [
  await t.load("first"),
  await t.load("second"),
];

describe("rollback across the thread boundary", () => {
  it("kv: save, rollback, save2, flush persists only save2", async () => {
    const r = await both(...kvPair, async (t) => {
      t.save("first", 1);
      t.rollback();
      t.save("second", 2);
      await t.flush();
    }, readKv);
    expect(r.engine).toEqual({ second: 2 });
    expect(r.engine).toEqual(r.inline);
  });

  it("kv: the same, with each call in its own tick (separate messages)", async () => {
    const r = await both(...kvPair, async (t) => {
      t.save("first", 1);
      await turn();
      t.rollback();
      await turn();
      t.save("second", 2);
      await t.flush();
    }, readKv);
    expect(r.engine).toEqual({ second: 2 });
    expect(r.engine).toEqual(r.inline);
  });

  it("kv: a rollback after a flush cannot undo what the flush made durable", async () => {
    const r = await both(...kvPair, async (t) => {
      t.save("first", 1);
      await t.flush();
      t.save("second", 2);
      t.rollback();
      await t.flush();
    }, readKv);
    expect(r.engine).toEqual({ first: 1 });
    expect(r.engine).toEqual(r.inline);
  });

  it("append-log: append, flush, append, rollback persists only the first", async () => {
    const r = await both(...logPair, async (t) => {
      t.appendEntries(["e1"]);
      await t.flush();
      t.appendEntries(["e2"]);
      t.rollback();
      await t.flush();
    }, readLog);
    expect(r.engine).toEqual(["e1"]);
    expect(r.engine).toEqual(r.inline);
  });

  it("append-log: appends before a rollback are gone, appends after it are kept", async () => {
    const r = await both(...logPair, async (t) => {
      t.appendEntries(["a", "b"]);
      await turn();
      t.appendEntries(["c"]);
      t.rollback();
      t.appendEntries(["d"]);
      await t.flush();
    }, readLog);
    expect(r.engine).toEqual(["d"]);
    expect(r.engine).toEqual(r.inline);
  });

  it("append-log: a flush issued just before a rollback behaves as inline (epoch check in the worker)", async () => {
    const r = await both(...logPair, async (t) => {
      t.appendEntries(["e1"]);
      const started = t.flush(); // not awaited: the rollback below travels in the same message
      t.rollback();
      t.appendEntries(["e2"]);
      await Promise.all([started, t.flush()]);
    }, readLog);
    expect(r.engine).toEqual(r.inline);
    expect(r.engine).toContain("e2");
  });

  it("snapshot: save, rollback, save2, flush persists only save2", async () => {
    const r = await both(...snapPair, async (t) => {
      t.save({ name: "first", v: 1 });
      t.rollback();
      t.save({ name: "second", v: 2 });
      await t.flush();
    }, readSnap);
    expect(r.engine).toEqual([undefined, { name: "second", v: 2 }]);
    expect(r.engine).toEqual(r.inline);
  });
});
