/**
 * A refused frame stops its pair, which deletes every frame it numbered past the gap (DESIGN §3.16). A delete that
 * failed there (a sick disk: EIO) was ignored: the frame above the gap stayed, and every restore failed with wal-gap,
 * so the acknowledged state could not be restored. Failed deletes are now reported and retried until they succeed.
 * Real SQLite; the disk's failure is injected by the faulty-backend wrapper.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage, createGraph, restoreSnapshot, type GraphCheckpointRecord, type ReactiveGraph } from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { graphWalPrefix, parseWalFrameKey, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { faultyBackend } from "../support/faulty-backend.js";
import { refusingBadFrames } from "../support/refusals.js";
import { errorOf, until } from "../support/wait.js";

const tmp = mkdtempSync(join(tmpdir(), "grf-attach-gap-delete-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

function build(): ReactiveGraph {
  const g = createGraph("g");
  g.state("a", 0);
  g.state("b", 0);
  return g;
}

describe("frames above a refused frame whose delete failed", () => {
  it("are deleted again: restore gives the acknowledged state, not wal-gap; onError hears it once", async () => {
    const inner = sqliteBackend(join(tmp, "store.db"));
    cleanups.push(() => inner.close());
    // The first two deletes of WAL frames fail: the pair's deletes of frames 3 (never stored) and 4 (stored).
    const backend = faultyBackend(inner, [{ op: "delete", errno: "EIO", times: 2, key: /^g\/wal\// }]);
    const env = {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
      wal: kvStorage<WALFrame>(backend, { name: "wal", codec: refusingBadFrames, debounceMs: 60_000 }),
    };
    const stored = async (): Promise<number[]> =>
      (await env.wal.list(`${graphWalPrefix("g")}/`)).map((k) => parseWalFrameKey(graphWalPrefix("g"), k)!);
    const g = build();
    const errors: unknown[] = [];
    const h = attachSnapshotStorage(g, [env], { compactEvery: Number.POSITIVE_INFINITY, onError: (e) => errors.push(e) });
    cleanups.push(() => h.dispose());
    g.set("a", 1); // frame 2
    expect(await h.flush()).toBe(2);
    const acknowledged = g.snapshot();

    g.set("a", "bad"); // frame 3: the WAL codec refuses it
    g.set("b", 1); // frame 4: written by the same flush, deleted by the stop
    const err = (await errorOf(() => h.flush())) as StorageError;
    expect(err).toMatchObject({ code: "write-refused", details: { seq: 3 } });
    const frameKey = (seq: number): string => walFrameKey(graphWalPrefix("g"), seq);
    expect(backend.failures.map((f) => f.keys)).toEqual(expect.arrayContaining([[frameKey(4)]]));

    await until(async () => (await stored()).join() === "2", "the frame above the gap is deleted");
    const restored = build();
    await restoreSnapshot(restored, env);
    expect(restored.snapshot()).toEqual(acknowledged);

    const undeleted = errors.filter((e) => e !== err);
    expect(errors).toContain(err);
    expect(undeleted).toHaveLength(1);
    expect(undeleted[0]).toMatchObject({ code: "backend-error", details: { graph: "g", seq: 3, key: frameKey(3), keys: 2 } });
    expect((undeleted[0] as Error).message).toMatch(/could not be deleted .*a restore fails with wal-gap at seq 3/);
  });
});
