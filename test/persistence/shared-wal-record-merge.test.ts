/**
 * A forget's rewrite of the shared-WAL record (docs/design.md §3.10, "Forgotten stays forgotten") must not drop an
 * attach's record save that a failed flush put back for a retry. The interleaving, with real stores (a SQLite file,
 * a file store) and one backend object shared by the attach's tiers and the inline forget, as in one process:
 * 1. session one: pairs {one, W}, {two, W} (W the WAL tier on store one) write and dispose; the record names two;
 * 2. session two: pairs {one, W}, {three, W}; every write of the record naming three fails (the disk refuses it:
 *    EIO), so the record the attach saves (three at 0, then at its attach baseline) is put back for a retry, again
 *    and again, while store two's record stays stored;
 * 3. a forget of store two (forced: its handle named it a moment ago) rewrites the stored record to name no store.
 *    Its landing made the write lane drop every older put-back value of the key: the attach's record was never
 *    written, and the session's frames landed with a record that does not name three (permanently, as three's
 *    baseline did not move again);
 * 4. the disk heals, the session writes on and disposes; a compaction (inline, or the CLI's `compact`) then
 *    deleted every frame above three's baseline, and three restored its attach state without a word.
 * Through an engine's store actor (the control, passing before and after) the forget's job flushes every tier of the
 * store first and holds the mailbox until its rewrite: it fails with the refused save's error, nothing changed.
 */
import { realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { markOnDiskStore } from "../../src/backend/on-disk.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { BatchOp, ExpectedValue, StorageBackend } from "../../src/backend/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import { compactGraph, compactGraphInEngine } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { parseSharedWalRecordAll, sharedWalRecordKey, type SharedWalRecord } from "../../src/persistence/shared-wal-record.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { parseWalFrameKey } from "../../src/wal/keys.js";
import { requireBuiltBin, runCli } from "../cli/fixtures/cli.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { systemError } from "../support/faulty-backend.js";
import { build } from "./fixtures/shared-wal.js";
import type { ReactiveGraph } from "../../src/graph/types.js";

const tmp = tempDir("shared-wal-record-merge");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

type Kind = "sqlite" | "file";
const RECORD = sharedWalRecordKey("g");

function open(kind: Kind, path: string): StorageBackend {
  return kind === "sqlite" ? sqliteBackend(path) : fileBackend(path);
}

/** The lasting id the record names a store by (src/tier/store-identity.ts). */
function idOf(kind: Kind, path: string): string {
  return `${kind}:${join(realpathSync(dirname(path)), basename(path))}`; // the store may not exist yet
}

/** Runs `body` with a backend of the store at `path`, closed after. */
async function withStore<T>(kind: Kind, path: string, body: (b: StorageBackend) => Promise<T> | T): Promise<T> {
  const b = open(kind, path);
  try {
    return await body(b);
  } finally {
    await b.close?.();
  }
}

/** The record stored for g at `path` (undefined: none). */
function storedRecord(kind: Kind, path: string): Promise<SharedWalRecord | undefined> {
  return withStore(kind, path, async (b) => parseSharedWalRecordAll("g", (await b.read(RECORD)) ?? undefined));
}

/** Stored baseline seq and frame seqs of g at `path`. */
function storedSeqs(kind: Kind, path: string): Promise<{ baseline: number | undefined; frames: number[] }> {
  return withStore(kind, path, async (b) => {
    const raw = await b.read("g");
    const baseline = raw === undefined ? undefined : (JSON.parse(Buffer.from(raw).toString("utf8")) as { seq: number }).seq;
    const frames = (await b.list!("g/wal/")).map((k) => parseWalFrameKey("g/wal", k)).filter((s): s is number => s !== undefined);
    return { baseline, frames };
  });
}

/** Restores g through `snapshotPath`'s baseline and `walPath`'s frames: the values, or the error's code. */
async function restoredFrom(kind: Kind, snapshotPath: string, walPath: string): Promise<unknown> {
  const bs = open(kind, snapshotPath);
  const bw = open(kind, walPath);
  const g = build();
  try {
    await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(bs), wal: kvStorage<WALFrame>(bw, { codec: walFrameCodec }) });
    return { a: g.get("a"), b: g.get("b") };
  } catch (err) {
    return `${(err as { code?: string }).code}: ${(err as Error).message.slice(0, 100)}`;
  } finally {
    await bs.close?.();
    await bw.close?.();
  }
}

/**
 * `inner` (a SQLite or file backend) as one object whose writes of the record naming store `refusedId` fail with
 * EIO while `armed` (every other call passes through): a disk that refuses those writes and no other. Marked as the
 * store on disk it is (its tiers name the store by the file's path, as the inner backend's would).
 */
