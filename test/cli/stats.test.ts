/** `stats`: a real load through the worker engine, then its stats table (human and --json). */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, storePath } from "./fixtures/stores.js";

const tmp = tempDir("stats");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

interface StatsDoc {
  load: { frames: number; flushes: number; elapsedMs: number };
  stats: Array<{ store: Record<string, string>; alive: boolean; flushes: number; failedFlushes: number; frames: number; bytesWritten: number; pendingEntries: number }>;
}

describe("stats", () => {
  it("runs the built-in load on a temporary store and prints the engine's stats table", () => {
    const r = runCli(["stats", "--frames", "250", "--batch", "50"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^load: baseline \+ 250 frames in 5 flushes, \d+ ms \(\d+ frames\/s\)\n/);
    for (const row of ["alive", "queue depth", "pending entries", "flushes", "failed flushes", "flush latency p50", "flush latency p99", "bytes written", "frames (backend writes)", "last error"]) {
      expect(r.stdout).toMatch(new RegExp(`\\n${row.replace(/[()]/g, "\\$&")} +\\S`));
    }
    expect(r.stdout).toMatch(/\nframes \(backend writes\) +251\n/); // 250 frames + the baseline
    expect(r.stdout).toMatch(/\nfailed flushes +0\n/);
  });

  it.each(KINDS)("--json on a %s temp store: one document with the load and the stats", (kind) => {
    const r = runCli(["stats", "--backend", kind, "--frames", "120", "--batch", "40", "--json"]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as StatsDoc;
    expect(doc.load).toMatchObject({ frames: 120, flushes: 3 });
    expect(doc.stats).toHaveLength(1);
    expect(doc.stats[0]).toMatchObject({ alive: true, failedFlushes: 0, frames: 121, pendingEntries: 0 });
    expect(doc.stats[0]!.store.kind).toBe(kind);
    expect(doc.stats[0]!.bytesWritten).toBeGreaterThan(0);
    // The temporary store is removed afterwards.
    const where = doc.stats[0]!.store.path ?? doc.stats[0]!.store.dir;
    expect(existsSync(where!)).toBe(false);
  });

  it.each(KINDS)("on a given %s store it loads a scratch graph, then removes it; an existing graph name is refused", async (kind) => {
    const path = storePath(kind, tmp.path("given"));
    await buildStore(kind, path, [{ name: "g" }]);
    const r = runCli(["stats", path, "--frames", "30", "--json"]);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as StatsDoc).stats[0]!.frames).toBe(31);
    const after = JSON.parse(runCli(["inspect", path, "--json"]).stdout) as { graphs: Array<{ name: string; wal: { frames: number } }> };
    expect(after.graphs.map((g) => [g.name, g.wal.frames])).toEqual([["g", 10]]);

    const clash = runCli(["stats", path, "--graph", "g"]);
    expect(clash.code).toBe(64);
    expect(clash.stderr).toBe(`error usage: graph "g" already exists in ${path}: pass another --graph\n`);
  });
});
