/**
 * The concurrent-flush race (docs/design.md §2): two inline append-log tiers in the reference read-modify-write
 * layout over a deliberately async store, through two backend objects (two writers of one store), lose entries;
 * over one backend object its write lane (design §3.30) runs their flushes one after another and nothing is lost;
 * the same workload through the engine (several proxies on one store, one key, concurrent flushes) loses and
 * duplicates nothing, in either layout, because one actor owns the store and runs its flushes in mailbox order.
 * Delays are seeded and counted in event-loop turns (not milliseconds), so every run interleaves alike.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { jsonCodec } from "../../src/codec/index.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { appendLogStorage } from "../../src/tier/index.js";
import type { AppendLogLayout, AppendLogStorageTier } from "../../src/tier/types.js";
import { tempRoot, turn } from "./fixtures/helpers.js";
import { mulberry32 as seeded } from "../../src/base/prng.js";

const ROUNDS = 40;
const PER_APPEND = 3;

/** A backend object over `raw` (a real memory backend) whose every call completes after 0-3 seeded event-loop turns. */
function asyncBackend(
  rand: () => number,
  raw = memoryBackend({ name: "async-memory" }),
): { backend: StorageBackend; raw: ReturnType<typeof memoryBackend> } {
  const later = async <T>(op: () => T): Promise<T> => {
    for (let hops = Math.floor(rand() * 4); hops > 0; hops--) await turn();
    return op();
  };
  const backend: StorageBackend = {
    name: "async-memory",
    supports: { ...raw.supports, sync: false },
    read: (k) => later(() => raw.read(k)),
    write: (k, v) => later(() => raw.write(k, v)),
    delete: (k) => later(() => raw.delete(k)),
    list: (p) => later(() => raw.list(p)),
  };
  return { backend, raw };
}

/** Each round every tier appends, then all flush concurrently; returns every entry appended. */
async function workload(tiers: readonly AppendLogStorageTier<string>[], rand: () => number): Promise<string[]> {
  const appended: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const flushes: Promise<void>[] = [];
    for (const [t, tier] of tiers.entries()) {
      const entries = Array.from({ length: PER_APPEND }, (_, i) => `t${t}/r${round}/e${i}`);
      appended.push(...entries);
      tier.appendEntries(entries);
      if (rand() < 0.5) await turn();
      flushes.push(tier.flush());
    }
    await Promise.all(flushes);
  }
  return appended;
}

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

describe("the concurrent-flush race", () => {
  it("inline array-layout tiers through two backend objects of one async store lose entries (the race exists)", async () => {
    const rand = seeded(0x5eed);
    const { backend: first, raw } = asyncBackend(rand);
    const { backend: second } = asyncBackend(rand, raw);
    const tiers = [first, second].map((b) => appendLogStorage<string>(b, { name: "log", layout: "array", debounceMs: 60_000 }));
    const appended = await workload(tiers, rand);
    await Promise.all(tiers.map((t) => t.close()));
    const stored = jsonCodec.decode(raw.read("log")!) as string[];
    expect(stored.length).toBeLessThan(appended.length);
    console.log(`[race] inline, array layout, two writers: ${appended.length} appended, ${stored.length} stored`);
  });

  it("inline array-layout tiers over ONE async backend object lose nothing: its write lane orders their flushes", async () => {
    const rand = seeded(0x5eed);
    const { backend, raw } = asyncBackend(rand);
    const tiers = [0, 1].map(() => appendLogStorage<string>(backend, { name: "log", layout: "array", debounceMs: 60_000 }));
    const appended = await workload(tiers, rand);
    await Promise.all(tiers.map((t) => t.close()));
    const stored = jsonCodec.decode(raw.read("log")!) as string[];
    expect(sorted(stored)).toEqual(sorted(appended));
  });

  describe.each<AppendLogLayout>(["array", "segments"])("through the engine, %s layout", (layout) => {
    const root = tempRoot(`race-${layout}`);
    let engine: StorageEngine | undefined;
    afterEach(async () => {
      await engine?.close();
      engine = undefined;
    });
    afterAll(() => root.remove());

    it.each<[string, () => StoreSpec]>([
      ["memory", () => ({ kind: "memory", name: root.fresh("race") })],
      ["sqlite", () => ({ kind: "sqlite", path: root.fresh("race.db") })],
    ])("%s store: several proxies on one key lose and duplicate nothing", async (_kind, spec) => {
      engine = openStorageEngine({ threads: 2 });
      const store = spec();
      const proxies = [0, 1, 2].map(() => engine!.appendLog<string>(store, { name: "log", layout, debounceMs: 60_000 }));
      const appended = await workload(proxies, seeded(0x5eed));
      const reader = engine.appendLog<string>(store, { name: "log", layout });
      const { entries } = await reader.loadEntries();
      expect(entries).toHaveLength(appended.length);
      expect(sorted(entries)).toEqual(sorted(appended));
      // Each proxy's own entries stay in the order it appended them.
      for (const t of [0, 1, 2]) {
        const own = entries.filter((e) => e.startsWith(`t${t}/`));
        expect(own).toEqual(appended.filter((e) => e.startsWith(`t${t}/`)));
      }
    });
  });
});
