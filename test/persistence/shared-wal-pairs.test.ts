/**
 * Pairs of one attach that share a WAL tier write their frames under the same keys, so they must number them alike
 * (docs/design.md §3.7). Each pair numbered on its own (review s13c): it bootstrapped from the WAL's highest key and
 * its own baseline, so a second snapshot destination added beside an older one started at another seq and the two
 * wrote different frames under one key (restore through the first lost an acknowledged change, measured WAL
 * `2:a=1 4:a=2 5:b=3 6:b=3`), or left the first's own-baseline seq as a hole in the second's changes (restore
 * wal-gap "frame 4 missing"). A pair that stopped alone went on numbering from where it stopped after a rebaseline,
 * over the frames the others wrote meanwhile; and a pair's frames left before another pair's own baseline below
 * them was durable (a crash then: that pair's store has a hole). Real parts: SQLite files, an engine's worker.
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { CodecError } from "../../src/errors.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { AttachOptions, GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { parseWalFrameKey } from "../../src/wal/keys.js";
import { tempDir } from "../graph-compaction/fixtures.js";

const tmp = tempDir("shared-wal-pairs");
afterAll(() => tmp.remove());

type Snapshot = SnapshotStorageTier<GraphCheckpointRecord>;
type Wal = KvStorageTier<WALFrame>;

const build = (): ReactiveGraph => {
  const g = createGraph("g");
  g.state("a", 0);
  g.state("b", 0);
  return g;
};

/** Restores graph "g" from `snapshot` + `wal`: its a and b, or why it failed. */
async function restored(snapshot: Snapshot, wal: Wal): Promise<unknown> {
  const g = build();
  try {
    await restoreSnapshot(g, { snapshot, wal });
  } catch (err) {
    return `${(err as { code?: string }).code}: ${(err as Error).message.slice(0, 80)}`;
  }
  return { a: g.get("a"), b: g.get("b") };
}

/**
 * The WAL tier `wal`, recording every frame saved under a key: `clashes` lists keys saved with different frames,
 * `twice` keys saved more than once (each pair saving the same frame: one write per pair instead of one).
 */
function recording(wal: Wal): { wal: Wal; clashes: string[]; twice: string[] } {
  const seen = new Map<string, string>();
  const clashes: string[] = [];
  const twice: string[] = [];
  const note = (key: string, frame: WALFrame): void => {
    if (parseWalFrameKey("g/wal", key) === undefined) return; // the shared-WAL record (shared-wal-record.ts) moves on
    const json = JSON.stringify(frame);
    const before = seen.get(key);
    if (before !== undefined && before !== json && !clashes.includes(key)) clashes.push(key);
    if (before !== undefined && !twice.includes(key)) twice.push(key);
    seen.set(key, json);
  };
  const tier = Object.create(wal) as Wal & { saveMany?: (entries: ReadonlyArray<readonly [string, WALFrame]>) => void };
  tier.save = (key, frame) => {
    note(key, frame);
    return wal.save(key, frame);
  };
  const many = (wal as { saveMany?: (entries: ReadonlyArray<readonly [string, WALFrame]>) => void }).saveMany;
  if (many !== undefined) {
    tier.saveMany = (entries) => {
      for (const [key, frame] of entries) note(key, frame);
      return many.call(wal, entries);
    };
  }
  return { wal: tier, clashes, twice };
}

interface Stores {
  /** The WAL tier and the first snapshot tier (one store), the second snapshot tier (another store). */
  open(): { wal: Wal; s1: Snapshot; s2: Snapshot };
  close(): Promise<void>;
}

