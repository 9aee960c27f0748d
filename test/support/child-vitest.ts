/**
 * Runs Vitest on some of the repository's test files in a child process (a command may come before it, such as
 * `unshare`; it may run as another user), and reads back its JSON report.
 */
import { spawn } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { inject } from "vitest";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
const VITEST = join(dirname(createRequire(import.meta.url).resolve("vitest/package.json")), "vitest.mjs");

export interface ChildTest {
  /** The describe blocks it is in, outermost first. */
  ancestorTitles: string[];
  title: string;
  fullName: string;
  /** "passed", "failed", "skipped", "pending", "todo". */
  status: string;
}

export interface ChildVitestRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Could not start (the command is missing). */
  error?: Error;
  /** Each file's status and tests, in the JSON reporter's order; undefined when it wrote no report. */
  files?: Array<{ name: string; status: string; tests: ChildTest[] }>;
  /** The command and everything it printed (the verbose reporter's lines among it): the message of a failed check. */
  output: string;
}

export interface ChildVitestOptions {
  /** Test files (absolute paths or file: URLs). */
  files: readonly string[];
  /** Only the tests whose full name (describe titles and test title, joined by spaces) matches (`-t`). */
  testNamePattern?: string;
  /** A command and its arguments that run Vitest's node (`process.execPath` and its arguments follow them). */
  before?: readonly string[];
  /** Runs the child as this user (and group); its report directory is made theirs. */
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
}

interface JsonReport {
  testResults: Array<{ name: string; status: string; assertionResults: ChildTest[] }>;
}

export async function runChildVitest(opts: ChildVitestOptions): Promise<ChildVitestRun> {
  const out = mkdtempSync(join(tmpdir(), "grf-child-vitest-"));
  try {
    if (opts.uid !== undefined) chownSync(out, opts.uid, opts.gid ?? -1);
    const json = join(out, "report.json");
    const vitest = [process.execPath, VITEST, "run", "--configLoader", "runner"];
    vitest.push(...opts.files.map((f) => relative(REPO, f.startsWith("file:") ? fileURLToPath(f) : f)));
    if (opts.testNamePattern !== undefined) vitest.push("-t", opts.testNamePattern);
    vitest.push("--reporter=verbose", "--reporter=json", `--outputFile.json=${json}`);
    const [cmd, ...args] = [...(opts.before ?? []), ...vitest];
    // The child runs its own Vitest (nothing of this worker's), with this run's PostgreSQL server (none of its own).
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", PG_URL: inject("pgUrl"), ...opts.env };
    for (const k of Object.keys(env)) if (k.startsWith("VITEST")) delete env[k];
    const run = await new Promise<ChildVitestRun>((settle) => {
      const child = spawn(cmd!, args, { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"], timeout: opts.timeoutMs, uid: opts.uid, gid: opts.gid });
      let output = `${[cmd, ...args].join(" ")}\n`;
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.on("error", (error) => settle({ code: null, signal: null, error, output }));
      child.on("close", (code, signal) => settle({ code, signal, output }));
    });
    let report: JsonReport | undefined;
    try {
      report = JSON.parse(readFileSync(json, "utf8")) as JsonReport;
    } catch {
      // No report: the run failed before writing one; its output says why.
    }
    return { ...run, files: report?.testResults.map((r) => ({ name: r.name, status: r.status, tests: r.assertionResults })) };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
