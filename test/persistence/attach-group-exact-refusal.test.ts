/**
 * A WAL group (two snapshot tiers, one WAL tier) whose WAL refused a save when it was handed (a codec that cannot
 * encode a value): the refused seq is known exactly and nothing of it reached the store, as for a single pair, which
 * deletes nothing. The group's stop deleted from the refused seq + 1 over every member's seqs, and told onError a
 * false "could not be deleted ... wal-gap at seq 4" when the deletes failed (review r329 F1, task 334): now the group
 * deletes nothing either, and onError hears the stops alone. The memory backend; the WAL wrapper encodes each frame
 * on save (as a tier whose codec runs on the caller's thread) and its deletes fail, so any delete tried is seen.
 */
import { expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { StorageError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { refusingBadFrames } from "../support/refusals.js";
import { settledTo } from "../support/settled.js";

/** `inner`, whose saves encode each frame first (throwing for "bad") and whose deletes reject; `deletes` lists them. */
function refusingWal(inner: KvStorageTier<WALFrame>, deletes: string[]): KvStorageTier<WALFrame> {
  const encode = (frame: WALFrame): void => void refusingBadFrames.encode(frame);
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === "save") {
        return (key: string, frame: WALFrame) => {
          encode(frame);
          target.save(key, frame);
        };
      }
      if (prop === "saveMany") {
        return (entries: ReadonlyArray<readonly [string, WALFrame]>) => {
          for (const [, frame] of entries) encode(frame);
          target.saveMany!(entries);
        };
      }
      if (prop === "delete") {
        return (key: string) => {
          deletes.push(key);
          return Promise.reject(new StorageError("backend-error", `cannot delete ${key}`));
        };
      }
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

it("a WAL group's frames refused when handed: no delete is tried, onError hears no false wal-gap, the stores restore the last acknowledged wave", async () => {
  const walBackend = memoryBackend();
  const snapBackends = [memoryBackend(), memoryBackend()];
  const deletes: string[] = [];
  const wal = refusingWal(kvStorage<WALFrame>(walBackend, { codec: walFrameCodec }), deletes);
  const g = createGraph("g");
  g.state("a", 0);
  g.state("b", "");
  const heard: unknown[] = [];
  const pairs = snapBackends.map((b) => ({ snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal }));
  const h = attachSnapshotStorage(g, pairs, { onError: (e) => void heard.push(e) });
  g.set("a", 1);
  const acked = await h.flush();
  g.batch(() => {
    g.set("a", 2);
    g.set("b", "bad"); // this wave's frames cannot be encoded: refused when handed to the WAL tier
  });
  const err = await settledTo(h.flush());
  expect(err).toMatchObject({ code: "write-refused", details: { seq: acked + 1 } });
  // Before: the group's stop deleted from seq acked + 2 on (frames never saved) and told "could not be deleted".
  expect(deletes).toEqual([]);
  expect(heard.filter((e) => /could not be deleted|wal-gap/.test((e as Error).message))).toEqual([]);
  for (const e of heard) expect(e).toMatchObject({ code: "write-refused", details: { seq: acked + 1 } });
  await h.dispose().catch(() => undefined);
  for (const b of snapBackends) {
    const r = createGraph("g");
    r.state("a", -1);
    r.state("b", "");
    await restoreSnapshot(r, { snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal: kvStorage<WALFrame>(walBackend, { codec: walFrameCodec }) });
    expect([r.get("a"), r.get("b")]).toEqual([1, ""]);
  }
});
