/**
 * The demo's load phase with a store behind the writer (task 345, for aa57792): attach reports that once per spell as
 * StorageError "backpressure" (nothing lost: the waves wait), which the phase took for a failure, and the demo failed
 * on a loaded machine (a CI failure). The store is behind here by the phase's test-only internals: the engine's
 * maxPendingBytes is 4 KiB, less than one wave, so a wave posted while another is pending is refused. The phase
 * succeeds, and the store restores to the graph the phase last acknowledged as durable. A real failure still fails
 * the phase: its store locked by another connection once written, its writes fail store-busy; the phase closes its
 * engine then, so the process (a child here) ends by itself.
 * Real parts: the demo's SQLite store in a temp directory, the engine's worker thread, a child process.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { runLoadPhase } from "../../src/demo/load-phase.js";
import { parseDemoOptions, type DemoOptions } from "../../src/demo/options.js";
import { buildServerGraph } from "../../src/demo/server-graph.js";
import { demoStore, enginePair, graphDigest, resetStore } from "../../src/demo/store.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";

const LOCKED_PHASE = fileURLToPath(new URL("./fixtures/locked-load-phase.mjs", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "grf-demo-load-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function quickOptions(name: string): DemoOptions {
  const opts = parseDemoOptions(["--quick", "--seconds", "1", "--data-dir", join(tmp, name)])!;
  resetStore(opts.dataDir);
  return opts;
}

const isBackpressure = (e: Error): boolean => e instanceof StorageError && e.code === "backpressure";

it("a store behind the writer: attach reports backpressure, the phase succeeds, and the store holds what it acknowledged", async () => {
  const opts = quickOptions("behind");
  const heard: Error[] = [];
  let acknowledged: { digest: string; seq: number } | undefined;
  const result = await runLoadPhase(opts, false, {
    maxPendingBytes: 4096,
    heard: (err) => heard.push(err),
    durable: (graph, seq) => (acknowledged = { digest: graphDigest(graph), seq }),
  });
  expect(heard.length).toBeGreaterThan(0);
  expect(heard.filter((e) => !isBackpressure(e))).toEqual([]);
  expect(acknowledged?.seq).toBe(result.durableSeq);
  const engine = openStorageEngine({ threads: 1 });
  try {
    const graph = buildServerGraph(opts.nodes).graph;
    const restored = await restoreSnapshot(graph, enginePair(engine, demoStore(opts.dataDir)));
    expect(restored.finalSeq).toBeGreaterThanOrEqual(result.durableSeq);
    expect(graphDigest(graph)).toBe(acknowledged?.digest);
  } finally {
    await engine.close();
  }
}, 120_000);

it("a real failure still fails the phase, which closes its engine: its store locked by another connection (store-busy)", async () => {
  const dataDir = join(tmp, "locked");
  const child = spawn(process.execPath, [LOCKED_PHASE, dataDir], { stdio: ["ignore", "pipe", "inherit"] });
  // A guard, not a measure: a phase that left its engine open kept the process from ending.
  const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const [code, signal] = (await once(child, "close")) as [number | null, NodeJS.Signals | null];
  clearTimeout(guard);
  expect({ code, signal }).toEqual({ code: 1, signal: null });
  expect(out).toMatch(/^failed store-busy \(heard store-busy/);
}, 120_000);
