/**
 * Values that throw when looked at: a revoked Proxy, a Proxy whose getPrototypeOf trap throws, a record whose `name`
 * getter throws. An inline kv save threw the raw TypeError / Error (weighing the value ran `instanceof`, which runs
 * the trap) while an engine kv tier refused the same value with CodecError at its flush; a snapshot save threw the
 * raw error in both modes (the record's `name`, its key, was read unguarded). Now each is refused like any value the
 * rule refuses: save returns, the next flush rejects CodecError("encode-failed"), the tier keeps working, nothing
 * of the value is stored, the same in both modes.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { sqliteKv, sqliteSnapshot } from "../../src/tier/factories.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("throwing-values");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

const VALUES: ReadonlyArray<[string, () => unknown]> = [
  [
    "a revoked Proxy",
    () => {
      const p = Proxy.revocable({ name: "g" }, {});
      p.revoke();
      return p.proxy;
    },
  ],
  ["a Proxy whose getPrototypeOf trap throws", () => new Proxy({ name: "g" }, { getPrototypeOf: () => { throw new Error("trap"); } })],
  ["a Proxy whose get trap throws", () => new Proxy({ name: "g" }, { get: () => { throw new Error("trap"); } })],
  ["a record whose name getter throws", () => ({ get name(): string { throw new Error("getter"); }, seq: 1 })],
];

type Mode = "inline" | "engine";

function kvTier(mode: Mode): KvStorageTier<unknown> {
  if (mode === "inline") return sqliteKv(root.fresh("kv.db"));
  engine ??= openStorageEngine({ threads: 1, onError: () => undefined });
  return engine.kv({ kind: "sqlite", path: root.fresh("kv.db") });
}

function snapshotTier(mode: Mode): SnapshotStorageTier<unknown> {
  if (mode === "inline") return sqliteSnapshot(root.fresh("snap.db"), { name: "snap" });
  engine ??= openStorageEngine({ threads: 1, onError: () => undefined });
  return engine.snapshot({ kind: "sqlite", path: root.fresh("snap.db") }, { name: "snap" });
}

describe.each<Mode>(["inline", "engine"])("values that throw when looked at (%s)", (mode) => {
  it.each(VALUES)("kv save and saveMany of %s: refused with CodecError at the flush, the tier goes on", async (_label, make) => {
    const kv = kvTier(mode);
    try {
      kv.save("before", 1);
      expect(() => kv.save("bad", make())).not.toThrow();
      await expect(kv.flush()).rejects.toMatchObject({ name: "CodecError", code: "encode-failed" });
      expect(() => kv.saveMany?.([["bad2", make()], ["ok", 2]])).not.toThrow();
      await expect(kv.flush()).rejects.toMatchObject({ name: "CodecError", code: "encode-failed" });
      kv.save("after", 3);
      await kv.flush();
      expect(await kv.load("before")).toBe(1);
      expect(await kv.load("after")).toBe(3);
      expect(await kv.load("bad")).toBeUndefined();
      expect(await kv.load("bad2")).toBeUndefined();
    } finally {
      await kv.close().catch(() => undefined);
    }
  });

  it.each(VALUES)("snapshot save of %s: refused with CodecError at the flush, the tier goes on", async (_label, make) => {
    const snap = snapshotTier(mode);
    try {
      expect(() => snap.save(make())).not.toThrow();
      await expect(snap.flush()).rejects.toMatchObject({ name: "CodecError", code: "encode-failed" });
      snap.save({ name: "g", seq: 2 });
      await snap.flush();
      expect(await snap.load("g")).toEqual({ name: "g", seq: 2 });
    } finally {
      await snap.close().catch(() => undefined);
    }
  });
});
