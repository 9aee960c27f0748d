/**
 * Test helper: another process that opens a file or SQLite store through this package's kv tier factories (the
 * compiled dist/, since Node 20 cannot load our .ts sources), reads it, tries one write, reports, and exits.
 * "read": a read-only tier (`{ readOnly: true }`); "write": a writable one (which needs the store's lock).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ENTRY = new URL("../../dist/src/index.js", import.meta.url).href;

const SCRIPT = `
const [, kind, path, entry, mode, key] = process.argv;
const { fileKv, sqliteKv } = await import(entry);
const report = (r) => process.stdout.write(JSON.stringify(r) + "\\n");
const coded = (e) => ({ code: e.code ?? "?", message: e.message, details: e.details ?? {} });
let kv;
try {
  const opts = mode === "read" ? { readOnly: true } : {};
  kv = kind === "file" ? fileKv(path, opts) : sqliteKv(path, opts);
} catch (e) {
  report({ opened: false, error: coded(e) });
  process.exit(0);
}
const keys = await kv.list();
const value = (await kv.load(key)) ?? null;
let write = { code: "written" };
try {
  kv.save("from-child", process.pid);
  await kv.flush();
} catch (e) {
  write = coded(e);
}
await kv.close();
report({ opened: true, keys, value, write });
`;

export interface ChildError {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

export type ChildTierReport =
  | { opened: false; error: ChildError }
  | { opened: true; keys: string[]; value: unknown; write: ChildError | { code: "written" } };

/** Opens `path` in a child process as `mode`, lists it, loads `key`, tries a save, and reports. */
export function kvInChild(kind: "file" | "sqlite", path: string, mode: "read" | "write", key: string): Promise<ChildTierReport> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", SCRIPT, kind, path, ENTRY, mode, key], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise<ChildTierReport>((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => (out += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      const line = out.split("\n")[0] ?? "";
      if (line === "") reject(new Error(`tier child exited (${String(code)}) without a report`));
      else resolve(JSON.parse(line) as ChildTierReport);
    });
  });
}
