/**
 * A background fold (docs/design.md §3.18) reads and folds the WAL beside the store's other work: the store's
 * flushes do not wait for it (a fold of a graph of 100,000 nodes takes seconds, and every flush of the store used
 * to wait that long); a baseline rewritten while it reads makes it start over from that baseline. Its commit runs as
 * a mailbox step of its own (what that step does when the baseline moved after the read: fold-commit-step.test.ts).
 * The test entry (fixtures/reading-fold-worker.mjs) holds the first fold in the middle of its read until the test opens a gate.
 */
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { jsonCodec } from "../../src/codec/json.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import type { StorageEngine, StoreSpec } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { until } from "../support/wait.js";
import {
  BASELINE_RATIO,
  BURST_VALUE_CHARS,
  GRAPH,
  MIN_BASELINE_BYTES,
  aboveBaseline,
  buildGraph,
  enginePair,
  restoredSnapshot,
  tempDir,
  untilWithinFoldBound,
} from "./fixtures.js";

const READING_FOLD_WORKER = fileURLToPath(new URL("./fixtures/reading-fold-worker.mjs", import.meta.url));
/** The messages the worker entry opens its gate on (fixtures/reading-fold-worker.mjs). */
const OPEN_READ_GATE = "graphrefly.test-open-read-gate";
const OPEN_READ_GATE_ON_SHUTDOWN = "graphrefly.test-open-read-gate-on-shutdown";
const FAIL_READS_AFTER_GATE = "graphrefly.test-fail-reads-after-gate";
const BURST = 400;

