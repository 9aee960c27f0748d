/**
 * The background fold's retry policy, on the watcher alone (its contract with the actor: committed batches in,
 * jobs out, each job's outcome back), on fake timers: a failure the store may get over (`retryable`, e.g. a backend
 * error) is retried while the graph stays due, with exponential backoff; a failure repeating cannot fix (a corrupt
 * or incomplete stored graph) is not retried until the graph grows past its threshold anew, so onError does not hear
 * the same error again and again; a retry waiting when the actor shuts down is cancelled. The same watcher against
 * a real failing store: fold-retry.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { BatchOp } from "../../src/backend/types.js";
import type { CommitWatcher, WatcherJobOutcome } from "../../src/engine/commit-watchers.js";
import type { ActorOptions } from "../../src/engine/protocol.js";
import { walGrowthWatcher, type BackgroundFoldRule } from "../../src/persistence/wal-growth-watcher.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";

const GRAPH = "g";
const RULE: BackgroundFoldRule = { ratio: 2, minBytes: 1000 };

/** A watcher whose jobs are recorded and settled by the test. */
function harness() {
  const jobs: Array<(outcome: WatcherJobOutcome) => void> = [];
  const watcher: CommitWatcher<unknown> = walGrowthWatcher.create({
    options: { store: { kind: "memory" }, synchronous: "FULL", counters: new SharedArrayBuffer(1024) } as unknown as ActorOptions,
    runJob: () => new Promise<WatcherJobOutcome>((resolve) => jobs.push(resolve)),
    report: () => undefined,
  });
  watcher.configure?.(GRAPH, RULE);
  let seq = 0;
  /** Commits frames of `bytes` in all: past 2 × 1000 makes the graph due. */
  const commit = (bytes: number): void => {
    const batch: BatchOp[] = [{ op: "put", key: walFrameKey(graphWalPrefix(GRAPH), ++seq), value: new Uint8Array(bytes) }];
    watcher.committed(batch);
  };
  /** Settles the oldest unsettled job, then lets the watcher see it. */
  const settle = async (outcome: WatcherJobOutcome, index: number): Promise<void> => {
    jobs[index]!(outcome);
    await vi.advanceTimersByTimeAsync(0);
  };
  return { watcher, jobs, commit, settle };
}

const failed = (retryable: boolean): WatcherJobOutcome => ({ ok: false, retryable });

describe("background fold retries (wal-growth watcher)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.spyOn(Math, "random").mockReturnValue(1); // no jitter: delays of exactly 1 s, 2 s, 4 s...
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it("a retryable failure is retried while the graph is due, with exponential backoff, until a fold succeeds", async () => {
    const { jobs, commit, settle } = harness();
    commit(2500);
    expect(jobs).toHaveLength(1);
    await settle(failed(true), 0);
    await vi.advanceTimersByTimeAsync(999);
    expect(jobs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(jobs).toHaveLength(2); // after 1 s
    commit(100); // growth while failing neither starts a second fold nor skips the backoff
    expect(jobs).toHaveLength(2);
    await settle(failed(true), 1);
    await vi.advanceTimersByTimeAsync(1999);
    expect(jobs).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(jobs).toHaveLength(3); // after 2 s more
    await settle({ ok: true, value: { baselineSeq: 2, baselineBytes: 500 } }, 2);
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(jobs).toHaveLength(3); // folded: nothing more owed
  });

  it("a failure repeating cannot fix is not retried while idle; new growth past the threshold tries again", async () => {
    const { jobs, commit, settle } = harness();
    commit(2500);
    await settle(failed(false), 0);
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(jobs).toHaveLength(1);
    commit(1500); // under the threshold counted from the failure
    expect(jobs).toHaveLength(1);
    commit(1000);
    expect(jobs).toHaveLength(2);
  });

  it("a retry waiting when the actor shuts down is cancelled", async () => {
    const { watcher, jobs, commit, settle } = harness();
    commit(2500);
    await settle(failed(true), 0);
    watcher.close?.();
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(jobs).toHaveLength(1);
  });

  it("a fold failing while the actor shuts down (it waits for the fold) schedules no retry", async () => {
    const { watcher, jobs, commit, settle } = harness();
    commit(2500);
    watcher.close?.();
    await settle(failed(true), 0);
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(jobs).toHaveLength(1);
  });
});
