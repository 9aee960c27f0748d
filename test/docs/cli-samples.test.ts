/**
 * The command lines README.md's command table and docs/api.md's shell samples show, run as written through the bin
 * the package declares (package.json `bin`, resolved inside a scratch project whose node_modules holds the package),
 * on a store of graph "shop" (seqs 1..301) at `app.db` and `data/app.db`, as a reader who just followed "Using it"
 * would have. A pipe into jq or a redirection is applied by the harness: `> F` writes stdout to F, `| jq …` parses
 * each line as JSON, `|| echo` accepts any exit. Every other command must exit 0. Also: `--help` names exactly the
 * commands the README's table lists. Needs dist/ (built by `npm test`'s pretest).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const readme = readFileSync(join(REPO, "README.md"), "utf8");
const api = readFileSync(join(REPO, "docs/api.md"), "utf8");
const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { name: string; bin: Record<string, string> };

/** The README table's rows: the command's synopsis (first cell) and its example (second cell). */
function readmeRows(): Array<{ synopsis: string; example: string }> {
  const section = readme.slice(readme.indexOf("\n## Command-line tool"), readme.indexOf("\n## ", readme.indexOf("\n## Command-line tool") + 1));
  return [...section.matchAll(/^\| `([^`]+)` \| `([^`]+)` \|/gm)].map((m) => ({
    synopsis: m[1] as string,
    example: (m[2] as string).replace(/\\\|/g, "|"),
  }));
}

/** api.md's ```sh lines that run the command on a store (not the synopsis line with `<command>`). */
function apiLines(): string[] {
  return [...api.matchAll(/^```sh\n([\s\S]*?)^```/gm)]
    .flatMap((m) => (m[1] as string).split("\n"))
    .filter((l) => l.startsWith(`${pkg.name} `) && !l.includes("<"));
}

/** Splits words as a POSIX shell does for the plain, single- and double-quoted words these samples use. */
function words(text: string): string[] {
  return [...text.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? (m[3] as string));
}

const scratch = mkdtempSync(join(tmpdir(), "grf-cli-samples-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const bin = join(scratch, "node_modules", pkg.name, pkg.bin[pkg.name] as string);

/** Graph "shop": 150 waves of two frames each, every frame kept (a baseline only at attach, seq 1; qty at seq 2i). */
const WRITER = `
import { attachSnapshotStorage, createGraph, sqliteKv, sqliteSnapshot, walFrameCodec } from "${pkg.name}";
const path = process.argv[2];
const graph = createGraph("shop");
graph.state("price", 10);
graph.state("qty", 0);
graph.derived("total", ["price", "qty"], (p, q) => p * q);
const snapshot = sqliteSnapshot(path);
const wal = sqliteKv(path, { codec: walFrameCodec, debounceMs: 5 });
const handle = attachSnapshotStorage(graph, [{ snapshot, wal }], { compactEvery: Infinity });
for (let i = 1; i <= 150; i++) graph.set("qty", i);
console.log(await handle.flush());
await handle.dispose();
await wal.close();
await snapshot.close();
`;

beforeAll(() => {
  mkdirSync(join(scratch, "node_modules"));
  mkdirSync(join(scratch, "data"));
  symlinkSync(REPO, join(scratch, "node_modules", pkg.name));
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "cli-samples", type: "module", private: true }));
  writeFileSync(join(scratch, "writer.mjs"), WRITER);
  for (const path of ["app.db", "data/app.db"]) {
    expect(execFileSync(process.execPath, ["writer.mjs", path], { cwd: scratch, encoding: "utf8", timeout: 60_000 }).trim()).toBe("301");
  }
}, 90_000);

/** Runs one sample line as the shell would, with the harness standing in for `>`, `| jq` and `|| …`. */
function run(line: string): string {
  const [pipeline = "", orElse] = line.split(" || ");
  const [command = "", pipe] = pipeline.split(" | ");
  const [argv = "", redirect] = command.split(" > ");
  const [name, ...args] = words(argv);
  expect(name, line).toBe(pkg.name);
  const result = spawnSync(process.execPath, [bin, ...args], { cwd: scratch, encoding: "utf8", timeout: 60_000 });
  if (orElse === undefined) expect(result.status, `${line}\n${result.stderr}`).toBe(0);
  else expect(result.status, `${line}\n${result.stderr}`).not.toBeNull();
  if (redirect !== undefined) writeFileSync(join(scratch, redirect.trim()), result.stdout);
  if (pipe !== undefined) {
    expect(words(pipe)[0], line).toBe("jq");
    const lines = result.stdout.trim().split("\n");
    expect(lines.length, line).toBeGreaterThan(0);
    // The filter's path (.frame.path, '.frame.change.change'): every line is JSON holding it.
    const path = (words(pipe).find((w) => w.startsWith(".")) as string).slice(1).split(".");
    for (const l of lines) {
      const value = path.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], JSON.parse(l));
      expect(value, `${line}: ${l}`).toBeDefined();
    }
  }
  return result.stdout;
}

describe("the command-line samples of README.md and docs/api.md", () => {
  it("the bin is a node script the package ships", () => {
    expect(readFileSync(bin, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
  });

  it("--help lists exactly the commands README's table documents", () => {
    const help = execFileSync(process.execPath, [bin, "--help"], { encoding: "utf8" });
    const listed = [...help.slice(help.indexOf("Commands:")).matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]).filter((c) => c !== "help");
    expect(readmeRows().map((r) => r.synopsis.split(" ")[0])).toEqual(listed);
  });

  it("README's examples run and do what the table says", () => {
    const rows = readmeRows();
    expect(rows.length).toBeGreaterThanOrEqual(7);
    // Each row's example stands alone on the reader's store; `compact` runs last, since the history it folds away is
    // what `export --at 250` reads (the table's order is the commands', not a script's).
    const compactLast = [...rows.filter((r) => !r.synopsis.startsWith("compact ")), ...rows.filter((r) => r.synopsis.startsWith("compact "))];
    for (const { synopsis, example } of compactLast) {
      expect(example.startsWith(`${pkg.name} ${synopsis.split(" ")[0]} `), example).toBe(true);
      run(example);
    }
    // export > shop.json then import shop.json new.db: the new store holds the exported graph.
    expect(JSON.parse(readFileSync(join(scratch, "shop.json"), "utf8")).nodes.qty.value).toBeGreaterThan(0);
    expect(run(`${pkg.name} export new.db --graph shop`)).toBe(readFileSync(join(scratch, "shop.json"), "utf8"));
  }, 120_000);

  it("api.md's shell samples run", () => {
    const lines = apiLines();
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const line of lines) run(line);
    expect(existsSync(join(scratch, "shop-250.json"))).toBe(true);
    expect(JSON.parse(readFileSync(join(scratch, "shop-250.json"), "utf8")).nodes.qty.value).toBe(125);
  }, 60_000);
});
