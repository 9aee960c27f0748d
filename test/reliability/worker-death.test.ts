/**
 * Worker death in the middle of flushes (injectFault of test/support/faults.ts: "terminate" from the main thread; "exit",
 * "throw" inside the worker; a "hang" ended by "terminate"):
 * - a graph attached to engine tiers under sustained waves: every waiting handle.flush() that fails rejects with
 *   StorageError("worker-crashed") (the pair resumes by itself: worker-death-resume.test.ts), onError hears it,
 *   the store reopens through the same engine, and restore
 *   gives back at least every acknowledged seq — exactly the writer's state at the restored seq — round after
 *   round, in one engine whose worker keeps dying;
 * - a large kv batch cut off mid-write: SQLite keeps all of it or none, the file backend a prefix of whole
 *   values (never a torn one), acknowledged data is intact and the store takes writes again.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StorageEngineOptions, StoreSpec } from "../../src/engine/index.js";
import { openFaultEngine, type FaultEngine, type FaultKind } from "../support/faults.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage, createGraph, restoreSnapshot } from "../../src/index.js";
import type { AttachPair, GraphCheckpointRecord, ReactiveGraph, StorageHandle } from "../../src/index.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { assertBuilt, envCount, prng, sleep, tempDir, type TempDir } from "./fixtures/crash-harness.js";
import { COMPACT_EVERY, buildGraph, digestOf, randomWave } from "./fixtures/graph-crash-model.mjs";

const ROUNDS = envCount("WORKER_DEATH_ROUNDS", 6);

let tmp: TempDir;
beforeAll(() => {
  assertBuilt();
  tmp = tempDir("worker-death");
});
afterAll(() => tmp.remove());

/** Runs `fn` with its own engine, closed afterwards (tests in this file run concurrently). */
async function withEngine<T>(opts: StorageEngineOptions, fn: (e: FaultEngine) => Promise<T>): Promise<T> {
  const e = openFaultEngine({ threads: 1, ...opts });
  try {
    return await fn(e);
  } finally {
    await e.close().catch(() => undefined);
  }
}

type Kind = "sqlite" | "file";

const isWorkerCrashed = (e: unknown): boolean => e instanceof StorageError && e.code === "worker-crashed";

/** Resolves once onError heard the worker die ("exit"/"throw" act a moment after the call). */
async function deathSeen(reported: Error[]): Promise<void> {
  while (!reported.some(isWorkerCrashed)) await sleep(5);
  reported.length = 0;
}

describe.concurrent("worker death under a graph writer", () => {
  const title = `%s: ${ROUNDS} deaths in one engine; typed rejections, reopen, everything acknowledged restored`;
  it.for<Kind>(["sqlite", "file"])(title, { timeout: 120_000 }, async (kind, { expect }) => {
    const reported: Error[] = [];
    await withEngine({ onError: (err) => reported.push(err) }, async (e) => {
      const spec: StoreSpec = kind === "sqlite" ? { kind, path: join(tmp.dir, "graph.db") } : { kind, dir: join(tmp.dir, "graph") };
      const deaths: FaultKind[] = ["terminate", "exit", "throw"];
      const rnd = prng(kind === "sqlite" ? 11 : 12);
      const digests = new Map<number, string>();
      let acked = 0;
      let graph: ReactiveGraph = buildGraph(createGraph);
      const tiers = (): AttachPair & { wal: KvStorageTier<WALFrame> } => ({
        snapshot: e.snapshot<GraphCheckpointRecord>(spec, { name: "snap" }),
        wal: e.kv<WALFrame>(spec, { name: "wal", codec: walFrameCodec }),
      });

      for (let round = 0; round < ROUNDS; round++) {
        const death = deaths[round % deaths.length]!;
        const pair = tiers();
        if (round > 0) {
          // Reopened through the same engine (a new actor on a new worker): restore in a fresh graph.
          graph = buildGraph(createGraph);
          const result = await restoreSnapshot(graph, pair);
          expect(result.finalSeq, `round ${round} (${death}): acknowledged seq lost`).toBeGreaterThanOrEqual(acked);
          expect(result.skippedFrames).toBe(0);
          const want = digests.get(result.finalSeq);
          if (want !== undefined) expect(digestOf(graph), `round ${round}: restored state is not the writer's`).toBe(want);
          else expect(kind, `round ${round}: restored seq ${result.finalSeq} is inside a wave`).toBe("file");
        }
        const handle: StorageHandle = attachSnapshotStorage(graph, [pair], { compactEvery: COMPACT_EVERY, onError: () => undefined });
        const first = await handle.flush();
        digests.set(first, digestOf(graph));
        acked = first;

        // Sustained waves; flushes stay in flight; the worker dies after a few acknowledgements.
        const outcomes: Array<{ ok: boolean; error?: unknown }> = [];
        const inFlight: Promise<void>[] = [];
        let seq = handle.seq;
        let killed: Promise<void> | undefined;
        // Until a flush fails or the death is reported: a worker that answered every flush it took before dying
        // leaves none waiting (its answers are delivered first, 39429d9), so no flush need see it.
        for (let i = 0; outcomes.filter((o) => !o.ok).length === 0 && !reported.some(isWorkerCrashed) && i < 5_000; i++) {
          for (let w = 0; w < 3; w++) {
            randomWave(graph, rnd);
            if (handle.seq === seq) continue;
            seq = handle.seq;
            digests.set(seq, digestOf(graph));
          }
          inFlight.push(
            handle.flush().then(
              (s) => {
                outcomes.push({ ok: true });
                acked = Math.max(acked, s);
              },
              (error: unknown) => void outcomes.push({ ok: false, error }),
            ),
          );
          if (killed === undefined && outcomes.filter((o) => o.ok).length >= 3) killed = e.injectFault(spec, death);
          // A few flushes in flight, not thousands: the actor's mailbox stays short, so the death lands promptly.
          if (inFlight.length - outcomes.length >= 4) await Promise.race(inFlight.slice(outcomes.length));
          else await sleep(1);
        }
        await killed;
        await Promise.all(inFlight);
        const failures = outcomes.filter((o) => !o.ok);
        // A flush in flight at the death fails with it, worker-crashed: the lost writes were refused by nothing (the
        // pair resumes by itself with a baseline of the graph, task 390), never a write-refused naming it as cause.
        for (const f of failures) expect(isWorkerCrashed(f.error), String(f.error)).toBe(true);
        expect(reported.some(isWorkerCrashed)).toBe(true);
        reported.length = 0;
        await handle.dispose().catch(() => undefined);
      }

      // The last round's writes: restore once more and keep writing.
      const pair = tiers();
      const final = buildGraph(createGraph);
      const result = await restoreSnapshot(final, pair);
      expect(result.finalSeq).toBeGreaterThanOrEqual(acked);
      const handle = attachSnapshotStorage(final, [pair]);
      final.set("s0", 12345);
      expect(await handle.flush()).toBeGreaterThan(result.finalSeq);
      await handle.dispose();
    });
  });
});

