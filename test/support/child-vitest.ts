/**
 * Runs Vitest on some of the repository's test files in a child process (as root of a user namespace of its own, as
 * another user, or as this one), and reads back its JSON report. Whatever the child starts ends with it: a child that
 * hangs past its time is killed with every process it started (its forked test workers, their worker threads and
 * child processes), and the run says it timed out.
 */
import { spawn } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
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
  failureMessages?: string[] | null;
}

export interface ChildVitestRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Could not start (the command is missing). */
  error?: Error;
  /** Killed, with every process it started, after this many milliseconds. */
  timedOutAfterMs?: number;
  /** Killed, with every process it started, because the caller's signal aborted. */
  aborted?: true;
  /** Each file's status and tests, in the JSON reporter's order; undefined when it wrote no report. */
  files?: Array<{ name: string; status: string; tests: ChildTest[] }>;
  /** The command (shell-quoted) and everything it printed (the verbose reporter's lines among it), then how it ended. */
  output: string;
}

export interface ChildVitestOptions {
  /** Test files (absolute paths or file: URLs). */
  files: readonly string[];
  /** Only the tests whose full name (describe titles and test title, joined by spaces) matches (`-t`). */
  testNamePattern?: string;
  /**
   * Who runs it. "namespace-root": root of a new user, mount and PID namespace (`unshare --user --map-root-user
   * --mount`), where this user may mount. { uid, gid } (this process must be root): that user, with only PATH, the
   * locale, TZ and CI of this environment (not root's HOME). Default: this user, this environment. Either way TMPDIR
   * is a directory of the run's own, removed when it ends, however it ended.
   */
  as?: "namespace-root" | { uid: number; gid: number };
  /** A command and its arguments that run Vitest's node (`process.execPath` and its arguments follow them). */
  before?: readonly string[];
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Kills the run, as a timeout would, when it aborts. */
  signal?: AbortSignal;
}

interface JsonReport {
  testResults: Array<{ name: string; status: string; assertionResults: ChildTest[] }>;
}

/** The environment variable by which a child Vitest learns when its parent kills it (ms since the epoch). */
const DEADLINE = "GRF_CHILD_VITEST_DEADLINE";
/** A child run started by a child run ends this long before its parent is killed: time to report why. */
const NESTED_MARGIN_MS = 20_000;
const KEPT_FOR_ANOTHER_USER = ["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "CI"];

/** A word as sh reads it back. */
export const shellQuote = (w: string): string => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/** The pid of a child of this process (its only one, as unshare --fork has), if it has one. */
function childOf(pid: number): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

export async function runChildVitest(opts: ChildVitestOptions): Promise<ChildVitestRun> {
  // A run inside another child run ends before that one does: its own failure, not the parent's kill, is reported.
  const parentDeadline = Number(process.env[DEADLINE]);
  const timeoutMs = Number.isFinite(parentDeadline) ? Math.max(1_000, Math.min(opts.timeoutMs, parentDeadline - Date.now() - NESTED_MARGIN_MS)) : opts.timeoutMs;
  const out = mkdtempSync(join(tmpdir(), "grf-child-vitest-"));
  try {
    const other = typeof opts.as === "object" ? opts.as : undefined;
    // The child's TMPDIR: what it leaves there (Vitest's own directory, a killed test's temp directories) goes with out.
    const childTmp = join(out, "tmp");
    mkdirSync(childTmp);
    if (other !== undefined) for (const d of [out, childTmp]) chownSync(d, other.uid, other.gid);
    const json = join(out, "report.json");
    const vitest = [process.execPath, VITEST, "run", "--configLoader", "runner"];
    vitest.push(...opts.files.map((f) => relative(REPO, f.startsWith("file:") ? fileURLToPath(f) : f)));
    if (opts.testNamePattern !== undefined) vitest.push("-t", opts.testNamePattern);
    vitest.push("--reporter=verbose", "--reporter=json", `--outputFile.json=${json}`);
    // Every process the child starts is in a PID namespace of its own (`--kill-child`: its first process is killed
    // when unshare dies; the kernel then kills the rest; setpriv sets that again, since a change of user clears it), or, as this user, in a process group of its own: one kill
    // ends them all, also those of a child run inside it (not detached: in this one's namespace and group).
    const pidNamespace = ["--pid", "--fork", "--kill-child"];
    const wrap =
      opts.as === "namespace-root"
        ? ["unshare", "--user", "--map-root-user", "--mount", ...pidNamespace, "--"]
        : other !== undefined
          ? ["unshare", ...pidNamespace, "--", "setpriv", `--reuid=${other.uid}`, `--regid=${other.gid}`, "--clear-groups", "--pdeathsig=KILL", "--"]
          : [];
    const detached = wrap.length === 0;
    const [cmd, ...args] = [...wrap, ...(opts.before ?? []), ...vitest];
    // The child runs its own Vitest (nothing of this worker's), with this run's PostgreSQL server (none of its own).
    // It is told PG_URL only, so its tests do not wait for a server this run is still starting: the tests run in
    // children here use none.
    const base: NodeJS.ProcessEnv = other !== undefined ? Object.fromEntries(KEPT_FOR_ANOTHER_USER.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]])) : { ...process.env };
    const env: NodeJS.ProcessEnv = { ...base, NO_COLOR: "1", FORCE_COLOR: "0", TMPDIR: childTmp, PG_URL: inject("pgUrl"), [DEADLINE]: String(Date.now() + timeoutMs), ...opts.env };
    for (const k of Object.keys(env)) if (k.startsWith("VITEST")) delete env[k];
    let output = `${[cmd!, ...args].map(shellQuote).join(" ")}\n`;
    const run = await new Promise<ChildVitestRun>((settle) => {
      const child = spawn(cmd!, args, { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"], detached });
      let ended: Pick<ChildVitestRun, "timedOutAfterMs" | "aborted"> = {};
      const killAll = (): void => {
        try {
          // In a PID namespace: its first process, whose end (the kernel's killing the rest, then waiting for them)
          // unshare waits for: once unshare has exited, no process of the namespace is left. Before unshare forked
          // it: unshare, whose end kills it (--kill-child).
          if (detached) process.kill(-child.pid!, "SIGKILL");
          else process.kill(childOf(child.pid!) ?? child.pid!, "SIGKILL");
        } catch {
          // Already gone.
        }
      };
      const timer = setTimeout(() => {
        ended = { timedOutAfterMs: timeoutMs };
        killAll();
      }, timeoutMs);
      const onAbort = (): void => {
        ended = { aborted: true };
        killAll();
      };
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      if (opts.signal?.aborted === true) onAbort();
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      // What its process group still holds once it exits dies with it (and lets its output end).
      child.on("exit", () => detached && killAll());
      const done = (r: Omit<ChildVitestRun, "output">): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        if (ended.timedOutAfterMs !== undefined) output += `\n(timed out after ${ended.timedOutAfterMs} ms: killed with every process it started)\n`;
        if (ended.aborted === true) output += `\n(stopped by its caller: killed with every process it started)\n`;
        settle({ ...r, ...ended, output });
      };
      child.on("error", (error) => done({ code: null, signal: null, error }));
      child.on("close", (code, signal) => done({ code, signal }));
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
