/**
 * The loads of one kv tier that reach the store's actor in one message (a restore asks for hundreds per tick) are
 * read together (the backend's readMany: one range scan on SQLite), and each is answered as its own load would
 * be: a value, undefined for a miss, or its own error (a row another program wrote with the wrong type, bytes the
 * codec cannot decode) while the others still answer.
 */
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { CodecError, StorageError } from "../../src/errors.js";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import type { Op, TierSpec } from "../../src/engine/protocol.js";
import { tempRoot } from "./fixtures/helpers.js";
import { sqliteStoreWithRows } from "../support/foreign-rows.js";

const root = tempRoot("joint-loads");
afterAll(() => root.remove());

/** A store holding `rows` as written by another program (any SQLite types). */
const storeWith = (rows: Array<[string, unknown]>): string => sqliteStoreWithRows(root.fresh("s.db"), rows);

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

describe("joint loads in the store actor", () => {
  let actor: StoreActor | undefined;
  let engine: StorageEngine | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await actor?.shutdown();
    actor = undefined;
    await engine?.close();
    engine = undefined;
  });

  it("reads a message's loads of one tier with one readMany and answers each in order", async () => {
    const rows: Array<[string, unknown]> = Array.from({ length: 40 }, (_, i) => [`k/${String(i).padStart(2, "0")}`, json({ i })]);
    const path = storeWith(rows);
    actor = new StoreActor({ store: { kind: "sqlite", path }, synchronous: "FULL", counters: new ActorCounters().buffer });
    await actor.ready();
    const spec: TierSpec = { kind: "kv", name: "kv", debounceMs: undefined, compactEvery: undefined, codec: { kind: "builtin", name: "json" } };
    expect((await actor.apply([{ t: "open", tier: 1, spec, id: 1 }])).results.every((r) => r.ok)).toBe(true);
    const probe = sqliteBackend(root.fresh("probe.db"));
    const readMany = vi.spyOn(Object.getPrototypeOf(probe) as { readMany: () => unknown }, "readMany");
    probe.close();
    const keys = ["k/05", "k/39", "missing", "k/05", "k/00", "k/17"];
    const loads: Op[] = keys.map((key, i) => ({ t: "load", tier: 1, id: 10 + i, key }));
    const { results } = await actor.apply(loads);
    expect(readMany).toHaveBeenCalledTimes(1);
    expect(results.map((r) => r.id)).toEqual(keys.map((_, i) => 10 + i));
    expect(results.map((r) => (r.ok ? r.value : "failed"))).toEqual([{ i: 5 }, { i: 39 }, undefined, { i: 5 }, { i: 0 }, { i: 17 }]);
  });

  it("a load whose row is corrupt or whose bytes do not decode fails alone; the others answer", async () => {
    const path = storeWith([
      ["a", json(1)],
      ["b", "a TEXT value"],
      ["c", json(3)],
      ["d", Buffer.from("{not json")],
      ["e", json(5)],
    ]);
    engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<number>({ kind: "sqlite", path });
    const settled = await Promise.allSettled(["a", "b", "c", "d", "e", "f"].map((k) => kv.load(k)));
    expect(settled.map((s) => (s.status === "fulfilled" ? s.value : "rejected"))).toEqual([1, "rejected", 3, "rejected", 5, undefined]);
    const b = (settled[1] as PromiseRejectedResult).reason as StorageError;
    expect(b).toBeInstanceOf(StorageError);
    expect(b.code).toBe("corrupt-store");
    const d = (settled[3] as PromiseRejectedResult).reason as CodecError;
    expect(d).toBeInstanceOf(CodecError);
    expect(await kv.load("c")).toBe(3);
  });
});
