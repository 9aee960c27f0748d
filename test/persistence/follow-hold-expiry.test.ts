/**
 * Each held removal waits `holdRemovalPolls` polls of its own (design §3.9). Before the fix, the poll where one
 * removal's hold ran out applied every frame it read, also a removal of a derived node read for the first time in
 * that poll: the writer re-added the node in its next wave, the follower's next poll could not build it, and the
 * follower lacked it for good (lag().frames 0) while restore at the same frame and the writer had it. The property
 * writes random waves (a writer that re-adds a removed node within its hold, also behind a younger removal still
 * waiting, or never) and checks the follower's graph against restoreSnapshot at the frame it reports at every poll.
 * Real SQLite file.
 */
import fc from "fast-check";
import { afterEach, expect, it } from "vitest";
import { followGraph, restoreSnapshot, type ReactiveGraph } from "../../src/index.js";
import { DEFAULT_HOLD_REMOVAL_POLLS } from "../../src/persistence/follow.js";
import { inlinePair } from "../graph-compaction/fixtures.js";
import { build, pair, same, waveWriter } from "./fixtures/follow-graph.js";
import { sqliteWriter } from "./fixtures/sqlite-writer.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A writer (inline SQLite) and a follower polled by hand, and a check of the follower against restore. */
async function setup(name: string, holdRemovalPolls: number) {
  const live = build();
  const { handle, reader } = sqliteWriter(name, live, cleanups);
  await handle.flush();
  const graph = build();
  const errors: Error[] = [];
  const follower = await followGraph(graph, inlinePair(reader), { pollMs: 3_600_000, holdRemovalPolls, onError: (e) => errors.push(e) });
  cleanups.push(() => follower.stop());
  const write = waveWriter(live, handle);
  /** Polls, then the follower's graph must be restore's at the frame it reports. */
  const pollAndCheck = async (why: string): Promise<void> => {
    await follower.poll();
    expect(errors, why).toEqual([]);
    const restored = build();
    await restoreSnapshot(restored, { ...inlinePair(reader), targetSeq: follower.lag().appliedSeq });
    expect(graph.snapshot(), `${why} at ${follower.lag().appliedSeq}`).toEqual(restored.snapshot());
  };
  return { live, graph, follower, handle, write, pollAndCheck };
}

it.each([2, DEFAULT_HOLD_REMOVAL_POLLS])(
  "holdRemovalPolls %i: a removal first read in the poll where an older hold runs out keeps its own hold",
  async (hold) => {
    const { live, graph, follower, write, pollAndCheck } = await setup("follow-hold-expiry", hold);
    await write((g) => g.unmount("x")); // for good: x::d is never built again, its hold runs out
    await pollAndCheck("unmount read"); // held: 0 polls
    for (let i = 1; i < hold; i++) {
      await write((g) => g.set("a", 100 + i));
      await pollAndCheck(`held ${i}`);
      expect(graph.kindOf("x::d")).toBe("derived");
    }
    await write((g) => g.remove("c"));
    await pollAndCheck("x's hold runs out"); // x::d goes; "remove c", read now, waits
    expect(graph.kindOf("x::d")).toBeUndefined();
    expect(graph.kindOf("c")).toBe("derived");
    expect(follower.lag().frames).toBe(1);
    await write((g) => void g.derived("c", ["a", "b"], pair));
    await pollAndCheck("c re-added");
    expect(follower.lag().frames).toBe(0);
    expect(graph.kindOf("c")).toBe("derived");
    expect(graph.snapshot()).toEqual(live.snapshot());
  },
);

/** The writer's code-built nodes removed and not re-added yet: polls done when removed, and in which order. */
interface Model {
  readonly hold: number;
  polls: number;
  /**
   * Not in `open` once past `until` (polls done): the follower applied the removal without its re-add. `until` is
   * the removal's own hold, or sooner when an older removal's re-add came after it: that one goes with it, and what
   * lies between, 2 × hold polls after its own removal (`pull`: the soonest such, carried down the chain).
   */
  open: Map<string, { at: number; order: number; until: number; pull: number }>;
  removals: number;
}

/** A re-add the follower must keep: its removal not applied yet without it (design §3.9). */
function canReadd(m: Model, path: string): boolean {
  return m.open.has(path);
}
function removed(m: Model, path: string): void {
  m.open.set(path, { at: m.polls, order: ++m.removals, until: m.polls + m.hold, pull: Number.POSITIVE_INFINITY });
}
/** `path` re-added: younger removals still open lie between its removal and this re-add, and go with it at the latest. */
function readded(m: Model, path: string): void {
  const own = m.open.get(path);
  m.open.delete(path);
  if (own === undefined) return;
  const forced = Math.min(own.at + 2 * m.hold, own.pull);
  for (const other of m.open.values()) {
    if (other.order < own.order) continue;
    other.pull = Math.min(other.pull, forced);
    other.until = Math.min(other.until, forced);
  }
}

