/**
 * Compaction options are typed (issue 12 items 2 and 7): through the engine a misspelt option (`keep` for
 * `keepFrames`) or a function-valued option (`onTornWrite`, which cannot cross to the worker) does not compile, and
 * the result is a CompactionResult. Checked with the TypeScript compiler on a snippet importing the package's entry.
 */
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const SNIPPET = fileURLToPath(new URL("./__options-snippet.ts", import.meta.url));
const SOURCE = `
import { compactGraphInEngine, openStorageEngine, type CompactionResult } from "../../src/index.js";
const engine = openStorageEngine();
const store = { kind: "memory", name: "m" } as const;
export const ok: Promise<CompactionResult> = compactGraphInEngine(engine, store, "g", { keepFrames: 2 });
export const typo = compactGraphInEngine(engine, store, "g", { keep: 3 }); // line 6
export const torn = compactGraphInEngine(engine, store, "g", { onTornWrite: () => "skip" }); // line 7
`;

function diagnostics(): ts.Diagnostic[] {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ["node"],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === SNIPPET ? ts.createSourceFile(name, SOURCE, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === SNIPPET || fileExists(name);
  const program = ts.createProgram([SNIPPET], options, host);
  return [...ts.getPreEmitDiagnostics(program, program.getSourceFile(SNIPPET))];
}

describe("compaction options through the engine are typed", () => {
  it("a misspelt or function-valued option is a compile error; the known ones compile", { timeout: 120_000 }, () => {
    const lines = diagnostics().map((d) => {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start!);
      return { line: line + 1, text: ts.flattenDiagnosticMessageText(d.messageText, "\n") };
    });
    expect(lines.map((l) => l.line).sort()).toEqual([6, 7]);
    expect(lines.find((l) => l.line === 6)?.text).toContain("keep");
    expect(lines.find((l) => l.line === 7)?.text).toContain("onTornWrite");
  });
});
