/**
 * An attached graph goes on by itself after its engine's store worker was lost (task 390), with real worker deaths
 * (test/support/faults.ts: "terminate" from the main thread, "exit" and "throw" inside the worker, a "hang" ended by
 * the engine's watchdog), and no handle.rebaseline() call anywhere:
 * - after each kind of death that took writes of the pair, later changes are acknowledged by flush() and a fresh
 *   restore equals the graph at the acknowledged seq; a flush that fails names the lost worker (worker-crashed, or
 *   the watchdog's worker-unresponsive), never a write "refused for good";
 * - a worker killed again and again as it revives, then left alone: the handle recovers the same way;
 * - two pairs sharing one WAL tier (a WAL group): both resume, each restores to the graph.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, it } from "vitest";
import type { StoreSpec } from "../../src/engine/index.js";
import { openFaultEngine, type FaultEngine, type FaultKind } from "../support/faults.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage, createGraph, restoreSnapshot } from "../../src/index.js";
import type { AttachPair, GraphCheckpointRecord, ReactiveGraph, StorageHandle } from "../../src/index.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { assertBuilt, prng, sleep, tempDir, type TempDir } from "./fixtures/crash-harness.js";
import { buildGraph, digestOf, randomWave } from "./fixtures/graph-crash-model.mjs";

let tmp: TempDir;
beforeAll(() => {
  assertBuilt();
  tmp = tempDir("worker-death-resume");
});
afterAll(() => tmp.remove());

const LOST_CODES = new Set(["worker-crashed", "worker-unresponsive"]);
const lostWorker = (e: unknown): boolean => e instanceof StorageError && LOST_CODES.has(e.code);

/** A stop of the pair heard by its onError (a loss that took writes of the pair), whatever its wording. */
const pairStopped = (e: Error): boolean => e instanceof StorageError && typeof e.details.graph === "string" && typeof e.details.seq === "number";

type Pair = AttachPair & { wal: KvStorageTier<WALFrame> };

/** One pair in `spec`'s store, or a WAL group: the WAL in `spec`'s store, each snapshot tier in a store of its own. */
function pairsOf(e: FaultEngine, spec: StoreSpec & { kind: "sqlite" }, snapshots: readonly string[]): Pair[] {
  const wal = e.kv<WALFrame>(spec, { name: "wal", codec: walFrameCodec });
  return snapshots.map((name) => {
    const store: StoreSpec = snapshots.length === 1 ? spec : { kind: "sqlite", path: spec.path.replace(/\.db$/, `-${name}.db`) };
    return { snapshot: e.snapshot<GraphCheckpointRecord>(store, { name }), wal };
  });
}

/**
 * Waves with flushes in flight until a death injected after a few acknowledgements stopped a pair (its onError
 * heard it). Returns the failures of the flushes in flight; every one must name the lost worker.
 */
async function untilLoss(e: FaultEngine, spec: StoreSpec, graph: ReactiveGraph, handle: StorageHandle, heard: Error[], death: FaultKind, seed: number): Promise<unknown[]> {
  const rnd = prng(seed);
  const failures: unknown[] = [];
  for (let round = 0; round < 20 && !heard.some(pairStopped); round++) {
    let acks = 0;
    let killed: Promise<void> | undefined;
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < 400 && !heard.some(pairStopped); i++) {
      randomWave(graph, rnd);
      inFlight.push(handle.flush().then(() => void acks++, (err: unknown) => void failures.push(err)));
      // A fault sent as the worker dies of an earlier one is lost with it (rejects worker-crashed): that death counts.
      if (killed === undefined && acks >= 3) killed = e.injectFault(spec, death).catch((err: unknown) => void failures.push(err));
      await (inFlight.length % 4 === 0 ? Promise.race(inFlight.slice(-4)) : sleep(1));
    }
    await killed;
    await Promise.all(inFlight);
  }
  return failures;
}

/** flush() until it acknowledges (each failure must name the lost worker): the handle resumed by itself. */
async function flushUntilAcked(handle: StorageHandle, failures: unknown[]): Promise<number> {
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      return await handle.flush();
    } catch (err) {
      failures.push(err);
      await sleep(250);
    }
  }
  throw new Error(`flush() never acknowledged after the worker's death: last failure ${String(failures[failures.length - 1])}`);
}

