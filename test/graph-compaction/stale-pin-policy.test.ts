/**
 * When the background fold reports a stale pin of the shared-WAL record (StorageError `wal-pinned`, docs/design.md
 * §3.10), on the watcher alone (its contract with the actor: committed batches in, compact-graph jobs out, each
 * job's result back; as fold-retry-policy.test.ts), on fake timers for its clock. A pin is stale by the WAL's frames
 * and by time, never by the count of folds (the WAL store's own schedule): it stayed put while the graph's baseline
 * moved on by 10,000 frames and 10 times the largest step the pin took, for an hour. A store attached in a live
 * handle of this process is never reported. A pin still put is reported again once the frames it holds back doubled
 * and an hour passed. Through the engine with real stores: test/persistence/shared-wal-stale-pin.test.ts.
 */
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import type { CommitWatcher, WatcherJobOutcome } from "../../src/engine/commit-watchers.js";
import type { ActorOptions } from "../../src/engine/protocol.js";
import type { StorageError } from "../../src/errors.js";
import type { CompactionResult } from "../../src/persistence/compaction.js";
import { walGrowthWatcher, type KeepAboveConfig } from "../../src/persistence/wal-growth-watcher.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";

const GRAPH = "g";
const MINUTE = 60_000;

/** A watcher folding graph g at every frame committed, pinned as `config` says; its reports in `reports`. */
function harness(config: KeepAboveConfig) {
  const jobs: Array<(outcome: WatcherJobOutcome) => void> = [];
  const reports: StorageError[] = [];
  const watcher: CommitWatcher<unknown> = walGrowthWatcher.create({
    options: { store: { kind: "memory" }, synchronous: "FULL", counters: new SharedArrayBuffer(1024), autoCompact: { everyFrames: 1 } } as unknown as ActorOptions,
    runJob: () => new Promise<WatcherJobOutcome>((resolve) => jobs.push(resolve)),
    report: (err) => void reports.push(err as StorageError),
  });
  watcher.configure?.(GRAPH, config);
  /** One fold of the WAL store up to `baselineSeq`, the record's pins as given: commits its frame, settles its job. */
  const fold = async (baselineSeq: number, pins: Record<string, number>): Promise<void> => {
    watcher.committed([{ op: "put", key: walFrameKey(graphWalPrefix(GRAPH), baselineSeq), value: new Uint8Array(10) }]);
    const result = {
      baselineSeq,
      baselineBytes: 100,
      sharedWalPins: Object.entries(pins).map(([store, seq]) => ({ store, seq })),
    } as unknown as CompactionResult;
    jobs[jobs.length - 1]!({ ok: true, value: result });
    await vi.advanceTimersByTimeAsync(0);
  };
  /** The reports' stores and seqs, in order. */
  const heard = (): Array<[unknown, unknown]> => reports.map((r) => [r.details.store, r.details.seq]);
  return { watcher, fold, reports, heard };
}

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

it("a pin is stale only once the WAL moved on 10,000 frames past it and an hour passed; an attached store never", async () => {
  const { fold, heard, reports } = harness({ keepAboveSeq: 5, attached: ["live"] });
  const pins = { gone: 5, live: 5 };
  await fold(100, pins); // first seen here
  await fold(120, pins); // a second fold with the pin unmoved: was reported here, "forget it"
  await vi.advanceTimersByTimeAsync(2 * 60 * MINUTE);
  await fold(10_099, pins); // 9,999 frames on: not yet
  expect(heard()).toEqual([]);
  await fold(10_100, pins);
  expect(heard()).toEqual([["gone", 5]]); // "live" is attached here: never
  expect(reports[0]!.code).toBe("wal-pinned");
  expect(reports[0]!.details).toMatchObject({ graphName: GRAPH, store: "gone", seq: 5, baselineSeq: 10_100 });
  expect(reports[0]!.message).toMatch(/no handle of this process attaches it/);
  expect(reports[0]!.message).not.toMatch(/if that store is gone for good, forget it/);
  await fold(20_000, pins); // held back 19,995 < twice 10,095: not again
  await vi.advanceTimersByTimeAsync(30 * MINUTE);
  await fold(30_000, pins); // doubled, but within an hour of the report: not again
  expect(heard()).toEqual([["gone", 5]]);
  await vi.advanceTimersByTimeAsync(31 * MINUTE);
  await fold(30_001, pins);
  expect(heard()).toEqual([["gone", 5], ["gone", 5]]);
});

it("a pin put for many frames within the hour is not stale; nor one put for hours over fewer frames than its pace", async () => {
  const { fold, heard } = harness({ keepAboveSeq: 0 });
  await fold(100, { s: 50 });
  await vi.advanceTimersByTimeAsync(59 * MINUTE);
  await fold(1_000_000, { s: 50 }); // a burst: 1,000,000 frames in 59 minutes
  expect(heard()).toEqual([]);
  await vi.advanceTimersByTimeAsync(MINUTE);
  await fold(1_000_001, { s: 50 });
  expect(heard()).toEqual([["s", 50]]);
  // The store wrote a baseline 100,000 frames on: its pace. Put again, it is stale only 1,000,000 frames on.
  await fold(1_100_000, { s: 100_050 });
  await vi.advanceTimersByTimeAsync(5 * 60 * MINUTE);
  await fold(1_999_999, { s: 100_050 });
  expect(heard()).toEqual([["s", 50]]);
  await fold(2_100_000, { s: 100_050 });
  expect(heard()).toEqual([["s", 50], ["s", 100_050]]);
});

it("a store whose handle ended (attached: []) is reported as any other", async () => {
  const { watcher, fold, heard } = harness({ keepAboveSeq: 5, attached: ["two"] });
  await fold(100, { two: 5 });
  await vi.advanceTimersByTimeAsync(2 * 60 * MINUTE);
  await fold(20_000, { two: 5 });
  expect(heard()).toEqual([]);
  watcher.configure?.(GRAPH, { keepAboveSeq: 5, attached: [] } satisfies KeepAboveConfig);
  await fold(20_001, { two: 5 });
  expect(heard()).toEqual([["two", 5]]);
});
