/**
 * CI smoke test of the benchmarks (issue 5): `npm run bench -- --quick` runs every suite end to end and writes
 * its JSON report. No timing is asserted; only that each suite ran and reported figures and goal verdicts.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "bench-smoke-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Report {
  mode: string;
  machine: Record<string, unknown>;
  packages: Record<string, unknown>;
  suites: Array<{ id: number; title: string; rows: unknown[] }>;
  summary: Array<{ id: string; goal: string; status: string; suite: number }>;
}

describe("npm run bench -- --quick", () => {
  it("runs every suite (PostgreSQL on its own throwaway server included) and writes a report with machine facts, versions and verdicts", () => {
    const out = join(dir, "latest.json");
    const run = spawnSync(process.execPath, [join(root, "dist/bench/run.js"), "--quick", "--out", out], {
      cwd: root,
      encoding: "utf8",
      timeout: 240_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain("## Summary");
    const report = JSON.parse(readFileSync(out, "utf8")) as Report;
    expect(report.mode).toBe("quick");
    expect(Object.keys(report.machine).length).toBeGreaterThan(0);
    expect(report.packages).toHaveProperty("better-sqlite3");
    expect(report.suites.map((s) => s.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (const suite of report.suites) expect(suite.rows.length, suite.title).toBeGreaterThan(0);
    expect(report.summary.length).toBeGreaterThan(0);
    for (const g of report.summary) expect(["met", "missed", "info"]).toContain(g.status);
    // The paced goal's fair counterpart: storage's share of a graph update, beside an lmdb put's.
    expect(report.summary.find((g) => g.id === "1.pacedStorage")?.status).toBe("info");
    // The paced goal is read like for like: both comparisons stated (the same record, the same graph by hand), and
    // the paced kv rows each ran in a fresh process (as the graph rows do), not in the bench's own.
    const paced = report.summary.find((g) => g.id === "1.paced") as { goal: string; detail: string } | undefined;
    expect(paced?.goal).toContain("like for like");
    expect(paced?.detail).toMatch(/\(1\) engine kv save .* vs lmdb put .* of suite 1's record/);
    expect(paced?.detail).toMatch(/\(2\) graph update through the engine .* vs persisted by hand /);
    const suite1 = report.suites.find((s) => s.id === 1) as { figures?: { paced?: { runs?: Record<string, Array<{ pid?: number }>> } } } | undefined;
    const pids = Object.values(suite1?.figures?.paced?.runs ?? {}).flatMap((runs) => runs.map((r) => r.pid));
    expect(pids).toHaveLength(3);
    expect(new Set([...pids, run.pid]).size).toBe(4);
  }, 300_000);
});