function recordRefusing(inner: StorageBackend, refusedId: string): { backend: StorageBackend; arm(on: boolean): void; lastRefused(): SharedWalRecord | undefined } {
  let armed = false;
  let last: SharedWalRecord | undefined;
  const refuse = (ops: readonly BatchOp[]): void => {
    if (!armed) return;
    for (const op of ops) {
      if (op.op !== "put" || op.key !== RECORD) continue;
      const record = parseSharedWalRecordAll("g", op.value);
      if (record?.stores.has(refusedId) !== true) continue;
      last = record;
      throw systemError("EIO", "writeBatch", op.key);
    }
  };
  const backend: StorageBackend = {
    name: inner.name,
    supports: { ...inner.supports, readPrefix: false, sizes: false },
    read: (key) => inner.read(key),
    write: (key, value) => {
      refuse([{ op: "put", key, value }]);
      return inner.write(key, value);
    },
    delete: (key) => inner.delete!(key),
    list: (prefix) => inner.list!(prefix),
    writeBatch: (ops) => {
      refuse(ops);
      return inner.writeBatch!(ops);
    },
    writeBatchIf: (expected: ExpectedValue, ops: readonly BatchOp[]) => {
      refuse(ops);
      return inner.writeBatchIf!(expected, ops);
    },
    close: () => inner.close?.(),
  };
  markOnDiskStore(backend);
  return { backend, arm: (on) => void (armed = on), lastRefused: () => last };
}

/** Session one: pairs {one, W}, {two, W} set a and b 1..100, flushing every 10, and dispose. */
async function sessionOne(kind: Kind, one: string, two: string): Promise<void> {
  const b1 = open(kind, one);
  const b2 = open(kind, two);
  try {
    const g = build();
    const wal = kvStorage<WALFrame>(b1, { codec: walFrameCodec });
    const h = attachSnapshotStorage(g, [
      { snapshot: snapshotStorage<GraphCheckpointRecord>(b1, { compactEvery: 1_000_000 }), wal },
      { snapshot: snapshotStorage<GraphCheckpointRecord>(b2, { compactEvery: 30 }), wal },
    ]);
    for (let i = 1; i <= 100; i++) {
      g.set(i % 2 === 0 ? "a" : "b", i);
      if (i % 10 === 0) await h.flush();
    }
    await h.dispose();
  } finally {
    await b1.close?.();
    await b2.close?.();
  }
}

/**
 * Sets a and b ten times (values 101..110) through `h`, then flushes until store three's attach baseline is stored
 * (above 100) and `refusedSeq` (the seq the last refused record names three at) is that baseline: the record save
 * naming it was refused and put back for a retry.
 */
async function writeUntilRefused(
  g: ReactiveGraph,
  h: { flush(): Promise<unknown> },
  kind: Kind,
  three: string,
  refusedSeq: () => Promise<number | undefined>,
): Promise<void> {
  for (let i = 101; i <= 110; i++) g.set(i % 2 === 0 ? "a" : "b", i);
  await vi.waitFor(
    async () => {
      await h.flush().catch(() => {});
      const threeSeq = (await storedSeqs(kind, three)).baseline;
      expect(threeSeq).toBeGreaterThan(100);
      expect(await refusedSeq()).toBe(threeSeq);
    },
    { timeout: 60_000, interval: 50 },
  );
}

/**
 * Session two (steps 2-4 above): pairs {one, W}, {three, W} over store one's backend `w`, restored from store one;
 * resolves to the live values once it disposed.
 */
async function sessionTwo(kind: Kind, one: string, two: string, three: string): Promise<{ a: unknown; b: unknown }> {
  const inner = open(kind, one);
  const b3 = open(kind, three);
  const w = recordRefusing(inner, idOf(kind, three));
  try {
    const g = build();
    const wal = kvStorage<WALFrame>(w.backend, { codec: walFrameCodec });
    await restoreSnapshot(g, { snapshot: snapshotStorage<GraphCheckpointRecord>(w.backend), wal });
    w.arm(true);
    const h = attachSnapshotStorage(g, [
      { snapshot: snapshotStorage<GraphCheckpointRecord>(w.backend, { compactEvery: 1_000_000 }), wal },
      { snapshot: snapshotStorage<GraphCheckpointRecord>(b3, { compactEvery: 1_000_000 }), wal },
    ]);
    // The record naming three at its attach baseline (saved once that baseline is stored) refused and put back.
    await writeUntilRefused(g, h, kind, three, async () => w.lastRefused()?.stores.get(idOf(kind, three)));
    expect([...((await storedRecord(kind, one))?.stores.keys() ?? [])]).toEqual([idOf(kind, two)]);
    // The forget of store two, through the same backend object (one process): accepted, the record rewritten.
    await compactGraph({ backend: w.backend }, { graphName: "g", forgetStores: [idOf(kind, two)], forceForget: true });
    expect((await storedRecord(kind, one))?.stores.size).toBe(0);
    w.arm(false);
    for (let i = 111; i <= 120; i++) g.set(i % 2 === 0 ? "a" : "b", i);
    await h.flush();
    await h.dispose();
    return { a: g.get("a"), b: g.get("b") };
  } finally {
    await inner.close?.();
    await b3.close?.();
  }
}

