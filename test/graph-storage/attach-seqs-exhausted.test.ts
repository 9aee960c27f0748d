/**
 * Attach over a store whose seqs reached Number.MAX_SAFE_INTEGER (a baseline at 2^53 - 1, which another program can
 * write and restore reads). The attach baseline went in at 2^53 over the good one and the first flush resolved
 * 9007199254740992, an acknowledgement of a record every reader then refused (baseline-missing: seq must be a
 * non-negative integer); two seqs below the top, the frames past it failed every flush with walFrameKey's raw
 * RangeError. Now the pair refuses with StorageError("corrupt-store", reason "seqs-exhausted"): nothing acknowledged
 * that is not restorable, and the stored graph restores as it was.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { jsonCodec } from "../../src/codec/json.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import type { ReactiveGraph } from "../../src/graph/types.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { sqliteKv, sqliteSnapshot } from "../../src/tier/factories.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import { tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("seqs-exhausted");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

const TOP = Number.MAX_SAFE_INTEGER;

function build(): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", 0);
  g.state("b", 0);
  return g;
}

/** A store holding only graph g's baseline at `seq` (a = 7), written as another program would. */
function storeWithBaseline(seq: number): string {
  const path = root.fresh("s.db");
  const g = build();
  g.set("a", 7);
  const backend = sqliteBackend(path);
  backend.write("g", jsonCodec.encode({ name: "g", mode: "full", snapshot: g.snapshot(), seq, timestamp_ns: 1, format_version: 1 }));
  backend.close();
  return path;
}

type Mode = "inline" | "engine";

function pairOf(mode: Mode, path: string) {
  if (mode === "inline") return { snapshot: sqliteSnapshot<GraphCheckpointRecord>(path), wal: sqliteKv(path, { codec: walFrameCodec }) };
  engine ??= openStorageEngine({ threads: 1, onError: () => undefined });
  const store = { kind: "sqlite" as const, path };
  return { snapshot: engine.snapshot<GraphCheckpointRecord>(store), wal: engine.kv(store, { codec: walFrameCodec }) };
}

async function closePair(pair: ReturnType<typeof pairOf>): Promise<void> {
  await pair.snapshot.close().catch(() => undefined);
  await pair.wal.close().catch(() => undefined);
}

/** The seq and value of a that a fresh inline restore of the store gives, or the error's code. */
async function restored(path: string): Promise<string> {
  const pair = pairOf("inline", path);
  try {
    const g = build();
    const r = await restoreSnapshot(g, pair);
    return `seq ${r.finalSeq} a=${JSON.stringify(g.get("a"))}`;
  } catch (err) {
    return String((err as { code?: unknown }).code);
  } finally {
    await closePair(pair);
  }
}

const exhausted = { name: "StorageError", code: "corrupt-store", details: expect.objectContaining({ reason: "seqs-exhausted" }) };

describe.each<Mode>(["inline", "engine"])("attach over a store whose seqs reached 2^53 - 1 (%s)", (mode) => {
  it("a baseline at 2^53 - 1: the first flush rejects seqs-exhausted, the stored baseline restores as it was", async () => {
    const path = storeWithBaseline(TOP);
    expect(await restored(path)).toBe(`seq ${TOP} a=7`);
    const errors: unknown[] = [];
    const pair = pairOf(mode, path);
    const g = build();
    const handle = attachSnapshotStorage(g, [pair], { onError: (e) => void errors.push(e) });
    try {
      await expect(handle.flush()).rejects.toMatchObject(exhausted);
      g.set("a", 8);
      await expect(handle.flush()).rejects.toMatchObject(exhausted);
      expect(errors[0]).toMatchObject(exhausted);
    } finally {
      handle.dispose();
      await closePair(pair);
    }
    expect(await restored(path)).toBe(`seq ${TOP} a=7`);
  });

  it("a baseline two seqs below: the attach baseline is stored, the wave past the top rejects seqs-exhausted", async () => {
    const path = storeWithBaseline(TOP - 2);
    const errors: unknown[] = [];
    const pair = pairOf(mode, path);
    const g = build();
    const handle = attachSnapshotStorage(g, [pair], { onError: (e) => void errors.push(e) });
    try {
      expect(await handle.flush()).toBe(TOP - 1);
      g.batch(() => {
        g.set("a", 8);
        g.set("b", 9);
      });
      await expect(handle.flush()).rejects.toMatchObject(exhausted);
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) expect(e).toMatchObject(exhausted);
    } finally {
      handle.dispose();
      await closePair(pair);
    }
    // The attach baseline (the graph as restore left it: a = 0 here, the code's value) is what was acknowledged.
    expect(await restored(path)).toBe(`seq ${TOP - 1} a=0`);
  });
});
