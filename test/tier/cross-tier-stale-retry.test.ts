/**
 * A failed batch of one tier, retried after another tier of the same backend object landed a later write of the same
 * key, must not land over it (review s15r2 D2, docs/design.md §3.30): the tiers of a backend write in call order
 * (write-lane.ts), and a retry keeps its batch's place on the lane. Inline over memory (async like PostgreSQL, and
 * sync), a real SQLite file (a trigger fails the write) and a file store; through an engine's store actor over
 * SQLite. No timing: retries are held (60 s) and driven by explicit flushes. PostgreSQL: the -postgres twin.
 */
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { failOnceStores } from "../support/fail-once-stores.js";
import { acceptRows, rejectRow } from "../engine/fixtures/refused-rows.js";

const HELD = 60_000;
const held = { retry: { initialMs: HELD, maxMs: HELD } } as const;
const dir = mkdtempSync(join(tmpdir(), "cross-tier-stale-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string): string => join(dir, `${n++}-${name}`);

const stores = failOnceStores(fresh);

/** Counts the failures a tier reports (onError: once per failing spell). */
function failures(): { onError: (err: Error) => void; readonly count: number } {
  const f = {
    count: 0,
    onError: (): void => {
      f.count++;
    },
  };
  return f;
}

describe.each(stores)("%s", (_name, open) => {
  it("a sync-through save that failed, retried after another tier stored the key later: the later value stays", async () => {
    const st = open();
    const sFailed = failures();
    const s = kvStorage<number>(st.backend, { name: "s", ...held, onError: sFailed.onError }); // sync-through
    const t = kvStorage<number>(st.backend, { name: "t", debounceMs: HELD });
    s.save("warm", 0);
    await s.flush();
    st.failOnce("a");
    s.save("a", 1); // fails (async: in flight, fails before t's flush queued behind it runs)
    st.heal();
    t.save("a", 2);
    await t.flush(); // taken at its call, after s's save: lands after it
    expect(sFailed.count).toBe(1);
    await s.flush(); // the retry: s's a = 1 stood before t's a = 2 on the lane, and a later write of a landed
    expect(await t.load("a")).toBe(2);
    await s.close();
    await t.close();
    expect(await st.stored("a")).toBe(2);
    st.close();
  });

  it("a failed save retried after another tier deleted the key later: the key stays deleted", async () => {
    const st = open();
    const sFailed = failures();
    const s = kvStorage<number>(st.backend, { name: "s", ...held, onError: sFailed.onError });
    const t = kvStorage<number>(st.backend, { name: "t", debounceMs: HELD });
    s.save("warm", 0);
    await s.flush();
    st.failOnce("a");
    s.save("a", 1);
    st.heal();
    await t.delete("a");
    expect(sFailed.count).toBe(1);
    await s.close(); // a close flushes what is pending: the stale value is not
    await t.close();
    expect(await st.stored("a")).toBeUndefined();
    st.close();
  });

  it("a put-back value older than a snapshot record of its key stays out, and a record older than a kv value alike", async () => {
    const st = open();
    const sFailed = failures();
    const s = kvStorage<{ name: string; v: number }>(st.backend, { name: "s", ...held, onError: sFailed.onError });
    const snap = snapshotStorage<{ name: string; v: number }>(st.backend, { name: "snap", debounceMs: HELD, ...held });
    s.save("warm", { name: "warm", v: 0 });
    await s.flush();
    st.failOnce("rec");
    s.save("rec", { name: "rec", v: 1 }); // fails
    st.heal();
    snap.save({ name: "rec", v: 2 });
    await snap.flush();
    expect(sFailed.count).toBe(1);
    await s.flush();
    expect(await s.load("rec")).toEqual({ name: "rec", v: 2 });
    // The other way round: the snapshot tier's record fails, a kv tier stores the key later.
    st.failOnce("rec2");
    snap.save({ name: "rec2", v: 1 });
    await expect(snap.flush()).rejects.toThrow();
    st.heal();
    s.save("rec2", { name: "rec2", v: 2 });
    await s.flush();
    await snap.flush();
    expect(await s.load("rec2")).toEqual({ name: "rec2", v: 2 });
    await s.close();
    await snap.close();
    st.close();
  });

  const shapes = [
    { layout: "array", mode: "append", want: ["e0", "e2", "e1"] }, // e2 acknowledged: the retry reads the store again
    { layout: "array", mode: "overwrite", want: ["e2"] },
    { layout: "segments", mode: "overwrite", want: ["e2"] },
  ] as const;
  for (const { layout, mode, want } of shapes) {
    it(`append-logs sharing a bucket (${layout} layout, ${mode}): a retry keeps another tier's later write of the bucket`, async () => {
      const st = open();
      const lsFailed = failures();
      const shared = { keyOf: () => "shared", layout, mode, ...held };
      const ls = appendLogStorage<string>(st.backend, { name: "ls", ...shared, onError: lsFailed.onError }); // sync-through
      const lt = appendLogStorage<string>(st.backend, { name: "lt", debounceMs: HELD, ...shared });
      ls.appendEntries(["e0"]);
      await ls.flush();
      st.failOnce("shared");
      ls.appendEntries(["e1"]); // fails (async: before lt's flush queued behind it runs)
      st.heal();
      lt.appendEntries(["e2"]);
      await lt.flush();
      expect(lsFailed.count).toBe(1);
      await ls.flush(); // the retry
      expect((await lt.loadEntries({ keyFilter: "shared" })).entries).toEqual(want);
      await ls.close();
      await lt.close();
      st.close();
    });
  }

  it("guards: a retry lands over what landed before its batch, and flush-call order stands without failures", async () => {
    const st = open();
    const s = kvStorage<number>(st.backend, { name: "s", ...held });
    const t = kvStorage<number>(st.backend, { name: "t", debounceMs: HELD });
    const u = kvStorage<number>(st.backend, { name: "u", debounceMs: HELD });
    s.save("warm", 0);
    await s.flush();
    t.save("a", 2);
    await t.flush(); // lands before s's save
    st.failOnce("a");
    s.save("a", 1);
    u.save("a", 3); // pending, not flushed: it lands at its flush, after s's retry
    st.heal();
    await s.flush(); // sync: a retry; async: it answers for the write in flight, and retries it once it failed
    expect(await s.load("a")).toBe(1);
    await u.flush();
    expect(await s.load("a")).toBe(3);
    // A debounced tier's value lands at its flush's call (documented), older save or not.
    t.save("b", 1);
    s.save("b", 2);
    await s.flush();
    await t.flush();
    expect(await s.load("b")).toBe(1);
    await s.close();
    await t.close();
    await u.close();
    st.close();
  });
});

/** Runs `body` with an engine and a fresh SQLite store for it, then closes the engine. */
async function withEngineStore(body: (engine: StorageEngine, store: { kind: "sqlite"; path: string }) => Promise<void>): Promise<void> {
  const engine = openStorageEngine({ threads: 1 });
  try {
    await body(engine, { kind: "sqlite", path: fresh("engine.db") });
  } finally {
    await engine.close();
  }
}

/** `write` fails, its `flush` rejecting: the store refuses rows whose key starts with `prefix` meanwhile. */
async function failedOnce(path: string, prefix: string, write: () => void, flush: () => Promise<void>): Promise<void> {
  rejectRow(path, prefix);
  write();
  await expect(flush()).rejects.toThrow();
  acceptRows(path);
}

describe("engine (store actor over a SQLite file)", () => {
  for (const sameTurn of [false, true]) {
    it(`a failed save retried after another tier's later save${sameTurn ? ", both flushes in one turn (one flush group)" : ""}: the later value stays`, async () => {
      await withEngineStore(async (engine, store) => {
        const s = engine.kv<number>(store, { name: "s", ...held });
        const t = engine.kv<number>(store, { name: "t", debounceMs: HELD });
        s.save("warm", 0);
        await s.flush();
        await failedOnce(store.path, "a", () => s.save("a", 1), () => s.flush());
        t.save("a", 2);
        if (sameTurn) {
          // t's batch joins the group first; s's retry, from an earlier place on the lane, must not land after it.
          await Promise.all([t.flush(), s.flush()]);
        } else {
          await t.flush();
          await s.flush();
        }
        expect(await t.load("a")).toBe(2);
        await s.close();
        await t.close();
        expect(await engine.kv<number>(store, { name: "reader" }).load("a")).toBe(2);
      });
    });
  }

  it("a snapshot record's failed flush retried in the same flush group as a kv tier's later save of its key", async () => {
    await withEngineStore(async (engine, store) => {
      type Rec = { name: string; v: number };
      const snap = engine.snapshot<Rec>(store, { name: "snap", debounceMs: HELD, ...held });
      const t = engine.kv<Rec>(store, { name: "t", debounceMs: HELD });
      t.save("warm", { name: "warm", v: 0 });
      await t.flush(); // the store (and its table) exists
      await failedOnce(store.path, "rec", () => snap.save({ name: "rec", v: 1 }), () => snap.flush());
      t.save("rec", { name: "rec", v: 2 });
      await Promise.all([t.flush(), snap.flush()]); // t's batch joins the group first: snap's retry must not follow it
      expect(await t.load("rec")).toEqual({ name: "rec", v: 2 });
    });
  });

  it("array-layout append-logs sharing a bucket: a failed append retried after another tier's later one keeps both", async () => {
    await withEngineStore(async (engine, store) => {
      const shared = { keyOf: () => "shared", layout: "array", ...held } as const;
      const ls = engine.appendLog<string>(store, { name: "ls", ...shared });
      const lt = engine.appendLog<string>(store, { name: "lt", debounceMs: HELD, ...shared });
      ls.appendEntries(["e0"]);
      await ls.flush();
      await failedOnce(store.path, "shared", () => ls.appendEntries(["e1"]), () => ls.flush());
      lt.appendEntries(["e2"]);
      await lt.flush(); // acknowledged
      await ls.flush(); // the retry appends to what is stored now, not to the array its failed attempt read
      expect((await lt.loadEntries({ keyFilter: "shared" })).entries).toEqual(["e0", "e2", "e1"]);
    });
  });
});
