/**
 * `npm run demo`: a server-like reactive graph persisted through the storage engine to an embedded SQLite file,
 * then a writer killed with SIGKILL mid-write, then a restore in a fresh process verified against what the killed
 * writer acknowledged as durable. Exit code 0 only when the restore is verified.
 * The same module runs the crash child (`--child`) and the verifying process (`--verify`).
 */
import { join } from "node:path";
import { runCrashChild, runCrashPhase } from "./crash.js";
import { runRole } from "./ipc.js";
import { runLoadPhase } from "./load-phase.js";
import { parseDemoOptions, USAGE, type DemoOptions } from "./options.js";
import { formatInt, formatMs } from "./progress.js";
import { DB_FILE, resetStore, storeSizeBytes } from "./store.js";
import { formatBytes, renderTable, type SummaryRow } from "./summary.js";
import { runVerifyChild, verifyInFreshProcess } from "./verify.js";

async function runMain(opts: DemoOptions): Promise<boolean> {
  const tty = process.stdout.isTTY === true;
  const dbPath = join(opts.dataDir, DB_FILE);
  console.log(`graphrefly-storage demo: ${formatInt(opts.nodes)} sessions in a reactive graph, persisted to ${dbPath}`);
  resetStore(opts.dataDir);

  console.log(`\n1/3 load: ${opts.seconds} s of ${opts.batch}-update waves through the storage engine (worker thread)`);
  const load = await runLoadPhase(opts, tty);

  console.log(`\n2/3 crash: a child process writes the same way and is killed with SIGKILL mid-write`);
  const crash = await runCrashPhase(opts);
  if (crash.last !== undefined) {
    console.log(`  killed (${String(crash.signal)}): last acknowledged durable seq ${crash.last.seq} (${crash.acks} acks)`);
  }
  if (crash.error !== undefined) console.log(`  child failed: ${crash.error}`);

  console.log(`\n3/3 restore: a fresh process restores to seq ${crash.last?.seq ?? "?"} and compares digests`);
  const verify =
    crash.last !== undefined && crash.error === undefined
      ? await verifyInFreshProcess(opts, crash.last.seq, crash.last.digest)
      : { ok: false, result: undefined, error: crash.error ?? "the child acknowledged nothing" };
  if (verify.error !== undefined) console.log(`  restore failed: ${verify.error}`);

  const v = verify.result;
  const rows: SummaryRow[] = [
    ["graph", `${formatInt(opts.nodes)} sessions, ${formatInt(load.graphNodes)} nodes`],
    ["load duration", `${(load.elapsedMs / 1000).toFixed(1)} s`],
    ["changes", formatInt(load.changes)],
    ["changes/s", formatInt((load.changes * 1000) / Math.max(1, load.elapsedMs))],
    ["waves (batches)", formatInt(load.waves)],
    ["durable seq", formatInt(load.durableSeq)],
    ["frames written", formatInt(load.framesWritten)],
    ["bytes written", formatBytes(load.bytesWritten)],
    ["compactions", `${load.compactions} (${formatInt(load.deletedFrames)} frames reclaimed)`],
    ["store on disk", formatBytes(storeSizeBytes(opts.dataDir))],
    ["flush p50 / p99 (actor)", `${formatMs(load.flushP50Ms)} / ${formatMs(load.flushP99Ms)}`],
    ["flush() → durable p50 / p99", `${formatMs(load.durableP50Ms)} / ${formatMs(load.durableP99Ms)}`],
    ["event-loop delay p99", `${formatMs(load.loopP99Ms)} (graph alone: ${formatMs(load.graphOnlyLoopP99Ms)})`],
    "---",
    ["crash", crash.last ? `SIGKILL after ${((crash.killedAfterMs ?? 0) / 1000).toFixed(1)} s, ${crash.acks} acks` : "n/a"],
    ["last acked seq", crash.last ? formatInt(crash.last.seq) : "n/a"],
    ["durable past the ack", v ? `${formatInt(v.durableSeq - (crash.last?.seq ?? 0))} frames` : "n/a"],
    ["restore time", v ? `${formatMs(v.restoreMs)} (${formatInt(v.replayedFrames)} frames replayed)` : "n/a"],
    ["verified", verify.ok ? "✓ restored graph = last acked state" : "✗ MISMATCH"],
  ];
  console.log(`\n${renderTable("summary", rows)}`);
  return verify.ok;
}

async function main(argv: readonly string[]): Promise<void> {
  let opts: DemoOptions | undefined;
  try {
    opts = parseDemoOptions(argv);
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (opts === undefined) {
    console.log(USAGE);
    return;
  }
  const o = opts;
  if (o.role === "child") return runRole(() => runCrashChild(o));
  if (o.role === "verify") return runRole(() => runVerifyChild(o));
  try {
    process.exitCode = (await runMain(o)) ? 0 : 1;
  } catch (err) {
    console.error(err);
    process.exitCode = 1;
  }
}

await main(process.argv.slice(2));