const tmp = tempDir("fold-beside-flushes");
afterAll(() => tmp.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

/** `promise`, or a failure naming `what` if it has not settled within `ms` (a deadlock, not a speed check). */
function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still waiting: ${what}`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A store whose first fold is held in the middle of reading the WAL a burst made due. */
async function foldHeldMidRead(name: string) {
  const errors: Error[] = [];
  const access = openStorageEngineForTests({ threads: 1, onError: (err) => errors.push(err) }, READING_FOLD_WORKER);
  const e = (engine = access.engine);
  const store: StoreSpec = { kind: "sqlite", path: tmp.path(`${name}.db`) };
  const graph = buildGraph();
  const pair = enginePair(e, store);
  const handle = attachSnapshotStorage(graph, [pair]); // defaults: baselines by size, folded in the store's actor
  await handle.flush();
  expect(BURST * BURST_VALUE_CHARS).toBeGreaterThan(BASELINE_RATIO * MIN_BASELINE_BYTES);
  for (let i = 0; i < BURST; i++) graph.set("c", `${"payload ".repeat(BURST_VALUE_CHARS / 8)}${i}`);
  // Its snapshot tier's flush comes after the fold started: before, it waited for the whole fold.
  const seq = await settlesWithin(handle.flush(), 10_000, "the burst's flush, behind the fold it made due");
  const records = e.kv<unknown>(store, { codec: jsonCodec });
  await until(async () => (await records.load("fold-reading/1")) !== undefined, "the fold to be reading the WAL", { timeoutMs: 10_000 });
  const openGate = () => access.post(store, { type: OPEN_READ_GATE });
  const gateOpensOnShutdown = () => access.post(store, { type: OPEN_READ_GATE_ON_SHUTDOWN });
  const readFailsAfterGate = () => access.post(store, { type: FAIL_READS_AFTER_GATE });
  return { e, store, graph, pair, handle, seq, records, errors, openGate, gateOpensOnShutdown, readFailsAfterGate };
}

describe("background folds beside the store's flushes (engine, SQLite file, attach defaults)", () => {
  it("while a fold reads, the store's writes are flushed; then the fold commits and the WAL ends within the bound", async () => {
    const { e, store, graph, pair, handle, seq, records, errors, openGate } = await foldHeldMidRead("beside");
    const marker = e.kv<{ n: number }>(store, { name: "marker" });
    for (let n = 0; n < 3; n++) {
      marker.save("m", { n });
      await settlesWithin(marker.flush(), 10_000, "a flush of the store while its fold reads");
    }
    expect(await marker.load("m")).toEqual({ n: 2 });
    expect(await records.load("fold-record/1")).toBeUndefined(); // the fold is still reading
    expect((await aboveBaseline(pair)).baselineSeq).toBe(1);

    await openGate();
    await untilWithinFoldBound(pair, 10_000);
    expect(await records.load("fold-record/1")).toEqual({ ok: true, baselineSeq: seq });
    expect((await aboveBaseline(pair)).frames).toBe(0);
    expect(await restoredSnapshot(enginePair(e, store))).toEqual(graph.snapshot());
    expect(errors).toEqual([]);
    await handle.dispose();
  });

  it("a baseline rewritten while the fold read: the fold starts over from it and folds onto it", async () => {
    const { e, store, graph, pair, handle, seq, records, errors, openGate } = await foldHeldMidRead("rewritten");
    const stored = await pair.snapshot.load(GRAPH);
    const rewritten = { ...stored!, timestamp_ns: Number(stored!.timestamp_ns) + 1_000_000 }; // the same state, other bytes
    pair.snapshot.save(rewritten);
    await pair.snapshot.flush();

    await openGate();
    await until(async () => (await records.load("fold-record/1")) !== undefined, "the held fold to end", { timeoutMs: 10_000 });
    expect(await records.load("fold-record/1")).toEqual({ ok: true, baselineSeq: seq });
    expect(errors).toEqual([]);
    expect((await aboveBaseline(pair)).frames).toBe(0);
    expect(await restoredSnapshot(enginePair(e, store))).toEqual(graph.snapshot());
    await handle.dispose();
  });

  it("a newer baseline stored while the fold read (attach's own): the fold keeps it and deletes the frames it covers", async () => {
    const { e, store, graph, pair, handle, seq, records, errors, openGate } = await foldHeldMidRead("superseded");
    const stored = await pair.snapshot.load(GRAPH);
    const newer = { ...stored!, snapshot: graph.snapshot(), seq, timestamp_ns: Number(stored!.timestamp_ns) + 1_000_000 };
    pair.snapshot.save(newer);
    await pair.snapshot.flush();

    await openGate();
    await until(async () => (await records.load("fold-record/1")) !== undefined, "the held fold to end", { timeoutMs: 10_000 });
    expect(await records.load("fold-record/1")).toEqual({ ok: true, baselineSeq: seq });
    expect(errors).toEqual([]);
    expect(await pair.snapshot.load(GRAPH)).toEqual(newer); // not rewritten by the fold
    expect(await pair.wal.list(`${GRAPH}/wal/`)).toEqual([]); // every frame lay at or below it
    expect(await restoredSnapshot(enginePair(e, store))).toEqual(graph.snapshot());
    await handle.dispose();
  });

  it("engine.close() while a fold reads: the fold ends and commits before the store closes", async () => {
    const { store, graph, seq, gateOpensOnShutdown } = await foldHeldMidRead("closing");
    await gateOpensOnShutdown();
    await engine!.close(); // the fold reads on while the actor is asked to shut down
    engine = undefined;

    const after = openStorageEngineForTests({ threads: 1 }, READING_FOLD_WORKER).engine;
    engine = after;
    const records = after.kv<unknown>(store, { codec: jsonCodec });
    expect(await records.load("fold-record/1")).toEqual({ ok: true, baselineSeq: seq });
    const pair = enginePair(after, store);
    expect(await aboveBaseline(pair)).toMatchObject({ baselineSeq: seq, frames: 0 });
    expect(await restoredSnapshot(pair)).toEqual(graph.snapshot());
  });

  it("a fold that fails while the store closes is reported (onError), not taken for the close cutting it short", async () => {
    const { errors, gateOpensOnShutdown, readFailsAfterGate } = await foldHeldMidRead("failing-at-close");
    await readFailsAfterGate();
    await gateOpensOnShutdown();
    await engine!.close();
    engine = undefined;
    expect(errors.map((err) => [err.name, (err as { code?: string }).code])).toEqual([["StorageError", "backend-error"]]);
    expect(errors[0]!.message).toMatch(/EIO/);
  });
});
