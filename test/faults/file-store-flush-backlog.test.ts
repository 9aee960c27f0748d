/**
 * A file store behind a backlog of flushes (task 182). Its flushes never joined the store's flush group (the
 * backend's batch is not atomic), so each queued flush paid a durable round of its own (its files, then a directory
 * fsync): a producer saving and calling flush() once per event-loop turn got ahead of the worker, and engine.close()
 * behind thousands of queued flushes took minutes (close-timeout at 60 s; nothing lost). Now a file store's flushes
 * join as SQLite's do: a backlog commits as one round per group, each flush answered once the round covering its
 * writes is durable, and a key written by several joined flushes is written once (the last value). Guards: commits
 * counted by the actor's shared counters (never timed), call order across tiers, a group whose rename phase fails
 * part way (a key's path taken by a directory) failing only that tier's flush, and the engine reproduction (paced
 * save + flush, then close) storing every value. Real files, a real StoreActor, real worker threads.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { encodeKeyToFileName } from "../../src/backend/file-names.js";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import { openStorageEngine } from "../../src/engine/index.js";
import type { ApplyResult, Op, OpResult, StoreSpec, TierSpec } from "../../src/engine/protocol.js";
import { flush, load, nextId, nextTurn, put } from "../engine/fixtures/actor-ops.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("file-flush-backlog");
afterAll(() => root.remove());

const json = { kind: "builtin", name: "json" } as const;
const kvSpec = (name: string): TierSpec => ({ kind: "kv", name, debounceMs: 60_000, compactEvery: undefined, codec: json });

interface Opened {
  counters: ActorCounters;
  apply(ops: Op[]): Promise<ApplyResult>;
  value(tier: number, key: string): Promise<unknown>;
}

/** A StoreActor on a file store `dir`, kv tiers 1 and 2, run by `body`, then shut down. */
async function withFileActor(dir: string, body: (s: Opened) => Promise<void>): Promise<void> {
  const counters = new ActorCounters();
  const store: StoreSpec = { kind: "file", dir };
  const actor = new StoreActor({ store, synchronous: "FULL", counters: counters.buffer });
  await actor.ready();
  try {
    const opened = await actor.apply([kvSpec("a"), kvSpec("b")].map((spec, i) => ({ t: "open", tier: i + 1, spec, id: nextId() })));
    expect(opened.results.every((r) => r.ok)).toBe(true);
    await nextTurn();
    const one = async (op: Op): Promise<OpResult> => (await actor.apply([op])).results[0]!;
    await body({
      counters,
      apply: (ops) => actor.apply(ops),
      value: async (tier, key) => ((await one(load(tier, key))) as { value: unknown }).value,
    });
  } finally {
    await actor.shutdown();
  }
}

describe("a file store's queued flushes share a durable round", () => {
  it("200 messages each saving and flushing (a backlog the port hands over at once): a few commits, not 200", async () => {
    await withFileActor(root.fresh("backlog"), async (s) => {
      const commits = s.counters.get("commits");
      const messages = Array.from({ length: 200 }, (_, i) => [put(1, `k${i % 20}`, i), flush(1)]);
      const applied = await Promise.all(messages.map((m) => s.apply(m)));
      expect(applied.every((a) => a.results.every((r) => r.ok)), "every flush answered ok").toBe(true);
      // The run's first message commits at its end (nothing said more were queued); the backlog after it, at the run's.
      expect(s.counters.get("commits") - commits).toBeLessThanOrEqual(2);
      for (let k = 0; k < 20; k++) expect(await s.value(1, `k${k}`)).toBe(180 + k); // each key's last save
    });
  });

  it("flushes of two tiers in one message: one commit, in call order (the last save of a shared key wins)", async () => {
    await withFileActor(root.fresh("order"), async (s) => {
      const commits = s.counters.get("commits");
      const applied = await s.apply([put(1, "k", "a1"), flush(1), put(2, "k", "b1"), flush(2), put(1, "k", "a2"), flush(1), put(2, "j", "b2"), flush(2)]);
      expect(applied.results.every((r) => r.ok)).toBe(true);
      expect(s.counters.get("commits") - commits).toBe(1);
      expect(await s.value(1, "k")).toBe("a2");
      expect(await s.value(2, "j")).toBe("b2");
    });
  });

  it("a group whose rename phase fails part way: only the failing tier's flush rejects; its batch goes back and lands later", async () => {
    const dir = root.fresh("blocked");
    await withFileActor(dir, async (s) => {
      // A directory holding a file where key "blocked" is stored: the rename onto it fails after earlier ops landed.
      const blocker = join(dir, encodeKeyToFileName("blocked"));
      mkdirSync(blocker);
      writeFileSync(join(blocker, "x"), "x");
      const applied = await s.apply([put(1, "a", 1), flush(1), put(2, "blocked", 2), flush(2), put(1, "c", 3), flush(1)]);
      const ok = applied.results.map((r) => r.ok);
      expect(ok).toEqual([true, false, true]);
      expect(await s.value(1, "a")).toBe(1);
      expect(await s.value(1, "c")).toBe(3);
      rmSync(blocker, { recursive: true });
      const retried = await s.apply([flush(2)]);
      expect(retried.results[0]!.ok, "the put-back batch stores at the next flush").toBe(true);
      expect(await s.value(2, "blocked")).toBe(2);
    });
  });

  it("the engine reproduction: a save and an unawaited flush() per turn, then close(): every flush resolves, every value is stored", async () => {
    const dir = root.fresh("engine");
    const engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<{ i: number }>({ kind: "file", dir }, { name: "kv" });
    const answers: Array<Promise<string>> = [];
    const n = 1500;
    for (let i = 0; i < n; i++) {
      kv.save(`k${i % 50}`, { i });
      answers.push(kv.flush().then(() => "ok", (e: unknown) => String(e)));
      await nextTurn();
    }
    await engine.close();
    const outcomes = await Promise.all(answers);
    expect(outcomes.filter((o) => o !== "ok")).toEqual([]);
    const b = fileBackend(dir, { readOnly: true });
    try {
      for (let k = 0; k < 50; k++) expect(JSON.parse(new TextDecoder().decode(b.read(`k${k}`)))).toEqual({ i: n - 50 + k });
    } finally {
      b.close();
    }
  });
});

describe("a file store's batch writing a key more than once", () => {
  it("ends as its last op of each key (put over put, put over delete, delete over put)", () => {
    const b = fileBackend(root.fresh("dedup"));
    try {
      const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
      b.write("m", bytes("old"));
      b.writeBatch([
        { op: "put", key: "k", value: bytes("a") },
        { op: "delete", key: "j" },
        { op: "put", key: "k", value: bytes("b") },
        { op: "put", key: "j", value: bytes("c") },
        { op: "put", key: "m", value: bytes("x") },
        { op: "delete", key: "m" },
      ]);
      expect(new TextDecoder().decode(b.read("k"))).toBe("b");
      expect(new TextDecoder().decode(b.read("j"))).toBe("c");
      expect(b.read("m")).toBeUndefined();
      expect(b.list?.()).toEqual(["j", "k"]);
    } finally {
      b.close();
    }
  });
});
