/**
 * The crash drill. The child restores the store, attaches, and writes like the main phase, acknowledging every
 * durable flush to the parent with the graph's digest at that seq; the parent SIGKILLs it mid-write. The child
 * compacts now and then with its writer paused right after an acknowledged flush, so a baseline never passes the
 * last acknowledged seq and the point in time the parent verifies stays restorable.
 */
import { once } from "node:events";
import { openStorageEngine } from "../engine/index.js";
import { attachSnapshotStorage } from "../persistence/attach.js";
import { compactGraphInEngine } from "../persistence/compaction.js";
import { restoreSnapshot } from "../persistence/restore.js";
import { sendToParent, spawnRole, type ChildMessage } from "./ipc.js";
import { LoadLoop, backlogLimit } from "./load.js";
import { roleArgs, type DemoOptions } from "./options.js";
import { mulberry32 } from "../base/prng.js";
import { DEMO_GRAPH_NAME, buildServerGraph } from "./server-graph.js";
import { demoStore, enginePair, graphDigest } from "./store.js";

const CHILD_FLUSH_EVERY_MS = 300;
const CHILD_COMPACT_EVERY_MS = 1000;

/** The `--child` role: never returns normally (the parent kills it). */
export async function runCrashChild(opts: DemoOptions): Promise<void> {
  // Orphaned (the demo itself died): stop rather than write forever.
  process.once("disconnect", () => process.exit(3));
  const engine = openStorageEngine({ threads: 1 });
  const store = demoStore(opts.dataDir);
  const server = buildServerGraph(opts.nodes);
  const graph = server.graph;
  // Restore, then attach: like a server restarting on its store (attaching first would echo the replay).
  const restored = await restoreSnapshot(graph, enginePair(engine, store));
  const handle = attachSnapshotStorage(graph, [enginePair(engine, store)], { compactEvery: Number.POSITIVE_INFINITY });
  const baselineSeq = await handle.flush();
  await sendToParent({ type: "ack", seq: baselineSeq, digest: graphDigest(graph) });
  await sendToParent({ type: "started", restoredSeq: restored.finalSeq, baselineSeq, pid: process.pid });

  let lastCompaction = performance.now();
  const compactAtAck = async (): Promise<void> => {
    const seq = handle.seq;
    const digest = graphDigest(graph);
    await handle.flush();
    await sendToParent({ type: "ack", seq, digest });
    await compactGraphInEngine(engine, store, DEMO_GRAPH_NAME);
    lastCompaction = performance.now();
  };
  await new LoadLoop({
    server,
    handle,
    random: mulberry32(opts.seed + 1),
    batch: opts.batch,
    durationMs: Number.POSITIVE_INFINITY,
    flushEveryMs: CHILD_FLUSH_EVERY_MS,
    maxBacklogFrames: backlogLimit(opts.nodes),
    onFlushStart: () => graphDigest(graph),
    onDurable: (seq, digest) => sendToParent({ type: "ack", seq, digest: digest ?? "" }),
    between: () => (performance.now() - lastCompaction >= CHILD_COMPACT_EVERY_MS ? compactAtAck() : undefined),
  }).run();
}

export interface CrashOutcome {
  acks: number;
  /** Highest acknowledged durable seq and the digest at it. */
  last: { seq: number; digest: string } | undefined;
  signal: NodeJS.Signals | null;
  /** Ms between "started" and the kill. */
  killedAfterMs: number | undefined;
  error: string | undefined;
}

/** Spawns the crash child, kills it `opts.crashAfterMs` after it started writing, and collects its acks. */
export async function runCrashPhase(opts: DemoOptions): Promise<CrashOutcome> {
  const child = spawnRole(roleArgs(opts, "child"));
  const out: CrashOutcome = { acks: 0, last: undefined, signal: null, killedAfterMs: undefined, error: undefined };
  let startedAt = 0;
  let killTimer: NodeJS.Timeout | undefined;
  // A child that never starts (e.g. cannot open the store) must not hang the demo.
  const guard = setTimeout(() => child.kill("SIGKILL"), 120_000);
  child.on("message", (msg: ChildMessage) => {
    switch (msg.type) {
      case "started":
        startedAt = performance.now();
        console.log(`  child pid ${msg.pid} restored seq ${msg.restoredSeq}, attached (baseline ${msg.baselineSeq}), writing…`);
        killTimer = setTimeout(() => {
          out.killedAfterMs = performance.now() - startedAt;
          child.kill("SIGKILL");
        }, opts.crashAfterMs);
        break;
      case "ack":
        out.acks++;
        if (out.last === undefined || msg.seq > out.last.seq) out.last = { seq: msg.seq, digest: msg.digest };
        break;
      case "error":
        out.error = msg.message;
        break;
      default:
        break;
    }
  });
  // "close" comes after the IPC channel is drained: every ack the child handed to the OS has been received.
  const [, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
  clearTimeout(guard);
  clearTimeout(killTimer);
  out.signal = signal;
  if (out.error === undefined && signal !== "SIGKILL") out.error = `the child exited by itself (signal ${String(signal)})`;
  return out;
}
