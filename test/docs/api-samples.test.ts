/**
 * docs/api.md's JavaScript samples run, and the results their comments show are what the code gives. The samples
 * are fragments of one program: they share a context a reader would have at hand (an engine, the SQLite store
 * ./data/app.db, the graph "shop" attached to it, a tier, a handle …), which the harness builds first. Each sample
 * runs in its own function, in document order, in a child process (as a user's program: one that leaves an engine
 * open never exits). A line `expr; // result` is checked: a result naming an error class must be thrown (with the
 * code and `details.path` it names), `bytes of X` must decode to X, and a result that reads as a JavaScript value
 * must deep-equal what the line gives; prose comments are not checked. Samples that need PostgreSQL are left to the
 * examples test (examples/postgres.mjs). Needs dist/ (built by `npm test`'s pretest).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import * as api from "../../src/index.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const doc = readFileSync(join(REPO, "docs/api.md"), "utf8");

interface Sample {
  readonly line: number;
  readonly code: string;
}

function samples(): Sample[] {
  const out: Sample[] = [];
  for (const m of doc.matchAll(/^```js\n([\s\S]*?)^```/gm)) {
    out.push({ line: doc.slice(0, m.index).split("\n").length + 1, code: m[1] as string });
  }
  return out;
}

/** A documented result as a JavaScript value's source, or undefined when the comment is prose. */
function valueSource(note: string): string | undefined {
  const candidate = note.replace(/\s+\([^)]*\)\s*$/, "").trim();
  try {
    new Function(`return (${candidate});`)();
    return candidate;
  } catch {
    return undefined;
  }
}

const ERROR_NOTE = /^(CodecError|StorageError|RestoreError|TypeError|RangeError)\b:?\s*([a-z]+(?:-[a-z]+)+)?/;
/** The JSON path a documented error names: `details.path "$.x"`, or a message ending `at $.x`. */
const ERROR_PATH = /details\.path "([^"]+)"| at (\$\S*)$/;

