/**
 * `node dist/bench/flush-group.js [--saves 300000] [--rounds 10]`: explicit flushes through the engine, which share
 * a commit when the actor takes them in one run over its queued messages (docs/design.md §3.30). Two workloads on a
 * SQLite file with the engine's default bounds, a kv tier that never flushes by itself (debounce 60 s):
 * - a flush per save: `save(); flush()` (not awaited) in a loop, `await drained()` on backpressure, a turn every
 *   5000 saves; wall time until every flush resolved;
 * - 1000 concurrent handlers per turn, each `save(); await flush()`; wall time per round (median) and in all.
 * `--paced [--loops 20] [--lone 3000] [--memory]`: instead, paced handlers, each turn of each its own message:
 * - 1000 handlers each looping `save(); await flush()` `loops` times, each resuming in an event of its own (a busy
 *   server's request handlers: each turn is its own message);
 * - one handler looping `save(); await flush()` `lone` times (must not get slower);
 * wall time, and backend transactions per flush (the actor's internal `commits` counter).
 * Not part of `npm run bench`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openStorageEngine } from "../src/engine/index.js";
import { ActorCounters } from "../src/engine/actor-counters.js";
import { StorageError } from "../src/errors.js";

const { values: args } = parseArgs({
  options: {
    saves: { type: "string", default: "300000" },
    rounds: { type: "string", default: "10" },
    paced: { type: "boolean", default: false },
    loops: { type: "string", default: "20" },
    lone: { type: "string", default: "3000" },
    memory: { type: "boolean", default: false },
  },
});
const SAVES = Number(args.saves);
const ROUNDS = Number(args.rounds);
const HANDLERS = 1000;
const record = (n: number): object => ({ name: "record", n, tags: ["a", "b"], at: "2026-12-06T00:00:00Z" });

// The engine keeps each store's counters to itself: the connection sets one at its actor's start, which finds them.
const counters = new Set<ActorCounters>();
const set = ActorCounters.prototype.set;
ActorCounters.prototype.set = function (this: ActorCounters, ...a: Parameters<typeof set>) {
  counters.add(this);
  return set.apply(this, a);
};
const commits = (): number => [...counters].reduce((n, c) => n + c.get("commits"), 0);

/**
 * A busy server's requests: each waiting handler resumes in an event-loop turn of its own, one per turn, so each
 * handler's save + flush is a message of its own (the engine posts one message per turn).
 */
const waiting: Array<() => void> = [];
let pumping = false;
function nextSlot(): Promise<void> {
  return new Promise((resume) => {
    waiting.push(resume);
    if (pumping) return;
    pumping = true;
    const step = (): void => {
      const resume = waiting.shift();
      if (resume === undefined) return void (pumping = false);
      resume();
      queueMicrotask(() => setImmediate(step)); // after the handler's turn queued its message's send
    };
    setImmediate(step);
  });
}

const dir = mkdtempSync(join(tmpdir(), "flush-group-"));
const engine = openStorageEngine({ threads: 1 });
if (args.paced) {
  try {
    // --memory: a memory store, the actor's own cost without the disk's (fsync dominates a lone writer on SQLite).
    const store = args.memory ? ({ kind: "memory", name: "p" } as const) : ({ kind: "sqlite", path: join(dir, "p.db") } as const);
    const kv = engine.kv<object>(store, { name: "kv", debounceMs: 60_000 });
    kv.save("warm", record(0));
    await kv.flush();
    const loops = Number(args.loops);
    let c0 = commits();
    let t0 = performance.now();
    await Promise.all(
      Array.from({ length: HANDLERS }, async (_, h) => {
        for (let i = 0; i < loops; i++) {
          await nextSlot();
          kv.save(`h${h}-${i}`, record(i));
          await kv.flush();
        }
      }),
    );
    let ms = performance.now() - t0;
    const n = HANDLERS * loops;
    console.log(`paced ${HANDLERS} handlers x ${loops}: ${ms.toFixed(0)} ms, ${Math.round((n * 1000) / ms)} flushes/s, ${((commits() - c0) / n).toFixed(3)} commits per flush`);
    const lone = Number(args.lone);
    c0 = commits();
    t0 = performance.now();
    for (let i = 0; i < lone; i++) {
      kv.save(`lone-${i}`, record(i));
      await kv.flush();
    }
    ms = performance.now() - t0;
    console.log(`paced lone handler x ${lone}: ${ms.toFixed(0)} ms, ${((ms * 1000) / lone).toFixed(1)} µs per flush, ${((commits() - c0) / lone).toFixed(3)} commits per flush`);
    console.log(`load average ${loadavg()[0]!.toFixed(1)}`);
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}
try {
  const kv = engine.kv<object>({ kind: "sqlite", path: join(dir, "b.db") }, { name: "kv", debounceMs: 60_000 });
  kv.save("warm", record(0));
  await kv.flush();

  let t0 = performance.now();
  const flushes: Promise<void>[] = [];
  let rejected = 0;
  for (let i = 0; i < SAVES; ) {
    try {
      kv.save(`k${i}`, record(i));
      flushes.push(kv.flush().catch(() => void rejected++));
      i++;
    } catch (err) {
      if (!(err instanceof StorageError) || err.code !== "backpressure") throw err;
      await kv.drained!();
    }
    if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(flushes);
  const perSaveMs = performance.now() - t0;
  console.log(`flush per save: ${SAVES} saves ${(perSaveMs / 1000).toFixed(1)} s, ${Math.round((SAVES * 1000) / perSaveMs)} flushes/s, ${rejected} rejected`);

  t0 = performance.now();
  const roundMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    await Promise.all(
      Array.from({ length: HANDLERS }, async (_, i) => {
        kv.save(`r${r}h${i}`, record(i));
        await kv.flush();
      }),
    );
    roundMs.push(performance.now() - t);
  }
  roundMs.sort((a, b) => a - b);
  const allMs = performance.now() - t0;
  console.log(
    `${HANDLERS} concurrent save + flush: median round ${roundMs[roundMs.length >> 1]!.toFixed(1)} ms, ` +
      `${Math.round((ROUNDS * HANDLERS * 1000) / allMs)} flushes/s over ${ROUNDS} rounds`,
  );
  console.log(`load average ${loadavg()[0]!.toFixed(1)}`);
} finally {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
}