const harnesses: Record<string, () => Stores> = {
  "inline SQLite files": () => {
    const one = tmp.path("one.db");
    const two = tmp.path("two.db");
    let open: Array<{ close(): unknown }> = [];
    return {
      open: () => {
        const b1 = sqliteBackend(one);
        const b2 = sqliteBackend(two);
        open = [b1, b2];
        return {
          wal: kvStorage<WALFrame>(b1, { codec: walFrameCodec }),
          s1: snapshotStorage<GraphCheckpointRecord>(b1),
          s2: snapshotStorage<GraphCheckpointRecord>(b2),
        };
      },
      close: async () => {
        for (const b of open) await b.close();
      },
    };
  },
  "engine (SQLite stores, worker thread)": () => {
    const one = { kind: "sqlite" as const, path: tmp.path("engine-one.db") };
    const two = { kind: "sqlite" as const, path: tmp.path("engine-two.db") };
    let engine: StorageEngine | undefined;
    return {
      open: () => {
        engine = openStorageEngine({ threads: 1, onError: () => {} });
        return {
          wal: engine.kv<WALFrame>(one, { codec: walFrameCodec }),
          s1: engine.snapshot<GraphCheckpointRecord>(one),
          s2: engine.snapshot<GraphCheckpointRecord>(two),
        };
      },
      close: async () => engine?.close(),
    };
  },
};

describe.each(Object.entries(harnesses))("%s", (_, harness) => {
  it.each([
    ["the default cadence", {}],
    ["compactEvery: Infinity", { compactEvery: Number.POSITIVE_INFINITY }],
  ] as Array<[string, AttachOptions]>)(
    "a snapshot tier joins an older one on the WAL tier (session 1: %s): restorable through each, no key written twice",
    async (_, session1) => {
      const stores = harness();
      // Session 1: one pair; a rebaseline leaves s1's baseline above the WAL's last frame.
      let { wal, s1, s2 } = stores.open();
      let g = build();
      const h1 = attachSnapshotStorage(g, [{ snapshot: s1, wal }], { ...session1, onError: () => {} });
      g.set("a", 1);
      await h1.rebaseline();
      await h1.dispose();
      await stores.close();
      // Session 2, restarted from s1: a second snapshot destination joins, sharing the WAL tier.
      ({ wal, s1, s2 } = stores.open());
      g = build();
      await restoreSnapshot(g, { snapshot: s1, wal });
      const rec = recording(wal);
      const h2 = attachSnapshotStorage(g, [{ snapshot: s1, wal: rec.wal }, { snapshot: s2, wal: rec.wal }], { onError: () => {} });
      g.set("a", 2);
      g.set("b", 3);
      await h2.flush();
      await h2.dispose();
      await stores.close();
      expect({ clashes: rec.clashes, twice: rec.twice }).toEqual({ clashes: [], twice: [] });
      ({ wal, s1, s2 } = stores.open());
      expect({ s1: await restored(s1, wal), s2: await restored(s2, wal) }).toEqual({ s1: { a: 2, b: 3 }, s2: { a: 2, b: 3 } });
      // Session 3, restarted from s2 (below s1's stored seqs or not): numbering goes on above every stored frame.
      g = build();
      await restoreSnapshot(g, { snapshot: s2, wal });
      const rec3 = recording(wal);
      const h3 = attachSnapshotStorage(g, [{ snapshot: s2, wal: rec3.wal }, { snapshot: s1, wal: rec3.wal }], { onError: () => {} });
      g.set("b", 4);
      await h3.flush();
      await h3.dispose();
      await stores.close();
      expect({ clashes: rec3.clashes, twice: rec3.twice }).toEqual({ clashes: [], twice: [] });
      ({ wal, s1, s2 } = stores.open());
      expect({ s1: await restored(s1, wal), s2: await restored(s2, wal) }).toEqual({ s1: { a: 2, b: 4 }, s2: { a: 2, b: 4 } });
      await stores.close();
    },
  );
});

/** A snapshot tier refusing for good (a codec's refusal) the next save of a baseline once `refuse` is set. */
function refusingOnce(inner: Snapshot): { tier: Snapshot; refuse(): void } {
  let armed = false;
  const tier = Object.create(inner) as Snapshot;
  tier.save = (...args: Parameters<Snapshot["save"]>) => {
    if (armed) {
      armed = false;
      throw new CodecError("encode-failed", "refused for the test");
    }
    return inner.save(...args);
  };
  return { tier, refuse: () => (armed = true) };
}

