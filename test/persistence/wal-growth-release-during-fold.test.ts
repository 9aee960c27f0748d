/**
 * Review r231 (kept by task 234): the WAL growth watcher's release while a fold of the graph runs (checked sound),
 * and a shared-WAL handle's end (a pin with no attached store) leaving nothing that keeps later configs of the graph
 * from replacing the earlier ones (F2). The watcher is the real one; its context stands in for the actor only to hold
 * the fold job's outcome until the test settles it.
 */
import { describe, expect, it } from "vitest";
import type { BatchOp } from "../../src/backend/types.js";
import type { CommitWatcher, CommitWatcherContext, WatcherJobOutcome } from "../../src/engine/commit-watchers.js";
import { walGrowthWatcher } from "../../src/persistence/wal-growth-watcher.js";
import { walFrameKey } from "../../src/wal/keys.js";

function harness() {
  const jobs: Array<(o: WatcherJobOutcome) => void> = [];
  const ctx: CommitWatcherContext = {
    options: {} as CommitWatcherContext["options"],
    runJob: () => new Promise<WatcherJobOutcome>((resolve) => jobs.push(resolve)),
    report: () => {},
  };
  // Configs cross by structured clone: any shape reaches the watcher (a rule, a pin, a release).
  const w = walGrowthWatcher.create(ctx) as CommitWatcher<unknown>;
  const frames = (from: number, n: number, bytes: number): BatchOp[] =>
    Array.from({ length: n }, (_, i) => ({ op: "put", key: walFrameKey("g/wal", from + i), value: new Uint8Array(bytes) }) as BatchOp);
  const ok = (baselineSeq: number): WatcherJobOutcome => ({ ok: true, value: { baselineSeq, baselineBytes: 100 } });
  return { w, jobs, frames, ok };
}
const rule = { ratio: 2, minBytes: 1000 };

describe("r231: release while the graph's fold runs", () => {
  it("a rule sent again (re-attach) before the fold ends survives the fold's end", async () => {
    const { w, jobs, frames, ok } = harness();
    w.configure!("g", rule);
    w.committed(frames(1, 3, 1000)); // 3000 > 2 × 1000: due
    expect(jobs.length).toBe(1);
    expect(w.configure!("g", { foldRule: "release" })).toBe(true); // replaces all: nothing of g left to replay
    expect(w.holds!()).toBe(false);
    expect(w.configure!("g", rule)).toBe(true); // handle 2
    expect(w.holds!()).toBe(true);
    jobs[0]!(ok(3));
    await new Promise((r) => setTimeout(r, 0));
    expect(w.holds!()).toBe(true); // handle 2's rule is in force
    w.committed(frames(4, 3, 1000));
    expect(jobs.length).toBe(2); // and folds
  });

  it("a released rule's fold that ends still due folds once more, then the rule goes", async () => {
    const { w, jobs, frames, ok } = harness();
    w.configure!("g", rule);
    w.committed(frames(1, 3, 1000));
    w.configure!("g", { foldRule: "release" });
    w.committed(frames(4, 3, 1000)); // committed while the fold ran, above what it folds
    jobs[0]!(ok(3));
    await new Promise((r) => setTimeout(r, 0));
    expect(jobs.length).toBe(2); // the one its outcome makes due
    jobs[1]!(ok(6));
    await new Promise((r) => setTimeout(r, 0));
    expect(w.holds!()).toBe(false);
    w.committed(frames(7, 10, 1000));
    expect(jobs.length).toBe(2); // released: no more folds
  });

  it("a pin with no attached store (a shared-WAL handle ended) leaves later rules and releases replacing all before", () => {
    const { w } = harness();
    expect(w.configure!("g", { keepAboveSeq: 5, attached: ["s1"] })).toBe(true);
    expect(w.configure!("g", { keepAboveSeq: 5, attached: [] })).toBe(true);
    expect(w.holds!()).toBe(true); // the pin stays
    expect(w.configure!("g", rule)).toBe(true); // before: false (an empty set of attached stores was kept)
    expect(w.configure!("g", { foldRule: "release" })).toBe(true); // before: false
    expect(w.holds!()).toBe(false);
  });
});
