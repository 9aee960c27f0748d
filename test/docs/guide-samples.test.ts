/**
 * The TypeScript samples of the guides in docs/ (every docs/*.md but api.md, whose ```ts blocks are signatures, and
 * whose ```js samples test/docs/api-samples runs), type-checked with `--strict` as a user's ES modules against the
 * package as installed: its name resolves through package.json's exports to the built declarations. Each block is
 * a module of its own. They need a server (PostgreSQL) to run: examples/postgres.mjs is the running copy, run by
 * test/examples. Needs dist/ (built by `npm test`'s pretest).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

/** Each guide's ```ts blocks, named by file and line. */
function samples(): Array<{ where: string; code: string }> {
  const out: Array<{ where: string; code: string }> = [];
  for (const file of readdirSync(join(REPO, "docs")).filter((f) => f.endsWith(".md") && f !== "api.md").sort()) {
    const text = readFileSync(join(REPO, "docs", file), "utf8");
    for (const m of text.matchAll(/^```ts\n([\s\S]*?)^```/gm)) {
      out.push({ where: `docs/${file}:${text.slice(0, m.index).split("\n").length + 1}`, code: m[1] as string });
    }
  }
  return out;
}

const scratch = mkdtempSync(join(tmpdir(), "grf-guide-samples-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("the guides' TypeScript samples", () => {
  it("type-check with --strict against the package as installed", () => {
    const all = samples();
    expect(all.map((s) => s.where.split(":")[0])).toContain("docs/postgres.md");
    mkdirSync(join(scratch, "node_modules"));
    symlinkSync(REPO, join(scratch, "node_modules", "graphrefly-storage"));
    writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "guide-samples", type: "module", private: true }));
    const files = all.map((s, i) => {
      const path = join(scratch, `sample-${i}.ts`);
      writeFileSync(path, `${s.code}\nexport {};\n`);
      return path;
    });
    const program = ts.createProgram(files, {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: ["node"],
      typeRoots: [join(REPO, "node_modules/@types")],
      skipLibCheck: true,
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => {
      const i = d.file === undefined ? -1 : files.indexOf(d.file.fileName);
      const line = d.file === undefined ? 0 : d.file.getLineAndCharacterOfPosition(d.start ?? 0).line;
      const where = i < 0 ? (d.file?.fileName ?? "") : `${all[i]!.where.split(":")[0]}:${Number(all[i]!.where.split(":")[1]) + line}`;
      return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
    });
    expect(diagnostics).toEqual([]);
  }, 60_000);
});
