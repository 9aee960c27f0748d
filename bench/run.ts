/**
 * `npm run bench [-- --quick] [--suite 1,3] [--out file]`: runs the suites in one process (so ratios compare
 * figures taken on the same machine state), prints one Markdown table per suite and a summary line per goal,
 * and writes every figure with machine facts and package versions to bench/results/latest.json.
 * A missed goal never fails the run; a suite that crashes does (exit code 1), after the others ran.
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { gitRevision, machineFacts, packageVersions, repoRoot } from "./lib/machine.js";
import { makeTempDir, removeAllTempDirs } from "./lib/temp.js";
import type { SuiteResult } from "./lib/types.js";
import { renderHeader, renderSuite, renderSummary, writeReport, type RunReport } from "./report.js";
import { SUITES } from "./suites/index.js";

const USAGE = `usage: node dist/bench/run.js [--quick] [--suite <ids>] [--out <file>]
  --quick        small sizes and short budgets (whole run under a minute; CI smoke test)
  --suite <ids>  comma-separated suite numbers (default: all of ${SUITES.map((s) => s.id).join(",")})
  --out <file>   where to write the JSON report (default: bench/results/latest.json)`;

interface Cli {
  readonly quick: boolean;
  readonly suites: readonly number[];
  readonly out: string;
}

function parseCli(argv: string[], root: string): Cli | "help" {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      suite: { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  const known = new Set(SUITES.map((s) => s.id));
  let suites = [...known];
  if (values.suite !== undefined) {
    suites = values.suite.split(",").map((part) => {
      const id = Number(part.trim());
      if (!known.has(id)) throw new RangeError(`--suite: unknown suite "${part}" (known: ${[...known].join(", ")})`);
      return id;
    });
  }
  return {
    quick: values.quick ?? false,
    suites,
    out: values.out !== undefined ? resolve(values.out) : join(root, "bench", "results", "latest.json"),
  };
}

async function main(): Promise<number> {
  const root = repoRoot();
  let cli: Cli | "help";
  try {
    cli = parseCli(process.argv.slice(2), root);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  if (cli === "help") {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  const started = new Date();
  const t0 = performance.now();
  const head = {
    startedAt: started.toISOString(),
    mode: cli.quick ? ("quick" as const) : ("full" as const),
    machine: machineFacts(),
    packages: packageVersions(root),
    git: gitRevision(root),
  };
  process.stdout.write(renderHeader(head) + "\n\n");

  const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
  const results: SuiteResult[] = [];
  try {
    for (const suite of SUITES.filter((s) => cli.suites.includes(s.id))) {
      log(`suite ${suite.id}: ${suite.title}…`);
      const s0 = performance.now();
      let result: SuiteResult;
      try {
        const out = await suite.run({ quick: cli.quick, tempDir: makeTempDir, log });
        result = { ...out, id: suite.id, durationMs: performance.now() - s0 };
      } catch (err) {
        const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
        log(`suite ${suite.id} failed: ${message}`);
        result = {
          id: suite.id,
          title: suite.title,
          legend: [],
          columns: [],
          rows: [],
          goals: [],
          config: {},
          durationMs: performance.now() - s0,
          error: err instanceof Error ? err.message : String(err),
        };
      }
      results.push(result);
      process.stdout.write(renderSuite(result) + "\n\n");
    }
  } finally {
    removeAllTempDirs();
  }

  const summary = results.flatMap((s) => s.goals.map((g) => ({ ...g, suite: s.id })));
  process.stdout.write(renderSummary(summary) + "\n");
  const report: RunReport = {
    ...head,
    durationMs: performance.now() - t0,
    command: `node dist/bench/run.js ${process.argv.slice(2).join(" ")}`.trim(),
    suites: results,
    summary,
  };
  writeReport(cli.out, report);
  log(`wrote ${cli.out} (${(report.durationMs / 1000).toFixed(1)} s)`);
  return results.some((r) => r.error !== undefined) ? 1 : 0;
}

process.once("SIGINT", () => {
  removeAllTempDirs();
  process.exit(130);
});

// Explicit exit: a suite that failed half-way may leave a worker pool or a native handle open.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    removeAllTempDirs();
    process.exit(1);
  },
);