it("a pair that stopped on a refused baseline stops the other pairs on its WAL tier; a rebaseline resumes all at one seq", async () => {
  const b1 = sqliteBackend(tmp.path("stop-one.db"));
  const b2 = sqliteBackend(tmp.path("stop-two.db"));
  try {
    const rec = recording(kvStorage<WALFrame>(b1, { codec: walFrameCodec }));
    const s1 = snapshotStorage<GraphCheckpointRecord>(b1);
    const s2 = refusingOnce(snapshotStorage<GraphCheckpointRecord>(b2));
    const g = build();
    const h = attachSnapshotStorage(g, [{ snapshot: s1, wal: rec.wal }, { snapshot: s2.tier, wal: rec.wal }], {
      compactEvery: 2,
      onError: () => {},
    });
    g.set("a", 1);
    await h.flush();
    s2.refuse();
    g.set("a", 2);
    g.set("b", 2); // the second wave: a periodic baseline, refused in s2
    await expect(h.flush()).rejects.toMatchObject({ code: "write-refused" });
    for (let i = 3; i <= 6; i++) g.set("a", i); // not persisted by any pair (all stopped)
    await h.rebaseline();
    for (let i = 7; i <= 9; i++) g.set("b", i);
    await h.flush();
    await h.dispose();
    expect({ clashes: rec.clashes, twice: rec.twice }).toEqual({ clashes: [], twice: [] });
    const wal = kvStorage<WALFrame>(b1, { codec: walFrameCodec });
    const inner2 = snapshotStorage<GraphCheckpointRecord>(b2);
    expect({ s1: await restored(s1, wal), s2: await restored(inner2, wal) }).toEqual({ s1: { a: 6, b: 9 }, s2: { a: 6, b: 9 } });
  } finally {
    b1.close();
    b2.close();
  }
});

it("no frame leaves before every pair's own baseline below it is durable (a crash then leaves each store restorable)", async () => {
  const walBackend = memoryBackend();
  const s1Backend = memoryBackend();
  const s2Backend = memoryBackend();
  const wal = kvStorage<WALFrame>(walBackend, { codec: walFrameCodec });
  const s1 = snapshotStorage<GraphCheckpointRecord>(s1Backend);
  const s2 = snapshotStorage<GraphCheckpointRecord>(s2Backend, { debounceMs: 60_000 });
  // Session 1: both snapshot tiers hold a baseline, a = 1 in the WAL above it.
  const g = build();
  const h1 = attachSnapshotStorage(g, [{ snapshot: s1, wal }, { snapshot: s2, wal }], { onError: () => {} });
  g.set("a", 1);
  await h1.flush();
  await h1.dispose();
  // Session 2: s2's flush is held back, so its attach baseline is not durable; a wave follows at once.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const slow = Object.create(s2) as typeof s2;
  slow.flush = () => held.then(() => s2.flush());
  const h2 = attachSnapshotStorage(g, [{ snapshot: s1, wal }, { snapshot: slow, wal }], { onError: () => {} });
  g.set("a", 2);
  const flushed = h2.flush();
  // Until s1's attach baseline is stored (the first pair's gate opens), then many turns for a frame to be written.
  while ((await snapshotStorage<GraphCheckpointRecord>(s1Backend).load("g"))?.seq !== 3) {
    await new Promise((r) => setImmediate(r));
  }
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  // A crash now: what each store holds must restore (s2: its old baseline and the frames above it, no hole).
  const crashed = (backend: typeof s1Backend): Snapshot => snapshotStorage<GraphCheckpointRecord>(backend);
  const walNow = kvStorage<WALFrame>(walBackend, { codec: walFrameCodec });
  // s1 may hold a = 2 (unacknowledged, a state the graph had); here it is held back for s2, so it does not.
  expect({ s1: await restored(crashed(s1Backend), walNow), s2: await restored(crashed(s2Backend), walNow) }).toEqual({
    s1: { a: 1, b: 0 },
    s2: { a: 1, b: 0 },
  });
  release();
  await flushed;
  await h2.dispose();
  expect({ s1: await restored(crashed(s1Backend), walNow), s2: await restored(crashed(s2Backend), walNow) }).toEqual({
    s1: { a: 2, b: 0 },
    s2: { a: 2, b: 0 },
  });
});