describe("a hung worker", () => {
  it("is ended by injectFault('terminate'): waiting flushes reject worker-crashed, the store reopens intact", async () => {
    const e = openFaultEngine({ threads: 1 });
    const spec: StoreSpec = { kind: "sqlite", path: join(tmp.dir, "hang.db") };
    const kv = e.kv<number>(spec, { name: "kv", debounceMs: 60_000 });
    kv.save("acked", 1);
    await kv.flush();
    await e.injectFault(spec, "hang"); // the worker busy-loops for 60 s and answers nothing
    kv.save("pending", 2);
    const waiting = kv.flush().then(
      () => undefined,
      (err: unknown) => err,
    );
    // A drill must be able to end a hang; 20 s is a safety deadline, a third of the hang itself.
    const ended = await Promise.race([e.injectFault(spec, "terminate").then(() => "terminated"), sleep(20_000).then(() => "stuck")]);
    // When stuck, the engine is left to the test process's exit: closing it would wait out the whole hang.
    expect(ended, "injectFault('terminate') waits for the hung worker to answer before terminating it").toBe("terminated");
    expect(isWorkerCrashed(await waiting)).toBe(true);
    const reopened = e.kv<number>(spec, { name: "kv" });
    expect(await reopened.load("acked")).toBe(1);
    await e.close();
  }, 60_000);
});

describe.concurrent("a large kv batch cut off by worker death", () => {
  const title = "%s: all-or-nothing (SQLite) / a prefix of whole values (file); acknowledged data intact; writable again";
  it.for<Kind>(["sqlite", "file"])(title, { timeout: 120_000 }, async (kind, { expect }) => {
    const reported: Error[] = [];
    await withEngine({ onError: (err) => reported.push(err) }, async (e) => {
      const spec: StoreSpec = kind === "sqlite" ? { kind, path: join(tmp.dir, "batch.db") } : { kind, dir: join(tmp.dir, "batch") };
      const value = (b: number, i: number): { b: number; i: number; pad: string } => ({ b, i, pad: `${b}:${i}:`.repeat(40) });
      const rnd = prng(kind === "sqlite" ? 21 : 22);
      let cutOff = 0;
      for (let b = 0; b < 4; b++) {
        const kv = e.kv<{ b: number; i: number; pad: string }>(spec, { name: "kv", debounceMs: 60_000 });
        kv.save(`acked/${b}`, value(b, -1));
        await kv.flush();
        const size = kind === "file" ? 300 : 1500; // the file backend fsyncs every value: keep its batch shorter
        for (let i = 0; i < size; i++) kv.save(`batch/${b}/${String(i).padStart(5, "0")}`, value(b, i));
        const flushed = kv.flush().then(
          () => undefined,
          (err: unknown) => err,
        );
        await sleep(Math.floor(rnd() * 15));
        await e.injectFault(spec, b % 2 === 0 ? "terminate" : "exit");
        const outcome = await flushed;
        if (outcome !== undefined) {
          expect(isWorkerCrashed(outcome), String(outcome)).toBe(true);
          cutOff++;
        }
        await deathSeen(reported);
        // The same tier works again on a new worker; its batch was reported by its flush, so nothing more fails.
        await kv.flush();

        const reopened = e.kv<{ b: number; i: number; pad: string }>(spec, { name: "kv" });
        for (let a = 0; a <= b; a++) expect(await reopened.load(`acked/${a}`)).toEqual(value(a, -1));
        const keys = await reopened.list(`batch/${b}/`);
        if (outcome === undefined) expect(keys).toHaveLength(size); // acknowledged: all of it
        else if (kind === "sqlite") expect([0, size]).toContain(keys.length); // one transaction
        // Present keys are a prefix of the batch, each with its whole value.
        keys.forEach((k, i) => expect(k).toBe(`batch/${b}/${String(i).padStart(5, "0")}`));
        for (const k of keys.slice(-3)) expect((await reopened.load(k))?.b).toBe(b);
        expect((await reopened.list()).filter((k) => !/^(acked|batch|after)\//.test(k))).toEqual([]);
        reopened.save(`after/${b}`, value(b, -2));
        await reopened.flush();
        expect(await reopened.load(`after/${b}`)).toEqual(value(b, -2));
      }
      console.log(`[worker-death ${kind}] ${cutOff} of 4 batches were cut off before their flush resolved`);
    });
  });
});
