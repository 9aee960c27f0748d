/**
 * `node dist/bench/frame-table.js [--frames 20000] [--reps 5] [--sync FULL]`: what a frame table keyed by
 * (graph, seq INTEGER) would buy over the key-value table the WAL frames live in today (issue 13 item 4,
 * docs/design.md §3.20). better-sqlite3 directly, the backend's pragmas (WAL journal, normal locking,
 * synchronous FULL unless --sync says otherwise), the same pre-encoded sealed frames, 1000 per transaction,
 * into a fresh database per layout; each repetition appends `frames` more frames to every table, layouts
 * interleaved. Layouts:
 * - kv TEXT key (today): `k TEXT PRIMARY KEY, v BLOB` (a rowid table plus its key index), key `<graph>/wal/<seq:20>`;
 * - kv TEXT key WITHOUT ROWID: the same keys in one B-tree (tells a TEXT key from a second B-tree);
 * - frames (graph, seq) WITHOUT ROWID: `graph TEXT, seq INTEGER, v BLOB, PRIMARY KEY (graph, seq)`;
 * - frames (graph, seq) rowid table: the same columns, plus the primary-key index;
 * - frames seq INTEGER PRIMARY KEY: one graph per table (the rowid itself; the upper bound).
 * Prints frames/s (median of the repetitions) and each layout against today's. Not part of `npm run bench`.
 */
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { graphWalPrefix, walFrameCodec, walFrameKey } from "../src/wal/index.js";
import { rotatingValues } from "./lib/graphs.js";
import { asUnsealed, makeFrameBody, makeKeys } from "./lib/workload.js";
import { formatNumber as fmt } from "./report.js";

const { values: args } = parseArgs({
  options: { frames: { type: "string", default: "20000" }, reps: { type: "string", default: "5" }, sync: { type: "string", default: "FULL" } },
});
const FRAMES = Number(args.frames);
const REPS = Number(args.reps);
const SYNC = args.sync!;
const CHUNK = 1000;
const GRAPH = "bench-graph";

interface Layout {
  readonly name: string;
  readonly schema: string;
  readonly insert: string;
  /** Statement parameters of frame `seq`. */
  params(seq: number, bytes: Uint8Array): unknown[];
}

const prefix = graphWalPrefix(GRAPH);
const LAYOUTS: readonly Layout[] = [
  {
    name: "kv TEXT key (today)",
    schema: "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL)",
    insert: "INSERT OR REPLACE INTO t (k, v) VALUES (?, ?)",
    params: (seq, v) => [walFrameKey(prefix, seq), v],
  },
  {
    name: "kv TEXT key WITHOUT ROWID",
    schema: "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
    insert: "INSERT OR REPLACE INTO t (k, v) VALUES (?, ?)",
    params: (seq, v) => [walFrameKey(prefix, seq), v],
  },
  {
    name: "frames (graph, seq) WITHOUT ROWID",
    schema: "CREATE TABLE t (graph TEXT NOT NULL, seq INTEGER NOT NULL, v BLOB NOT NULL, PRIMARY KEY (graph, seq)) WITHOUT ROWID",
    insert: "INSERT OR REPLACE INTO t (graph, seq, v) VALUES (?, ?, ?)",
    params: (seq, v) => [GRAPH, seq, v],
  },
  {
    name: "frames (graph, seq) rowid table",
    schema: "CREATE TABLE t (graph TEXT NOT NULL, seq INTEGER NOT NULL, v BLOB NOT NULL, PRIMARY KEY (graph, seq))",
    insert: "INSERT OR REPLACE INTO t (graph, seq, v) VALUES (?, ?, ?)",
    params: (seq, v) => [GRAPH, seq, v],
  },
  {
    name: "frames seq INTEGER PRIMARY KEY (one graph)",
    schema: "CREATE TABLE t (seq INTEGER PRIMARY KEY, v BLOB NOT NULL)",
    insert: "INSERT OR REPLACE INTO t (seq, v) VALUES (?, ?)",
    params: (seq, v) => [seq, v],
  },
];

const dir = mkdtempSync(join(tmpdir(), "frame-table-"));
try {
  const paths = makeKeys(CHUNK, "n");
  const values = rotatingValues(CHUNK);
  const encoded = paths.map((p, j) => walFrameCodec.encode(asUnsealed(makeFrameBody(j + 1, p, values[j]!))));
  const open = LAYOUTS.map((layout, i) => {
    const db = new Database(join(dir, `${i}.db`));
    db.pragma("journal_mode = WAL");
    db.pragma(`synchronous = ${SYNC}`);
    db.exec(layout.schema);
    const insert = db.prepare(layout.insert);
    let seq = 0;
    const commit = db.transaction(() => {
      for (let j = 0; j < CHUNK; j++) insert.run(...layout.params(++seq, encoded[j]!));
    });
    return { layout, db, commit };
  });
  const samples = open.map(() => [] as number[]);
  const load = loadavg()[0]!;
  for (let rep = 0; rep < REPS; rep++) {
    open.forEach(({ commit }, i) => {
      const t0 = performance.now();
      for (let c = 0; c < FRAMES / CHUNK; c++) commit();
      samples[i]!.push((FRAMES * 1000) / (performance.now() - t0));
    });
  }
  for (const { db } of open) db.close();
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const today = median(samples[0]!);
  console.log(
    `${FRAMES} frames per repetition (${encoded[0]!.byteLength}-byte sealed frames, ${CHUNK} per transaction), ${REPS} repetitions interleaved, ` +
      `synchronous=${SYNC}, load average at start ${load.toFixed(2)}`,
  );
  console.log("| layout | frames/s (median) | min | max | vs today |\n|---|---|---|---|---|");
  open.forEach(({ layout }, i) => {
    const xs = samples[i]!;
    console.log(`| ${layout.name} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} | ${fmt(median(xs) / today)}× |`);
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
