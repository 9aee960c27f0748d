/**
 * Test helper: another process that opens a store with this package's own backends (the compiled dist/, since
 * Node 20 cannot load our .ts sources), reports what happened, and, when it got the store, holds it until killed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ENTRY = new URL("../../dist/src/index.js", import.meta.url).href;

const SCRIPT = `
const [, kind, path, entry, mode] = process.argv;
const { fileBackend, sqliteBackend } = await import(entry);
const open = kind === "file" ? (o) => fileBackend(path, o) : (o) => sqliteBackend(path, o);
let b;
try {
  b = open(mode === "read" ? { readOnly: true } : {});
  if (mode !== "read") b.write("from-child", Uint8Array.of(process.pid % 256));
} catch (e) {
  process.stdout.write(JSON.stringify({ code: e.code ?? "?", message: e.message, details: e.details ?? {} }) + "\\n");
  process.exit(0);
}
process.stdout.write(JSON.stringify({ code: "acquired", keys: b.list() }) + "\\n");
process.stdin.resume();
process.stdin.on("end", () => { b.close(); process.exit(0); });
`;

export interface ChildReport {
  code: string;
  message?: string;
  details?: Record<string, unknown>;
  keys?: string[];
}

export interface StoreHolder {
  readonly pid: number;
  readonly report: ChildReport;
  /** Closes the store cleanly and waits for the child to exit. */
  release(): Promise<void>;
  /** kill -9: the kernel must drop the lock with the process. */
  killHard(): Promise<void>;
}

const children = new Set<ChildProcess>();

/** Opens `path` as a `kind` store in a child process ("write": takes the lock; "read": a read-only handle). */
export async function openStoreInChild(kind: "file" | "sqlite", path: string, mode: "write" | "read" = "write"): Promise<StoreHolder> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", SCRIPT, kind, path, ENTRY, mode], {
    cwd: REPO_ROOT,
    stdio: ["pipe", "pipe", "inherit"],
  });
  children.add(child);
  const report = await new Promise<ChildReport>((resolve, reject) => {
    let out = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      out += chunk;
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as ChildReport);
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`store child exited (${String(code)}) before reporting`)));
  });
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  return {
    pid: child.pid as number,
    report,
    async release() {
      children.delete(child);
      if (exited()) return;
      const done = once(child, "exit");
      child.stdin?.end();
      await done;
    },
    async killHard() {
      children.delete(child);
      if (exited()) return;
      const done = once(child, "exit");
      child.kill("SIGKILL");
      await done;
    },
  };
}

/** For afterEach: kills children a failed test left running. */
export async function killAllStoreChildren(): Promise<void> {
  await Promise.all(
    [...children].map(async (c) => {
      children.delete(c);
      if (c.exitCode !== null || c.signalCode !== null) return;
      const done = once(c, "exit");
      c.kill("SIGKILL");
      await done;
    }),
  );
}
