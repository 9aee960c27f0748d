/**
 * `npm run demo` end to end (the compiled entry, as npm runs it): a quick run in a temp data dir must exit 0 and
 * report a verified restore after the SIGKILL; bad options exit 2 naming the option. Plus the option parser and
 * the summary table on their own.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parseDemoOptions } from "../../src/demo/options.js";
import { renderTable } from "../../src/demo/summary.js";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ENTRY = join(REPO_ROOT, "dist/src/demo/run.js");
const tmp = mkdtempSync(join(tmpdir(), "grf-demo-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runDemo(args: readonly string[]): Promise<Run> {
  if (!existsSync(ENTRY)) throw new Error(`${ENTRY} is missing: run \`npm run build\` first (npm test does)`);
  return new Promise((resolve) => {
    execFile(process.execPath, [ENTRY, ...args], { cwd: tmp, timeout: 180_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

describe("npm run demo", () => {
  it("runs the quick demo: load, SIGKILL mid-write, restore verified in a fresh process, exit 0", async () => {
    const dataDir = join(tmp, "data");
    const run = await runDemo(["--quick", "--data-dir", dataDir]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    // Piped output: plain progress lines, then the three phases and the summary.
    expect(run.stdout).toMatch(/changes\/s \| durable seq/);
    expect(run.stdout).toMatch(/killed \(SIGKILL\): last acknowledged durable seq \d+/);
    expect(run.stdout).toMatch(/│ verified +│ +✓ restored graph = last acked state │/);
    for (const row of ["changes/s", "frames written", "bytes written", "compactions", "flush p50 / p99", "event-loop delay p99", "restore time"]) {
      expect(run.stdout).toContain(`│ ${row}`);
    }
    expect(existsSync(join(dataDir, "demo.db"))).toBe(true);
  }, 200_000);

  it("exits 2 with a message naming a bad option", async () => {
    const run = await runDemo(["--nodes", "0"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--nodes must be an integer >= 1/);
    const unknown = await runDemo(["--no-such-option"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Usage: npm run demo/);
  });
});

describe("demo options", () => {
  it("defaults to a 10 s run on 5,000 sessions under ./data, and --quick shrinks it", () => {
    const d = parseDemoOptions([]);
    expect(d).toMatchObject({ role: "main", seconds: 10, nodes: 5000, dataDir: join(process.cwd(), "data") });
    const q = parseDemoOptions(["--quick", "--data-dir", "x", "--nodes", "50"]);
    expect(q).toMatchObject({ seconds: 2.5, nodes: 50, dataDir: join(process.cwd(), "x") });
    expect(parseDemoOptions(["--help"])).toBeUndefined();
  });

  it("rejects bad values with the option's name", () => {
    expect(() => parseDemoOptions(["--seconds", "abc"])).toThrow(TypeError);
    expect(() => parseDemoOptions(["--seconds", "abc"])).toThrow(/--seconds/);
    expect(() => parseDemoOptions(["--nodes", "2.5"])).toThrow(RangeError);
    expect(() => parseDemoOptions(["--batch", "-1"])).toThrow(/--batch/);
  });
});

describe("summary table", () => {
  it("aligns labels left and values right inside a box", () => {
    const text = renderTable("summary", [["a", "1"], "---", ["longer label", "22"]]);
    expect(text.split("\n")).toEqual([
      "┌───────────────────┐",
      "│ summary           │",
      "├──────────────┬────┤",
      "│ a            │  1 │",
      "├──────────────┼────┤",
      "│ longer label │ 22 │",
      "└──────────────┴────┘",
    ]);
  });
});