/** The sample with its result comments turned into checks; counts them in `checks`. */
function instrument(code: string, checks: { count: number }): string {
  return code
    .replace(/^import\s*\{[^}]*\}\s*from\s*"graphrefly-storage";\n/gm, "")
    .replace(/^export\s+(const|function)/gm, "$1")
    .split("\n")
    .map((line) => {
      const m = /^(\s*)((?:await\s+)?[\w$["(][^;]*?);\s*\/\/\s*(.+)$/.exec(line);
      if (m === null || /^(const|let|var|for|if|return|throw)\b/.test(m[2] as string)) return line;
      const [, indent, stmt, note] = m as unknown as [string, string, string, string];
      const error = ERROR_NOTE.exec(note);
      if (error !== null) {
        checks.count++;
        const path = ERROR_PATH.exec(note);
        const args = [error[1], error[2] ?? null, path?.[1] ?? path?.[2] ?? null, line.trim()].map((a) => JSON.stringify(a));
        return `${indent}await __throws(async () => (${stmt}), ${args.join(", ")});`;
      }
      const bytes = /^bytes of (.+)$/.exec(note);
      if (bytes !== null) {
        checks.count++;
        return `${indent}__bytes(${stmt}, ${JSON.stringify(bytes[1])}, ${JSON.stringify(line.trim())});`;
      }
      const expected = valueSource(note);
      if (expected === undefined) return line;
      checks.count++;
      return `${indent}await __equal(${stmt}, (${expected}), ${JSON.stringify(line.trim())});`;
    })
    .join("\n");
}

const PRELUDE = `
import * as pkg from "graphrefly-storage";
import fs from "node:fs";
import { deepStrictEqual } from "node:assert";
const { ${Object.keys(api).join(", ")} } = pkg;

async function __throws(fn, cls, code, path, line) {
  try { await fn(); } catch (err) {
    if (err?.name !== cls) throw new Error(\`\${line}: threw \${err?.name}, documented \${cls}\`);
    if (code !== null && err.code !== code) throw new Error(\`\${line}: code \${err.code}, documented \${code}\`);
    if (path !== null && err.details?.path !== path) throw new Error(\`\${line}: details.path \${err.details?.path}, documented \${path}\`);
    return;
  }
  throw new Error(\`\${line}: did not throw, documented \${cls}\`);
}
function __bytes(bytes, text, line) {
  const got = new TextDecoder().decode(bytes);
  if (got !== text) throw new Error(\`\${line}: gave bytes of \${got}\`);
}
async function __equal(value, expected, line) {
  const got = await value;
  try { deepStrictEqual(got, expected); } catch { throw new Error(\`\${line}: gave \${String(got)} (\${JSON.stringify(got, (_, v) => typeof v === "bigint" ? v + "n" : v)})\`); }
}

// What a reader of docs/api.md has at hand when a sample uses it.
const followers = [];
const followGraphAndKeep = async (...args) => { const f = await pkg.followGraph(...args); followers.push(f); return f; };
const engines = [];
const openStorageEngineAndKeep = (...args) => { const e = pkg.openStorageEngine(...args); engines.push(e); return e; };
const log = { info() {}, warn() {} };
const render = () => undefined;
const engine = pkg.openStorageEngine({ threads: 1 });
const store = { kind: "sqlite", path: "./data/app.db" };
const wal = engine.kv(store, { codec: walFrameCodec });
const tier = engine.kv(store);
const graph = createGraph("shop");
graph.state("price", 10);
graph.state("qty", 2);
graph.derived("total", ["price", "qty"], (p, q) => p * q);
const before = graph.snapshot();
const handle = attachSnapshotStorage(graph, [{ snapshot: engine.snapshot(store), wal }]);
graph.set("qty", 3);
await handle.flush();
const after = graph.snapshot();
const key = "k";
const value = { v: 1 };
const p = "./data/written.bin";
const bytes = new Uint8Array([1, 2, 3]);
`;

const EPILOGUE = `
for (const f of followers) await f.stop();
await handle.dispose();
await engine.close();
const open = engines.filter((e) => !e.closed).length;
if (open > 0) throw new Error(\`\${open} engine(s) a sample opened were never closed: the program cannot exit\`);
console.log("all samples ran");
`;

const scratch = mkdtempSync(join(tmpdir(), "grf-api-samples-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("docs/api.md samples", () => {
  it("run as one program, and give the results their comments show", () => {
    mkdirSync(join(scratch, "node_modules"));
    mkdirSync(join(scratch, "data"));
    symlinkSync(REPO, join(scratch, "node_modules", "graphrefly-storage"));
    writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "api-samples", type: "module", private: true }));
    const checks = { count: 0 };
    const all = samples();
    let ran = 0;
    const body = all
      .filter((s) => !s.code.includes("postgresBackend("))
      .map((s) => {
        ran++;
        const code = instrument(s.code, checks)
          .replace(/\bfollowGraph\(/g, "followGraphAndKeep(")
          .replace(/\bopenStorageEngine\(/g, "openStorageEngineAndKeep(");
        return `console.log("docs/api.md:${s.line}");\nawait (async () => {\n${code}\n})();\n`;
      })
      .join("");
    writeFileSync(join(scratch, "samples.mjs"), PRELUDE + body + EPILOGUE);
    expect(ran).toBeGreaterThan(20);
    expect(checks.count).toBeGreaterThan(10);
    let out: string;
    try {
      out = execFileSync(process.execPath, ["samples.mjs"], { cwd: scratch, encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; signal?: string };
      const last = (e.stdout ?? "").trim().split("\n").pop();
      throw new Error(`the samples stopped after ${last}${e.signal ? ` (${e.signal}: the program did not exit)` : ""}:\n${e.stderr ?? ""}`);
    }
    expect(out).toMatch(/^all samples ran$/m);
  }, 90_000);
});
