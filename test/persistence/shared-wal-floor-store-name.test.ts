/**
 * Review r218 (c907fb3): a floor is published under floorStoreOfTier(the WAL tier's store) in the main thread and read
 * under floorStoreOfBackend(the actor's backend). For an engine store in a directory not created yet, reached through
 * a symbolic link, the two names differed: the main thread resolved its TierStore before the actor created the
 * directory (realFilePath threw, the id fell back to the connection, the name to the unresolved store key), and a
 * fold deleted the frames a live memory pair sharing the WAL needed. Now both sides name a store by storeRealPath.
 */
import { mkdirSync, realpathSync, symlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { storeRealPath } from "../../src/backend/store-place.js";
import { openBackend } from "../../src/engine/actor.js";
import { openStorageEngine } from "../../src/engine/index.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraphInEngine } from "../../src/persistence/compaction.js";
import { floorStoreOfBackend, floorStoreOfTier } from "../../src/persistence/shared-wal-floors.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { backendStoreId, tierStore } from "../../src/tier/store-identity.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { kvStorage } from "../../src/tier/kv.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { until } from "../support/wait.js";
import { storedSeqs } from "./fixtures/shared-wal.js";

const tmp = tempDir("r218-floor-link");
afterAll(() => tmp.remove());

/** `<tmp>/link-N` -> `<tmp>/real-N` (exists); the store goes under `link-N/tenant/` (not created yet). */
function linkedNewDir(): string {
  const real = tmp.path("real");
  mkdirSync(real, { recursive: true });
  const link = tmp.path("link");
  symlinkSync(real, link);
  return `${link}/tenant`;
}

describe("the floor's store name of an engine store in a new directory reached through a link", () => {
  for (const kind of ["sqlite", "file"] as const) {
    it(`${kind}: the main thread's name equals the actor's`, async () => {
      const dir = linkedNewDir();
      const spec: StoreSpec = kind === "sqlite" ? { kind, path: `${dir}/s.db` } : { kind, dir: `${dir}/store` };
      const engine = openStorageEngine({ threads: 1, onError: () => {} });
      try {
        const kv = engine.kv(spec, { name: "wal" });
        const mainName = floorStoreOfTier(tierStore(kv)!); // resolved now, as registerWalGroup resolves it at attach
        await kv.flush();
        const inActor = await openBackend(spec, "NORMAL");
        try {
          expect(mainName).toBe(floorStoreOfBackend(inActor));
        } finally {
          await inActor.close?.();
        }
      } finally {
        await engine.close();
      }
    }, 60_000);
  }

  for (const linked of [true, false]) it(`sqlite (${linked ? "through a link" : "control: no link"}): the store's fold (compactGraphInEngine) keeps the frames a live memory pair sharing its WAL needs`, async () => {
    const path = linked ? `${linkedNewDir()}/s.db` : `${tmp.path("plain")}/tenant/s.db`;
    const store: StoreSpec = { kind: "sqlite", path };
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    try {
      const g = createGraph("g");
      for (const p of ["a", "b"]) g.state(p, 0);
      const wal = engine.kv<WALFrame>(store, { codec: walFrameCodec });
      const h = attachSnapshotStorage(g, [
        { snapshot: engine.snapshot<GraphCheckpointRecord>(store, { compactEvery: 1_000_000 }), wal },
        // The memory store's baseline stays at its first: it restores from the WAL's frames above it.
        { snapshot: snapshotStorage<GraphCheckpointRecord>(memoryBackend(), { compactEvery: 1_000_000 }), wal },
      ]);
      for (let i = 1; i <= 100; i++) {
        g.set(i % 2 === 0 ? "a" : "b", i);
        if (i % 10 === 0) await h.flush();
      }
      const r = await compactGraphInEngine(engine, store, "g");
      expect(r.deletedFrames).toBe(0);
      const { frames, baseline } = storedSeqs(path);
      expect(baseline).toBeGreaterThan(1);
      // Live memory pair at baseline <= 1: every frame from 2 on must still be there.
      expect(frames.filter((s) => s >= 2).length).toBeGreaterThanOrEqual(99);
      await h.dispose();
    } finally {
      await engine.close();
    }
  }, 120_000);
});

describe("storeRealPath: the name a store will have is the name it has once created", () => {
  /** Asks for `path` before and after `create` makes the missing directories; both answers must be `expected`. */
  function sameBeforeAndAfter(path: string, create: string, expected: () => string): void {
    const before = storeRealPath(path);
    mkdirSync(create, { recursive: true });
    const after = storeRealPath(path);
    expect(before).toBe(after);
    expect(after).toBe(expected());
  }

  it("a file under new directories below a symbolic link", () => {
    const real = tmp.path("srp-real");
    mkdirSync(real, { recursive: true });
    const link = tmp.path("srp-link");
    symlinkSync(real, link);
    sameBeforeAndAfter(`${link}/a/b/s.db`, `${link}/a/b`, () => join(realpathSync(real), "a/b/s.db"));
  });

  it("a relative path, and `..` inside the part not created yet", () => {
    const base = tmp.path("srp-rel");
    mkdirSync(base, { recursive: true });
    const cwd = process.cwd();
    process.chdir(base);
    try {
      sameBeforeAndAfter("x/y/../z/s.db", "x/y", () => join(realpathSync(base), "x/z/s.db"));
    } finally {
      process.chdir(cwd);
    }
  });

  it("`..` after a symbolic link is the link target's parent (as the kernel takes it), not the link's", () => {
    const outer = tmp.path("srp-deep");
    const deep = join(outer, "inner");
    mkdirSync(deep, { recursive: true });
    const link = tmp.path("srp-up");
    symlinkSync(deep, link);
    sameBeforeAndAfter(`${link}/../new/s.db`, join(outer, "new"), () => join(realpathSync(outer), "new/s.db"));
  });

  it("a dangling link on the way leads to where its target will be created", () => {
    const target = tmp.path("srp-later");
    const link = tmp.path("srp-dangling");
    symlinkSync(target, link);
    sameBeforeAndAfter(`${link}/t/s.db`, `${target}/t`, () => join(realpathSync(tmp.dir), basename(target), "t/s.db"));
  });
});

describe("tiers of one store in a directory not created yet are one store", () => {
  for (const kind of ["sqlite", "file"] as const) {
    it(`${kind}: an engine tier asked before its directory exists, a later engine tier and an inline tier have one id`, async () => {
      let earlyId: string | object = "";
      const dir = linkedNewDir();
      const spec: StoreSpec = kind === "sqlite" ? { kind, path: `${dir}/s.db` } : { kind, dir: `${dir}/store` };
      const engine = openStorageEngine({ threads: 1, onError: () => {} });
      try {
        const early = engine.kv(spec, { name: "early" });
        earlyId = tierStore(early)!.id; // asked before the actor created the directory
        expect(typeof earlyId).toBe("string");
        await early.flush();
        const later = engine.kv(spec, { name: "later" });
        expect(tierStore(later)!.id).toBe(earlyId);
      } finally {
        await engine.close();
      }
      // The store's one writer is gone: an inline tier of it, through the same link, is the same store.
      const backend = kind === "sqlite" ? sqliteBackend(`${dir}/s.db`) : fileBackend(`${dir}/store`);
      try {
        expect(backendStoreId(backend)).toBe(earlyId);
        expect(tierStore(kvStorage(backend))!.id).toBe(earlyId);
      } finally {
        await backend.close?.();
      }
    }, 60_000);
  }
});
