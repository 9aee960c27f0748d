/**
 * Micro-benchmark of the tier save path's key checks (issue 12 item 1): nanoseconds per accepted write of an inline
 * kv save, snapshot save and appendEntries (with keyOf) into a memory backend, with flushes held (a long debounce)
 * so only the save path is measured. Run it on two commits to compare (`npm run build && node
 * dist/bench/key-checks.js`); it prints figures only and asserts nothing (machines are noisy).
 */
import { memoryBackend } from "../src/backend/memory.js";
import { appendLogStorage } from "../src/tier/append-log.js";
import { kvStorage } from "../src/tier/kv.js";
import { snapshotStorage } from "../src/tier/snapshot.js";

const HELD = 3_600_000;
const ROUNDS = 21;
const KEYS = Array.from({ length: 1024 }, (_, i) => `graph/node-${i}/value`);

/** Fastest round's ns per op over ROUNDS rounds of `n` ops, after one warm-up round (the least disturbed by other load). */
function nsPerOp(n: number, op: (i: number) => void): number {
  const rounds: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) op(i);
    const ns = Number(process.hrtime.bigint() - t0) / n;
    if (r > 0) rounds.push(ns);
  }
  return Math.min(...rounds);
}

const kv = kvStorage<number>(memoryBackend(), { debounceMs: HELD, maxPendingBytes: Number.POSITIVE_INFINITY });
const snap = snapshotStorage<{ id: number }>(memoryBackend(), {
  debounceMs: HELD,
  maxPendingBytes: Number.POSITIVE_INFINITY,
  keyOf: (r) => KEYS[r.id & 1023]!,
});
const log = appendLogStorage<{ b: number }>(memoryBackend(), {
  name: "log",
  debounceMs: HELD,
  maxPendingBytes: Number.POSITIVE_INFINITY,
  keyOf: (e) => KEYS[e.b & 1]!,
});
const one = { id: 0 };
const pair = [{ b: 0 }, { b: 1 }];

const rows: Array<[string, number]> = [
  ["kv save", nsPerOp(100_000, (i) => kv.save(KEYS[i & 1023]!, i))],
  ["snapshot save (keyOf)", nsPerOp(100_000, (i) => {
    one.id = i;
    snap.save(one);
  })],
  ["appendEntries, 2 buckets", nsPerOp(20_000, (i) => {
    // Held entries would pile up: a rollback now and then keeps the pending buckets small.
    if ((i & 1023) === 0) log.rollback();
    log.appendEntries(pair);
  })],
];
// Nothing held is written: the close flushes only the kv and snapshot records.
log.rollback();
for (const [what, ns] of rows) console.log(`${what.padEnd(28)} ${ns.toFixed(1).padStart(8)} ns/call`);
await Promise.all([kv.close(), snap.close(), log.close()]);
