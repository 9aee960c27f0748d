/**
 * An ended handle's ENGINE snapshot tier keeps its last baseline for a retry (its store failed) and retries it on its
 * own timer in the store's actor, while the next attach of the graph discards that key and writes its baseline
 * (task 283, the r264 leftover). The proxy's discard crosses to the actor unanswered, in call order with the new
 * handle's writes: the old tier's retry may run before it, beside it or after it, but the old baseline must never
 * land over the new one. Real engine and worker, a real file store whose writes fail with EIO while a marker file
 * sits beside its directory (src/backend/file-faults.ts); the old tiers retry every few milliseconds, and the store
 * heals at several points of the new attach, each tried a few times. The verdict reads the stored baseline itself (a
 * restore would hide an older baseline under the new handle's frames) and restores the graph.
 */
import { rmSync, writeFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { WRITE_FAULT_ENV } from "../../src/backend/file-faults.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { tempRoot } from "./fixtures/helpers.js";

const SUFFIX = ".fail-writes";
process.env[WRITE_FAULT_ENV] = SUFFIX; // before any engine starts: its workers copy process.env when made
const root = tempRoot("snapshot-discard-retry-order");
afterAll(() => root.remove());

/** The old tiers retry at once and often: their retries race the new attach. */
const fastRetry = { initialMs: 1, maxMs: 4 };

type Heal = "before the new attach" | "between the discard and the new baseline" | "right after attach returned";

let engine: StorageEngine;
beforeEach(() => void (engine = openStorageEngine({ threads: 1, onError: () => {} })));
afterEach(() => engine.close());

interface Verdict {
  acknowledged: boolean;
  /** Whether the stored baseline of "g" is the last one the new handle saved. */
  newest: boolean;
  /** Node `a` as a restore of the store gives it. */
  a: unknown;
}

/** One round over a fresh store: the new handle acknowledged a=100; what the store holds once the old tiers settled. */
async function round(heal: Heal): Promise<Verdict> {
  const dir = root.fresh("store");
  const marker = `${dir}${SUFFIX}`;
  const store = { kind: "file" as const, dir };
  let seq = 0;
  let saved: GraphCheckpointRecord | undefined;
  try {
    const old = {
      snapshot: engine.snapshot<GraphCheckpointRecord>(store, { name: "old", retry: fastRetry }),
      wal: engine.kv<WALFrame>(store, { name: "old-wal", codec: walFrameCodec, retry: fastRetry }),
    };
    const g0 = createGraph("g");
    g0.state("a", 0);
    const h0 = attachSnapshotStorage(g0, [old], { onError: () => {}, compactEvery: 1 });
    await h0.flush();
    writeFileSync(marker, "");
    for (let v = 1; v <= 5; v++) g0.set("a", v);
    await h0.dispose().catch(() => {}); // its last flush fails: its baseline (a=5) is kept, retried every few ms
    if (heal === "before the new attach") rmSync(marker);
    const g = createGraph("g");
    g.state("a", 0);
    // The attach discards the old tier's key (posted), then saves its own baseline through new tiers of the store.
    const fresh = {
      snapshot: engine.snapshot<GraphCheckpointRecord>(store, { name: "new" }),
      wal: engine.kv<WALFrame>(store, { name: "new-wal", codec: walFrameCodec }),
    };
    // The attach posts the discard, then saves its baseline: "between" heals there, as close as the API allows.
    const save = fresh.snapshot.save.bind(fresh.snapshot);
    fresh.snapshot.save = (r) => {
      if (heal === "between the discard and the new baseline") rmSync(marker, { force: true });
      saved = r;
      save(r);
    };
    const h = attachSnapshotStorage(g, [fresh], { onError: () => {} });
    if (heal === "right after attach returned") rmSync(marker);
    g.set("a", 100);
    seq = await h.flush();
    await h.dispose();
    // The old tiers write (or drop) what they kept, as their retry timers do meanwhile.
    await old.wal.flush().catch(() => {});
    await old.snapshot.flush().catch(() => {});
  } finally {
    rmSync(marker, { force: true });
  }
  const snapshot = engine.snapshot<GraphCheckpointRecord>(store, { name: "check" });
  const wal = engine.kv<WALFrame>(store, { name: "check-wal", codec: walFrameCodec });
  const stored = await snapshot.load("g");
  const r = createGraph("g");
  r.state("a", -1);
  let a: unknown;
  try {
    await restoreSnapshot(r, { snapshot, wal });
    a = r.get("a");
  } catch (err) {
    a = (err as { code?: unknown }).code ?? String(err);
  }
  return { acknowledged: seq > 0, newest: saved !== undefined && isDeepStrictEqual(stored, saved), a };
}

describe("engine: an ended handle's snapshot tier retrying while the next attach discards its baseline", () => {
  for (const heal of ["before the new attach", "between the discard and the new baseline", "right after attach returned"] as const) {
    it(`the old baseline never lands over the new one (store heals ${heal})`, async () => {
      const rounds: Verdict[] = [];
      for (let i = 0; i < 3; i++) rounds.push(await round(heal));
      expect(rounds).toEqual(Array(3).fill({ acknowledged: true, newest: true, a: 100 }));
    });
  }
});
