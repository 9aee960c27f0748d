/**
 * Suite 7: what SQLite's normal locking mode costs (issue 14 item 2). SQLite stores run in WAL mode with normal
 * locking so that read-only handles of other processes can read a live store (docs/design.md §3.17); EXCLUSIVE
 * locking mode, which shuts them out, skips the shared-memory WAL index and the lock calls of every transaction.
 * Two stores in the same run, identical but for `PRAGMA locking_mode` (set before WAL mode is entered, as a store
 * opened EXCLUSIVE would): the backend's table and statements, `synchronous = FULL`. Reads are single-key SELECTs
 * outside a transaction; writes are single-put flushes (one put, one commit, one fsync).
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { info } from "../lib/goals.js";
import { batched, latencyOf, newBench, type Budget } from "../lib/timing.js";
import type { Row, Suite, SuiteOutput } from "../lib/types.js";

const KEYS = 1000;
const VALUE_BYTES = 256;

type Mode = "NORMAL" | "EXCLUSIVE";

function openStore(path: string, mode: Mode): Database.Database {
  const db = new Database(path);
  db.pragma(`locking_mode = ${mode}`);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL)");
  return db;
}

export const sqliteLockingSuite: Suite = {
  id: 7,
  title: "SQLite normal vs exclusive locking",
  async run(ctx): Promise<SuiteOutput> {
    const budget: Budget = ctx.quick
      ? { time: 150, iterations: 10, warmupTime: 30, warmupIterations: 3 }
      : { time: 1500, iterations: 50, warmupTime: 200, warmupIterations: 10 };
    const readsPerSample = ctx.quick ? 200 : 1000;
    const dir = ctx.tempDir("sqlite-locking");
    const value = Buffer.alloc(VALUE_BYTES, 7);
    const stores = (["NORMAL", "EXCLUSIVE"] as const).map((mode) => {
      const db = openStore(join(dir, `${mode.toLowerCase()}.db`), mode);
      const put = db.prepare("INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v");
      db.transaction(() => {
        for (let i = 0; i < KEYS; i++) put.run(`key/${i}`, value);
      })();
      const get = db.prepare("SELECT v FROM kv WHERE k = ?").pluck();
      return { mode, db, put, get };
    });

    const bench = newBench("sqlite locking", budget);
    const name = (what: string, mode: Mode): string => `${what}, ${mode === "NORMAL" ? "normal (ours)" : "exclusive"}`;
    for (const s of stores) {
      bench.add(
        name("read", s.mode),
        batched(readsPerSample, (i) => (s.get.get(`key/${i % KEYS}`) as Buffer).byteLength),
      );
    }
    // Every write changes its row: SQLite skips an upsert of identical bytes (no page written, no fsync).
    let n = 0;
    for (const s of stores) {
      bench.add(name("single-write flush", s.mode), () => {
        value.writeUInt32LE(++n);
        s.put.run(`key/${n % KEYS}`, value);
      });
    }
    ctx.log(`suite 7: reads (${readsPerSample} per sample) and single-write flushes, normal vs exclusive locking`);
    try {
      await bench.run();
    } finally {
      for (const s of stores) s.db.close();
    }

    const meanUs = (task: string): number => latencyOf(bench.getTask(task)!).meanMs * 1000;
    const rows: Row[] = [];
    const cost: Record<string, number> = {};
    for (const what of ["read", "single-write flush"]) {
      const exclusive = meanUs(name(what, "EXCLUSIVE"));
      for (const s of stores) {
        const task = bench.getTask(name(what, s.mode))!;
        const lat = latencyOf(task);
        const us = lat.meanMs * 1000;
        rows.push({ name: name(what, s.mode), opsPerSec: 1e6 / us, meanUs: us, p99Us: lat.p99Ms * 1000, vsExclusive: us / exclusive });
      }
      cost[what] = meanUs(name(what, "NORMAL")) / exclusive;
    }
    const pct = (r: number | undefined): string => `${(((r ?? NaN) - 1) * 100).toFixed(0)}%`;

    return {
      title: "SQLite normal vs exclusive locking",
      legend: [
        `Two stores of ${KEYS} keys (${VALUE_BYTES}-byte values), WAL, synchronous FULL, the backend's table and statements; only \`locking_mode\` differs.`,
        `read = one SELECT by key outside a transaction (a sample is the mean of ${readsPerSample}); single-write flush = one upsert of changed bytes committed alone (one fsync).`,
        "× exclusive = time / the same operation on the EXCLUSIVE store.",
      ],
      columns: [
        { key: "name", label: "operation" },
        { key: "opsPerSec", label: "ops/s", kind: "number" },
        { key: "meanUs", label: "mean µs", kind: "number" },
        { key: "p99Us", label: "p99 µs", kind: "number" },
        { key: "vsExclusive", label: "× exclusive", kind: "ratio" },
      ],
      rows,
      goals: [
        info(
          "7.normal-locking",
          "what normal locking (readers can read a live store) costs against EXCLUSIVE locking mode (docs/design.md §3.17)",
          `reads ${pct(cost.read)}, single-write flushes ${pct(cost["single-write flush"])} (normal vs exclusive, same run)`,
        ),
      ],
      config: { keys: KEYS, valueBytes: VALUE_BYTES, readsPerSample, budget },
      figures: { normalOverExclusive: cost },
    };
  },
};