describe("one live handle per graph and tier", () => {
  const tiers = (): { wal: Wal; s1: Snapshot; s2: Snapshot } => ({
    wal: kvStorage<WALFrame>(memoryBackend(), { codec: walFrameCodec }),
    s1: snapshotStorage<GraphCheckpointRecord>(memoryBackend()),
    s2: snapshotStorage<GraphCheckpointRecord>(memoryBackend()),
  });

  it("a second attach of the graph's name to a WAL tier a live handle holds throws; after dispose it attaches", async () => {
    const { wal, s1, s2 } = tiers();
    const h1 = attachSnapshotStorage(build(), [{ snapshot: s1, wal }]);
    // Another graph of the same name, another snapshot tier: its frames would go under the same WAL keys.
    expect(() => attachSnapshotStorage(build(), [{ snapshot: s2, wal }])).toThrow(
      expect.objectContaining({ code: "invalid-argument", details: expect.objectContaining({ graph: "g" }) }),
    );
    const other = createGraph("other");
    const h2 = attachSnapshotStorage(other, [{ snapshot: s2, wal }]); // another name: its own keys
    await h1.dispose();
    const h3 = attachSnapshotStorage(build(), [{ snapshot: s2, wal }]);
    await Promise.all([h2.dispose(), h3.dispose()]);
  });

  it("a second attach to a snapshot tier a live handle of the graph holds throws", async () => {
    const { s1 } = tiers();
    const h1 = attachSnapshotStorage(build(), [{ snapshot: s1 }]);
    expect(() => attachSnapshotStorage(build(), [{ snapshot: s1 }])).toThrow(expect.objectContaining({ code: "invalid-argument" }));
    await h1.dispose();
  });

  it("a snapshot tier given in two pairs throws (two baselines under one key)", () => {
    const { wal, s1 } = tiers();
    const wal2 = kvStorage<WALFrame>(memoryBackend(), { codec: walFrameCodec });
    expect(() => attachSnapshotStorage(build(), [{ snapshot: s1, wal }, { snapshot: s1, wal: wal2 }])).toThrow(
      expect.objectContaining({ code: "invalid-argument" }),
    );
    // Nothing stays claimed by the refused attach.
    return attachSnapshotStorage(build(), [{ snapshot: s1, wal }]).dispose();
  });
});

it("engine: pairs sharing a WAL tier are not folded in the background (a fold deletes frames another pair needs)", async () => {
  const one = { kind: "sqlite" as const, path: tmp.path("fold-one.db") };
  const two = { kind: "sqlite" as const, path: tmp.path("fold-two.db") };
  const engine = openStorageEngine({ threads: 1, onError: () => {} });
  const g = build();
  try {
    const wal = engine.kv<WALFrame>(one, { codec: walFrameCodec });
    const pairs = [
      { snapshot: engine.snapshot<GraphCheckpointRecord>(one), wal }, // one store: the actor could fold it
      // Its attach baseline only (a tier compactEvery): it needs every frame above it.
      { snapshot: engine.snapshot<GraphCheckpointRecord>(two, { compactEvery: 1_000_000 }), wal },
    ];
    const h = attachSnapshotStorage(g, pairs, { onError: () => {} });
    const pad = "x".repeat(1024);
    // ~400 KiB of frames: past the fold bound (2 × 64 KiB) several times over.
    for (let i = 0; i < 400; i++) {
      g.set(i % 2 === 0 ? "a" : "b", `${i}${pad}`);
      if (i % 50 === 49) await h.flush();
    }
    // A compaction a flush set off runs before the store's next op: flush twice.
    await h.flush();
    await h.flush();
    await h.dispose();
  } finally {
    await engine.close();
  }
  const b1 = sqliteBackend(one.path);
  const b2 = sqliteBackend(two.path);
  try {
    const wal = kvStorage<WALFrame>(b1, { codec: walFrameCodec });
    const live = { a: g.get("a"), b: g.get("b") };
    expect({ s1: await restored(snapshotStorage(b1), wal), s2: await restored(snapshotStorage(b2), wal) }).toEqual({ s1: live, s2: live });
  } finally {
    b1.close();
    b2.close();
  }
});