describe.each<Kind>(["sqlite", "file"])("%s: an attach's put-back record save and a forget's rewrite", (kind) => {
  const path = (name: string): string => tmp.path(kind === "sqlite" ? `${name}.db` : name);

  it("the put-back save lands after the forget: the record names store three, whose frames a later compaction keeps", async () => {
    const [one, two, three] = [path("inline-one"), path("inline-two"), path("inline-three")];
    await sessionOne(kind, one, two);
    const live = await sessionTwo(kind, one, two, three);
    const threeSeq = (await storedSeqs(kind, three)).baseline as number;
    const record = await storedRecord(kind, one);
    // Before: { stores: {} } — the attach's record was dropped unwritten and never saved again.
    expect([...(record?.stores.keys() ?? [])]).toEqual([idOf(kind, three)]);
    expect(record?.stores.get(idOf(kind, three))).toBeLessThanOrEqual(threeSeq);
    expect(record?.forgotten.has(idOf(kind, two))).toBe(true);
    expect(record?.seen.has(idOf(kind, three))).toBe(true);
    await withStore(kind, one, (b) => compactGraph({ backend: b }, { graphName: "g" }));
    expect((await storedSeqs(kind, one)).frames.filter((s) => s > threeSeq).length).toBeGreaterThan(0);
    // Before: store three's attach state ({a: 110, b: 109}), the frames above its baseline deleted.
    expect(await restoredFrom(kind, three, one)).toEqual(live);
    expect(await restoredFrom(kind, one, one)).toEqual(live);
  }, 180_000);

  it("the CLI's compact after the session keeps what store three needs", async () => {
    const [one, two, three] = [path("cli-one"), path("cli-two"), path("cli-three")];
    await sessionOne(kind, one, two);
    const live = await sessionTwo(kind, one, two, three);
    const r = runCli(["compact", one, "--graph", "g", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const pins = (JSON.parse(r.stdout) as { sharedWalPins?: Array<{ store: string }> }).sharedWalPins ?? [];
    // Before: no pin, every frame deleted.
    expect(pins.map((p) => p.store)).toEqual([idOf(kind, three)]);
    expect(await restoredFrom(kind, three, one)).toEqual(live);
  }, 180_000);
});

const RECORD_REFUSING_WORKER = fileURLToPath(new URL("./fixtures/record-refusing-worker.mjs", import.meta.url));

describe("engine tiers (a real store actor): an attach's put-back record save and a forget in the actor (control)", () => {
  it("compactGraphInEngine's forget fails while the save is refused (the job flushes the store first); nothing is lost", async () => {
    const kind: Kind = "sqlite";
    const [one, two, three] = [tmp.path("engine-one.db"), tmp.path("engine-two.db"), tmp.path("engine-three.db")];
    await sessionOne(kind, one, two);
    const access = openStorageEngineForTests({ threads: 1, onError: () => {} }, RECORD_REFUSING_WORKER);
    const e = access.engine;
    const store: StoreSpec = { kind: "sqlite", path: one };
    let live: { a: unknown; b: unknown };
    try {
      // The actor's backend refuses every write of the record naming three (EIO), the tiers' and the job's alike.
      await e.runJob(store, "test-refuse-records", { graphName: "g", naming: idOf(kind, three) });
      const g = build();
      const wal = e.kv<WALFrame>(store, { codec: walFrameCodec });
      const h = attachSnapshotStorage(g, [
        { snapshot: e.snapshot<GraphCheckpointRecord>(store, { compactEvery: 1_000_000 }), wal },
        { snapshot: e.snapshot<GraphCheckpointRecord>({ kind: "sqlite", path: three }, { compactEvery: 1_000_000 }), wal },
      ]);
      await writeUntilRefused(g, h, kind, three, async () => {
        const refused = (await e.runJob(store, "test-last-refused", {})) as Record<string, number> | null;
        return refused?.[idOf(kind, three)];
      });
      // In the actor the job flushes every tier of the store first (flushAll) and holds the mailbox until its
      // rewrite: the put-back save lands first, or (here) the job fails with its error, nothing changed.
      const err = await compactGraphInEngine(e, store, "g", { forgetStores: [idOf(kind, two)], forceForget: true }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(err).toMatchObject({ code: "backend-error" });
      expect([...((await storedRecord(kind, one))?.stores.keys() ?? [])]).toEqual([idOf(kind, two)]);
      await e.runJob(store, "test-accept-records", {});
      for (let i = 111; i <= 120; i++) g.set(i % 2 === 0 ? "a" : "b", i);
      await h.flush();
      await h.dispose();
      live = { a: g.get("a"), b: g.get("b") };
    } finally {
      await e.runJob(store, "test-accept-records", {}).catch(() => {});
      await e.close();
    }
    expect([...((await storedRecord(kind, one))?.stores.keys() ?? [])]).toEqual([idOf(kind, three)]);
    await withStore(kind, one, (b) => compactGraph({ backend: b }, { graphName: "g" }));
    expect(await restoredFrom(kind, three, one)).toEqual(live);
  }, 180_000);
});
