/**
 * One backend is one key space (docs/design.md §3.27): graph "a"'s baseline is key "a", its frames
 * "a/wal/<20 digits>". A graph NAMED like one of those frame keys stored its baseline there, overwriting graph "a"'s
 * acknowledged frame (restore of "a" then failed mid-stream, or silently skipped it as a torn tail). Such names are
 * refused wherever a graph name enters (StorageError `invalid-name`); a store another writer already left so is read
 * without corrupting it: a frame key holding a graph's baseline stops readers with StorageError `corrupt-store`,
 * never a skipped tail, and compaction deletes nothing. Real backends: a SQLite file and a file-backend directory.
 */
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { jsonCodec } from "../../src/codec/json.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage, createGraph, followGraph, restoreSnapshot, type GraphCheckpointRecord } from "../../src/index.js";
import { compactGraph, compactGraphInEngine } from "../../src/persistence/compaction.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { graphWalPrefix, walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { syncErrorOf } from "../support/wait.js";
import { tempDir } from "../graph-compaction/fixtures.js";

const tmp = tempDir("name-collisions");
afterAll(() => tmp.remove());

type Kind = "sqlite" | "file";
let count = 0;
function open(kind: Kind, readOnly = false, at?: string): { backend: StorageBackend; path: string } {
  const path = at ?? tmp.path(`${kind}-${++count}${kind === "sqlite" ? ".db" : ""}`);
  const backend = kind === "sqlite" ? sqliteBackend(path, readOnly ? { readOnly: true } : {}) : fileBackend(path, readOnly ? { readOnly: true } : {});
  return { backend, path };
}

function tiers(backend: StorageBackend) {
  return {
    snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
    wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }),
  };
}

/** Graph "a" with n = 1, 2, 3 acknowledged (frames 2..4 above its attach baseline at 1). */
async function storeWithA(backend: StorageBackend): Promise<number[]> {
  const a = createGraph("a");
  a.state("n", 0);
  const handle = attachSnapshotStorage(a, [tiers(backend)], { compactEvery: Number.POSITIVE_INFINITY });
  await handle.flush();
  for (let i = 1; i <= 3; i++) {
    a.set("n", i);
    await handle.flush();
  }
  await handle.dispose();
  const prefix = graphWalPrefix("a");
  return (await backend.list!(`${prefix}/`)).map((k) => Number(k.slice(prefix.length + 1)));
}

async function restoredN(backend: StorageBackend): Promise<unknown> {
  const a = createGraph("a");
  a.state("n", 0);
  await restoreSnapshot(a, tiers(backend));
  return a.get("n");
}

const KINDS: readonly Kind[] = ["sqlite", "file"];

describe.each(KINDS)("a graph named like another graph's frame key (%s)", (kind) => {
  it.each(["mid-stream", "tail"])("is refused at attach; graph a keeps its acknowledged %s frame", async (where) => {
    const { backend } = open(kind);
    const seqs = await storeWithA(backend);
    expect(seqs).toEqual([2, 3, 4]);
    const name = walFrameKey(graphWalPrefix("a"), where === "tail" ? 4 : 3);
    const evil = createGraph(name);
    evil.state("x", 42);
    const err = syncErrorOf(() => attachSnapshotStorage(evil, [tiers(backend)]));
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("invalid-name");
    expect((err as StorageError).details.graph).toBe(name);
    expect(await restoredN(backend)).toBe(3);
    backend.close?.();
  });

  it("restore, follow and compactGraph refuse such a name, on read-only handles too", async () => {
    const { backend, path } = open(kind);
    await storeWithA(backend);
    backend.close?.();
    const name = walFrameKey(graphWalPrefix("a"), 2);
    const ro = open(kind, true, path).backend;
    const g = createGraph(name);
    const codeOf = (e: unknown) => (e as StorageError).code;
    expect(codeOf(await restoreSnapshot(g, tiers(ro)).catch((e: unknown) => e))).toBe("invalid-name");
    expect(codeOf(await followGraph(g, tiers(ro)).catch((e: unknown) => e))).toBe("invalid-name");
    ro.close?.();
    const rw = open(kind, false, path).backend;
    expect(codeOf(await compactGraph({ backend: rw }, { graphName: name }).catch((e: unknown) => e))).toBe("invalid-name");
    expect(await restoredN(rw)).toBe(3);
    rw.close?.();
  });
});