/** Restores every pair into a fresh graph: each equals `want` at a seq at or above `acked`. */
async function expectRestored(pairs: readonly Pair[], acked: number, want: string, expect: typeof import("vitest").expect): Promise<void> {
  for (const pair of pairs) {
    const restored = buildGraph(createGraph);
    const result = await restoreSnapshot(restored, pair);
    expect(result.finalSeq).toBeGreaterThanOrEqual(acked);
    expect(result.skippedFrames).toBe(0);
    expect(digestOf(restored), `pair ${pair.snapshot.name}`).toBe(want);
  }
}

interface Case {
  death: FaultKind;
  pairs: number;
}

describe.concurrent("a graph attached to an engine store resumes by itself after the store's worker was lost", () => {
  const cases: Array<[string, Case]> = [
    ["terminate", { death: "terminate", pairs: 1 }],
    ["exit", { death: "exit", pairs: 1 }],
    ["throw", { death: "throw", pairs: 1 }],
    ["hang ended by the watchdog", { death: "hang", pairs: 1 }],
    ["terminate, a WAL group of two pairs", { death: "terminate", pairs: 2 }],
  ];
  it.for(cases)("%s: later changes acknowledged without rebaseline(), restore equals the graph", { timeout: 120_000 }, async ([name, c], { expect }) => {
    const reported: Error[] = [];
    const e = openFaultEngine({ threads: 1, watchdogMs: 1_500, onError: (err) => reported.push(err) });
    try {
      const spec = { kind: "sqlite" as const, path: join(tmp.dir, `${name.replace(/\W+/g, "-")}.db`) };
      const pairs = pairsOf(e, spec, c.pairs === 1 ? ["snap"] : ["snapA", "snapB"]);
      const graph = buildGraph(createGraph);
      const heard: Error[] = [];
      const handle = attachSnapshotStorage(graph, pairs, { onError: (err) => heard.push(err) });
      await handle.flush();

      const failures = await untilLoss(e, spec, graph, handle, heard, c.death, name.length);
      expect(heard.some(pairStopped), "no death took writes of the pair").toBe(true);
      // Later changes, with no rebaseline(): acknowledged once the pair resumed.
      for (let i = 0; i < 5; i++) graph.set("s0", 1000 + i);
      const acked = await flushUntilAcked(handle, failures);
      const want = digestOf(graph);
      for (const f of failures) expect(lostWorker(f), String(f)).toBe(true);
      for (const h of heard.filter(pairStopped)) expect(h.message).not.toContain("refused for good");
      // And the handle keeps persisting.
      graph.set("s1", 4242);
      expect(await handle.flush()).toBeGreaterThan(acked);
      const last = digestOf(graph);
      await handle.dispose();
      expect(want).not.toBe(last);
      await expectRestored(pairs, acked, last, expect);
    } finally {
      await e.close().catch(() => undefined);
    }
  });

  it("a worker killed at every revival for a while, then healthy: the handle recovers", { timeout: 120_000 }, async ({ expect }) => {
    const e = openFaultEngine({ threads: 1, onError: () => undefined });
    try {
      const spec = { kind: "sqlite" as const, path: join(tmp.dir, "every-revival.db") };
      const pairs = pairsOf(e, spec, ["snap"]);
      const graph = buildGraph(createGraph);
      const heard: Error[] = [];
      const handle = attachSnapshotStorage(graph, pairs, { onError: (err) => heard.push(err) });
      await handle.flush();
      const failures = await untilLoss(e, spec, graph, handle, heard, "terminate", 7);
      expect(heard.some(pairStopped), "no death took writes of the pair").toBe(true);
      const rnd = prng(8);
      const inFlight: Promise<void>[] = [];
      // 12 deaths more in a row: each revival's worker is terminated as soon as it was sent something.
      for (let death = 0; death < 12; death++) {
        for (let w = 0; w < 5; w++) randomWave(graph, rnd);
        inFlight.push(handle.flush().then(() => undefined, (err: unknown) => void failures.push(err)));
        await e.injectFault(spec, "terminate");
        await sleep(20);
      }
      await Promise.all(inFlight);
      // Healthy from here: later changes are acknowledged, without rebaseline().
      graph.set("s0", 777);
      const acked = await flushUntilAcked(handle, failures);
      for (const f of failures) expect(lostWorker(f), String(f)).toBe(true);
      const want = digestOf(graph);
      await handle.dispose();
      await expectRestored(pairs, acked, want, expect);
    } finally {
      await e.close().catch(() => undefined);
    }
  });
});
