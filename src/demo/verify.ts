/**
 * Verification in a fresh process: build the graph from code, restore it from the store to the last seq the
 * killed writer acknowledged, and compare digests. A second, unbounded restore shows how far the store is
 * durable (at least the acknowledged seq: anything less would be lost acknowledged data).
 */
import { once } from "node:events";
import { openStorageEngine } from "../engine/index.js";
import { restoreSnapshot } from "../persistence/restore.js";
import { sendToParent, spawnRole, type ChildMessage } from "./ipc.js";
import { roleArgs, type DemoOptions } from "./options.js";
import { buildServerGraph } from "./server-graph.js";
import { demoStore, enginePair, graphDigest } from "./store.js";

/** The `--verify` role. */
export async function runVerifyChild(opts: DemoOptions): Promise<void> {
  if (opts.targetSeq === undefined) throw new TypeError("--verify needs --target-seq");
  const engine = openStorageEngine({ threads: 1 });
  try {
    const store = demoStore(opts.dataDir);
    const graph = buildServerGraph(opts.nodes).graph;
    const started = performance.now();
    const r = await restoreSnapshot(graph, { ...enginePair(engine, store), targetSeq: opts.targetSeq });
    const restoreMs = performance.now() - started;
    const digest = graphDigest(graph);
    const full = await restoreSnapshot(buildServerGraph(opts.nodes).graph, enginePair(engine, store));
    await sendToParent({
      type: "verified",
      digest,
      finalSeq: r.finalSeq,
      replayedFrames: r.replayedFrames,
      skippedFrames: r.skippedFrames,
      restoreMs,
      durableSeq: full.finalSeq,
    });
  } finally {
    await engine.close();
  }
}

export interface VerifyOutcome {
  ok: boolean;
  result: Extract<ChildMessage, { type: "verified" }> | undefined;
  error: string | undefined;
}

/** Restores in a fresh process and checks it reproduces `expected` (the digest acknowledged at `seq`). */
export async function verifyInFreshProcess(opts: DemoOptions, seq: number, expected: string): Promise<VerifyOutcome> {
  const child = spawnRole(roleArgs(opts, "verify", { "target-seq": String(seq) }));
  const out: VerifyOutcome = { ok: false, result: undefined, error: undefined };
  const guard = setTimeout(() => child.kill("SIGKILL"), 300_000);
  child.on("message", (msg: ChildMessage) => {
    if (msg.type === "verified") out.result = msg;
    else if (msg.type === "error") out.error = msg.message;
  });
  const [code] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
  clearTimeout(guard);
  if (out.result === undefined && out.error === undefined) out.error = `the verifying process exited with code ${String(code)}`;
  const r = out.result;
  out.ok = r !== undefined && r.finalSeq === seq && r.digest === expected && r.durableSeq >= seq;
  return out;
}