/** A store another writer left with graph "a/wal/<frame key>"'s baseline over graph a's frame `seq`. */
async function collidedStore(kind: Kind, seq: number): Promise<{ backend: StorageBackend; key: string; record: Uint8Array }> {
  const { backend } = open(kind);
  await storeWithA(backend);
  const key = walFrameKey(graphWalPrefix("a"), seq);
  const record = jsonCodec.encode({
    format_version: 1,
    mode: "full",
    name: key,
    seq: 1,
    snapshot: { edges: [], name: key, nodes: {}, subgraphs: [], version: 1 },
    timestamp_ns: 0,
  });
  backend.write(key, record);
  return { backend, key, record };
}

describe.each(KINDS)("a store that already holds a graph's baseline at a frame key (%s)", (kind) => {
  it.each([3, 4])("restore of a stops with corrupt-store at frame %i (the tail is not skipped)", async (seq) => {
    const { backend, key } = await collidedStore(kind, seq);
    const err = await restoredN(backend).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("corrupt-store");
    expect((err as StorageError).details).toMatchObject({ key, seq });
    backend.close?.();
  });

  it("followGraph of a stops with corrupt-store", async () => {
    const { backend } = await collidedStore(kind, 4);
    const a = createGraph("a");
    a.state("n", 0);
    const err = await followGraph(a, tiers(backend)).catch((e: unknown) => e);
    expect((err as StorageError).code).toBe("corrupt-store");
    backend.close?.();
  });

  it("compaction of a, with a baseline above that key, deletes nothing (the record stays)", async () => {
    const { backend, key, record } = await collidedStore(kind, 2);
    // A baseline of a at seq 4 (what a later writer stores): key a/wal/…02 is then below it, one compaction deletes.
    const stored = jsonCodec.decode(backend.read("a") as Uint8Array) as GraphCheckpointRecord;
    const a = createGraph("a");
    a.state("n", 3);
    backend.write("a", jsonCodec.encode({ ...stored, seq: 4, snapshot: a.snapshot() }));
    const before = await backend.list!("a/wal/");
    const err = await compactGraph({ backend }, { graphName: "a" }).catch((e: unknown) => e);
    expect((err as StorageError).code).toBe("corrupt-store");
    expect((err as StorageError).details).toMatchObject({ key });
    expect(await backend.list!("a/wal/")).toEqual(before);
    expect(backend.read(key)).toEqual(record);
    backend.close?.();
  });
});

describe("through an engine store (SQLite): the actor's reading and its compaction job", () => {
  it("restore through engine proxies stops with corrupt-store; compactGraphInEngine refuses the name", async () => {
    const path = tmp.path("engine.db");
    const { backend } = open("sqlite", false, path);
    await storeWithA(backend);
    const key = walFrameKey(graphWalPrefix("a"), 4);
    backend.write(key, jsonCodec.encode({ format_version: 1, mode: "full", name: key, seq: 1, snapshot: {}, timestamp_ns: 0 }));
    backend.close?.();
    const e = openStorageEngine({ threads: 1 });
    try {
      const store = { kind: "sqlite" as const, path };
      const a = createGraph("a");
      a.state("n", 0);
      const pair = { snapshot: e.snapshot<GraphCheckpointRecord>(store), wal: e.kv<WALFrame>(store, { codec: walFrameCodec }) };
      const err = await restoreSnapshot(a, pair).catch((x: unknown) => x);
      expect((err as StorageError).code).toBe("corrupt-store");
      expect((err as StorageError).details).toMatchObject({ key });
      const job = await compactGraphInEngine(e, store, key).catch((x: unknown) => x);
      expect(job).toBeInstanceOf(StorageError);
      expect((job as StorageError).code).toBe("invalid-name");
    } finally {
      await e.close();
    }
  });
});