type Wave = readonly [string, (g: ReactiveGraph, m: Model) => boolean, (g: ReactiveGraph, m: Model, v: number) => void];
const buildX = (g: ReactiveGraph): void => {
  g.state("x::s", 3);
  g.derived("x::d", ["x::s"], same);
};
const waves: readonly Wave[] = [
  ["setA", () => true, (g, _, v) => g.set("a", v)],
  ["setB", (g) => g.kindOf("b") === "state", (g, _, v) => g.set("b", v)],
  ["setXs", (g) => g.kindOf("x::s") === "state", (g, _, v) => g.set("x::s", v)],
  ["removeC", (g) => g.kindOf("c") === "derived", (g, m) => (g.remove("c"), removed(m, "c"))],
  [
    "readdC",
    (g, m) => g.kindOf("b") === "state" && canReadd(m, "c"),
    (g, m) => (g.derived("c", ["a", "b"], pair), readded(m, "c")),
  ],
  ["removeReaddC", (g) => g.kindOf("c") === "derived", (g) => g.batch(() => (g.remove("c"), g.derived("c", ["a", "b"], pair)))],
  [
    "removeBC",
    (g) => g.kindOf("c") === "derived" && g.kindOf("b") === "state",
    (g, m) => (g.batch(() => (g.remove("c"), g.remove("b"))), removed(m, "c")),
  ],
  [
    "readdBC",
    (g, m) => g.kindOf("b") === undefined && canReadd(m, "c"),
    (g, m, v) => {
      g.batch(() => (g.addState("b", 5, { unit: `kg${v % 3}` }), g.derived("c", ["a", "b"], pair)));
      readded(m, "c");
    },
  ],
  [
    "unmountX",
    (g) => g.hasMount("x"),
    (g, m) => {
      const had = g.kindOf("x::d") === "derived";
      g.unmount("x");
      if (had) removed(m, "x::d");
    },
  ],
  ["mountOnlyX", (g) => !g.hasMount("x"), (g) => g.mount("x")],
  [
    "mountBuildX",
    (g, m) => !g.hasMount("x") && canReadd(m, "x::d"),
    (g, m) => (g.batch(() => (g.mount("x"), buildX(g))), readded(m, "x::d")),
  ],
  [
    "buildX",
    (g, m) => g.hasMount("x") && g.kindOf("x::s") === undefined && canReadd(m, "x::d"),
    (g, m) => (g.batch(() => buildX(g)), readded(m, "x::d")),
  ],
];

const step = fc.record({ wave: fc.nat(), value: fc.nat(99), poll: fc.boolean() });
let runs = 0;

it("random waves: at every poll the follower's graph is restore's at the frame it reports", async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(1, 2, 3, DEFAULT_HOLD_REMOVAL_POLLS), fc.array(step, { minLength: 10, maxLength: 40 }), async (hold, steps) => {
      try {
        const { live, graph, follower, handle, write, pollAndCheck } = await setup(`follow-hold-random-${runs++}`, hold);
        const m: Model = { hold, polls: 0, open: new Map(), removals: 0 };
        const log: string[] = [];
        const poll = async (why: string): Promise<void> => {
          await handle.flush();
          await pollAndCheck(`${why} (hold ${hold}: ${log.join(",")})`);
          m.polls++;
          for (const [path, { until }] of m.open) {
            if (m.polls > until) m.open.delete(path);
          }
        };
        for (const s of steps) {
          const ok = waves.filter(([, can]) => can(live, m));
          const [name, , wave] = ok[s.wave % ok.length] as Wave;
          log.push(name);
          await write((g) => wave(g, m, s.value)); // flushes: a wave's frames are stored before the next
          if (s.poll) {
            log.push("|poll");
            await poll("poll");
          }
        }
        // Every hold runs out or its re-add is read: the follower shows the writer's graph.
        await poll("drain");
        for (let i = 0; i < 2 * hold && follower.lag().frames > 0; i++) await poll("drain");
        expect(follower.lag().frames).toBe(0);
        expect(graph.snapshot(), log.join(",")).toEqual(live.snapshot());
      } finally {
        for (const c of cleanups.splice(0).reverse()) await c();
      }
    }),
    { seed: 14, numRuns: 30 },
  );
}, 300_000);
