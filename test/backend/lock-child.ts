/**
 * Test helper: a separate Node process that takes (or probes) a SQLite exclusive lock with the same
 * pragmas the backends use, importing better-sqlite3 directly (Node 20 cannot load our .ts sources).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

/** Repo root, so the child resolves better-sqlite3 from the project's node_modules. */
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

const SCRIPT = `
import Database from "better-sqlite3";
const [, path, mode, journal] = process.argv;
let db;
try {
  db = new Database(path, { timeout: 0 });
  db.pragma("locking_mode = EXCLUSIVE");
  if (journal === "wal") db.pragma("journal_mode = WAL");
  db.exec("BEGIN EXCLUSIVE; COMMIT");
} catch (e) {
  process.stdout.write((String(e.code).startsWith("SQLITE_BUSY") ? "busy" : "error " + e.message) + "\\n");
  process.exit(0);
}
process.stdout.write("acquired\\n");
if (mode === "hold") {
  // Dies with the test process: stdin closes when the parent goes away.
  process.stdin.resume();
  process.stdin.on("end", () => process.exit(0));
} else db.close();
`;

export type Journal = "wal" | "rollback";

function run(path: string, mode: "hold" | "probe", journal: Journal): { child: ChildProcess; firstLine: Promise<string> } {
  const child = spawn(process.execPath, ["--input-type=module", "-e", SCRIPT, path, mode, journal], {
    cwd: REPO_ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  const firstLine = new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      out += chunk;
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`lock child exited (${String(code)}) before reporting`)));
  });
  return { child, firstLine };
}

/** Child that reports "busy", "acquired" (then releases) or "error ...". */
export async function probeLockInChild(path: string, journal: Journal): Promise<string> {
  const { child, firstLine } = run(path, "probe", journal);
  const line = await firstLine;
  if (child.exitCode === null) await once(child, "exit");
  return line;
}

export interface LockHolder {
  readonly pid: number;
  /** kill -9: the kernel must drop the lock with the process. */
  killHard(): Promise<void>;
}

const holders = new Set<ChildProcess>();

async function killHard(child: ChildProcess): Promise<void> {
  holders.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

/** Child that takes the lock and keeps it until killed. */
export async function holdLockInChild(path: string, journal: Journal): Promise<LockHolder> {
  const { child, firstLine } = run(path, "hold", journal);
  holders.add(child);
  const line = await firstLine;
  if (line !== "acquired") {
    await killHard(child);
    throw new Error(`lock child could not take the lock: ${line}`);
  }
  return { pid: child.pid as number, killHard: () => killHard(child) };
}

/** For afterEach: kills holders a failed test left running. */
export async function killAllHolders(): Promise<void> {
  await Promise.all([...holders].map(killHard));
}
