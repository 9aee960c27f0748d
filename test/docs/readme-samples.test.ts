/**
 * README.md's TypeScript samples, as a new user pastes them: each section's samples form one program, type-checked
 * with `--strict` against the package as installed (its name resolving to this repository's built declarations),
 * and the runnable ones run. A sample may leave out imports of the package's exports and use `buildAppGraph`
 * (defined in "Using it"): the program adds them, as the README's prose tells the reader to. Needs dist/ (built by
 * `npm test`'s pretest).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as api from "../../src/index.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const readme = readFileSync(join(REPO, "README.md"), "utf8");

interface Section {
  readonly title: string;
  readonly blocks: string[];
}

/** The ```ts blocks of each `## ` section, in order (list-item indentation removed). */
function sections(text: string): Section[] {
  const out: Section[] = [];
  for (const part of text.split(/^## /m).slice(1)) {
    const title = part.slice(0, part.indexOf("\n")).trim();
    const blocks = [...part.matchAll(/^([ \t]*)```ts\n([\s\S]*?)^[ \t]*```/gm)].map((m) => {
      const indent = (m[1] as string).length;
      return (m[2] as string).replace(new RegExp(`^[ \\t]{0,${indent}}`, "gm"), "");
    });
    if (blocks.length > 0) out.push({ title, blocks });
  }
  return out;
}

const all = sections(readme);
const BUILD_APP_GRAPH = /^function buildAppGraph\(\)[^\n]*\{[\s\S]*?^\}$/m;

/** One section's samples as a module: its imports first, then missing package imports, then the code. */
function program(section: Section): string {
  const code = section.blocks.join("\n");
  const imported = new Set<string>();
  const imports: string[] = [];
  const body = code.replace(/^import\s*\{([^}]*)\}\s*from\s*"graphrefly-storage";\n/gm, (whole, names: string) => {
    for (const n of names.split(",")) if (n.trim() !== "") imported.add(n.trim());
    imports.push(whole);
    return "";
  });
  let tail = "";
  if (/\bbuildAppGraph\(/.test(body) && !/function buildAppGraph/.test(body)) {
    const definition = BUILD_APP_GRAPH.exec(all.map((s) => s.blocks.join("\n")).join("\n"));
    if (definition === null) throw new Error("README defines no buildAppGraph() for the samples that use it");
    tail = `\n${definition[0]}\n`;
  }
  const missing = Object.keys(api).filter((n) => !imported.has(n) && new RegExp(`(?<![\\w$.])${n}(?![\\w$])`).test(body + tail));
  if (missing.length > 0) imports.push(`import { ${missing.join(", ")} } from "graphrefly-storage";\n`);
  return `${imports.join("")}${body}${tail}export {};\n`;
}

const scratch = mkdtempSync(join(tmpdir(), "grf-readme-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A project whose node_modules holds the package (this repository) and its dependencies. */
beforeAll(() => {
  const modules = join(scratch, "node_modules");
  mkdirSync(modules);
  symlinkSync(REPO, join(modules, "graphrefly-storage"));
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "readme-samples", type: "module", private: true }));
});

const file = (section: Section): string => join(scratch, `${section.title.replace(/[^A-Za-z0-9]+/g, "-").toLowerCase()}.ts`);
const find = (title: string): Section => {
  const s = all.find((x) => x.title.startsWith(title));
  if (s === undefined) throw new Error(`README has no section "${title}" with a TypeScript sample`);
  return s;
};

describe("README.md samples", () => {
  it("has TypeScript samples in the sections a new user follows", () => {
    expect(all.map((s) => s.title)).toEqual(expect.arrayContaining(["Using it", "Reading a live store: read-only handles and followers", "Running on several machines"]));
  });

  it("type-check with --strict against the package as installed", () => {
    const files = all.map((s) => {
      writeFileSync(file(s), program(s));
      return file(s);
    });
    const options: ts.CompilerOptions = {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: ["node"],
      typeRoots: [join(REPO, "node_modules/@types")],
      skipLibCheck: true,
    };
    const diagnostics = ts.getPreEmitDiagnostics(ts.createProgram(files, options)).map((d) => {
      const where = d.file ? `${d.file.fileName.slice(scratch.length + 1)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}` : "";
      return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
    });
    expect(diagnostics).toEqual([]);
  }, 60_000);

  it("run: 'Using it' restores and counts on across runs, and the follower reads its store", () => {
    const run = (section: Section): string => {
      const js = ts.transpileModule(program(section), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
      const path = file(section).replace(/\.ts$/, ".mjs");
      writeFileSync(path, js);
      return execFileSync(process.execPath, [path], { cwd: scratch, encoding: "utf8", timeout: 60_000 });
    };
    const using = find("Using it");
    expect(run(using)).toMatch(/^count 1, double 2, durable up to seq \d+$/m);
    expect(run(using)).toMatch(/^count 2, double 4, durable up to seq \d+$/m);
    run(find("Reading a live store"));
  }, 120_000);
});
