/**
 * `node dist/bench/flush-group.js [--saves 300000] [--rounds 10]`: explicit flushes through the engine, which share
 * a commit when the actor takes them in one message (docs/design.md §3.30). Two workloads on a SQLite file with the
 * engine's default bounds, a kv tier that never flushes by itself (debounce 60 s):
 * - a flush per save: `save(); flush()` (not awaited) in a loop, `await drained()` on backpressure, a turn every
 *   5000 saves; wall time until every flush resolved;
 * - 1000 concurrent handlers per turn, each `save(); await flush()`; wall time per round (median) and in all.
 * Not part of `npm run bench`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { openStorageEngine } from "../src/engine/index.js";
import { StorageError } from "../src/errors.js";

const { values: args } = parseArgs({ options: { saves: { type: "string", default: "300000" }, rounds: { type: "string", default: "10" } } });
const SAVES = Number(args.saves);
const ROUNDS = Number(args.rounds);
const HANDLERS = 1000;
const record = (n: number): object => ({ name: "record", n, tags: ["a", "b"], at: "2026-12-06T00:00:00Z" });

const dir = mkdtempSync(join(tmpdir(), "flush-group-"));
const engine = openStorageEngine({ threads: 1 });
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
