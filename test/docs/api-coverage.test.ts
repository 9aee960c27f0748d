/**
 * docs/api.md covers exactly the public surface: every name src/index.ts exports (runtime values from the module
 * itself, types from its export lists) is a heading or a code span there, and nothing is presented as an export
 * that is not one (a heading in code formatting names an export; a doc example imports only exported names). The
 * error table lists exactly the codes of src/errors.ts's union types, each under its class.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import * as api from "../../src/index.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const doc = readFileSync(resolve(REPO, "docs/api.md"), "utf8");
/** The documents whose examples import from the package. */
const EXAMPLE_DOCS = ["README.md", "docs/api.md", "docs/postgres.md", "docs/design.md", "docs/graph-model.md"];

/** Source text without comments, so names and codes mentioned in comments are not mistaken for exports. */
function source(file: string): string {
  return readFileSync(file, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
}

/**
 * Names a module exports: `export { a, type B, c as d }` lists (with or without `from`), `export * as ns`, and, for
 * `export * from` (followed recursively), the declarations of the target (`export class X`, `export type Y` …).
 */
function exportedNames(file: string, seen = new Set<string>()): Set<string> {
  const names = new Set<string>();
  if (seen.has(file)) return names;
  seen.add(file);
  const text = source(file);
  for (const m of text.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const part of (m[1] as string).split(",")) {
      const spec = part.trim().replace(/^type\s+/, "");
      if (spec === "") continue;
      const alias = /\bas\s+([A-Za-z_$][\w$]*)$/.exec(spec);
      names.add(alias ? (alias[1] as string) : spec);
    }
  }
  for (const m of text.matchAll(/export\s+\*\s+as\s+([A-Za-z_$][\w$]*)\s+from/g)) names.add(m[1] as string);
  for (const m of text.matchAll(/export\s+\*\s+from\s+["']([^"']+)["']/g)) {
    const target = resolve(dirname(file), (m[1] as string).replace(/\.js$/, ".ts"));
    for (const n of exportedNames(target, seen)) names.add(n);
  }
  const declaration = /^export\s+(?:declare\s+)?(?:abstract\s+)?(?:type|interface|class|function|const|let|var|enum)\s+([A-Za-z_$][\w$]*)/gm;
  for (const m of text.matchAll(declaration)) names.add(m[1] as string);
  return names;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The fenced code blocks of the document (signatures and examples). */
const fenced = [...doc.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].map((m) => m[1] as string).join("\n");

/**
 * A heading naming it, a code span that starts with it (`name`, `name(…)`, `name<T>`, `name.x`), or a declaration
 * of it in a code block: `interface name`, `type name`, `class name`, `const name`, or a signature line starting
 * with `name(` / `name<`. A name merely used in an example does not count.
 */
function documented(name: string): boolean {
  const e = escape(name);
  const end = "(?![\\w$])";
  return (
    new RegExp("`" + e + end).test(doc) ||
    new RegExp(`^#{1,6} .*(?<![\\w$])${e}${end}`, "m").test(doc) ||
    new RegExp(`(?:^|\\s)(?:interface|type|class|const|function)\\s+${e}${end}`, "m").test(fenced) ||
    new RegExp(`^\\s*${e}\\s*[(<]`, "m").test(fenced)
  );
}

const publicNames = exportedNames(resolve(REPO, "src/index.ts"));
const runtimeNames = Object.keys(api);

/** The string members of `export type <name> = | "a" | "b" …;` in src/errors.ts. */
function unionCodes(name: string): string[] {
  const m = new RegExp(`export\\s+type\\s+${name}\\s*=([^;]*);`).exec(source(resolve(REPO, "src/errors.ts")));
  if (m === null) throw new Error(`src/errors.ts has no union type ${name}`);
  return [...(m[1] as string).matchAll(/"([^"]+)"/g)].map((c) => c[1] as string);
}

const ERROR_CLASSES = { StorageError: "StorageErrorCode", RestoreError: "RestoreErrorCode", CodecError: "CodecErrorCode" } as const;

/** Rows `| \`Class\` | \`code\` | …` of the "Error codes" section. */
function errorTableRows(): Array<{ cls: string; code: string }> {
  const section = /^## Error codes\s*$([\s\S]*?)(?=^## )/m.exec(doc + "\n## end\n");
  if (section === null) return [];
  const rows: Array<{ cls: string; code: string }> = [];
  for (const m of (section[1] as string).matchAll(/^\|\s*`(\w+)`\s*\|\s*`([\w-]+)`\s*\|/gm)) {
    rows.push({ cls: m[1] as string, code: m[2] as string });
  }
  return rows;
}

describe("docs/api.md", () => {
  it("finds the public surface by parsing the index files (every runtime export among the parsed names)", () => {
    expect(runtimeNames.length).toBeGreaterThan(30);
    expect(publicNames.size).toBeGreaterThan(runtimeNames.length);
    expect(runtimeNames.filter((n) => !publicNames.has(n))).toEqual([]);
  });

  it("documents every exported name as a heading or in code formatting", () => {
    const missing = [...publicNames].filter((n) => !documented(n)).sort();
    expect(missing, `exported from src/index.ts but not in docs/api.md: ${missing.join(", ")}`).toEqual([]);
  });

  it("presents nothing as an export that is not one: headings in code formatting name exports", () => {
    const headed = [...doc.matchAll(/^#{1,6} .*$/gm)].flatMap((m) => [...m[0].matchAll(/`([A-Za-z_$][\w$]*)/g)].map((c) => c[1] as string));
    expect(headed.length).toBeGreaterThan(20);
    const stale = headed.filter((n) => !publicNames.has(n));
    expect(stale, `docs/api.md headings naming what src/index.ts does not export: ${stale.join(", ")}`).toEqual([]);
  });

  it("imports only exported names in the examples of the docs", () => {
    let imported = 0;
    for (const file of EXAMPLE_DOCS) {
      const text = readFileSync(resolve(REPO, file), "utf8");
      for (const m of text.matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*["']graphrefly-storage["']/g)) {
        for (const part of (m[1] as string).split(",")) {
          const name = part.trim().replace(/^type\s+/, "").split(/\s+as\s+/)[0] as string;
          if (name === "") continue;
          imported++;
          expect(publicNames.has(name), `${file} imports ${name} from graphrefly-storage, which does not export it`).toBe(true);
        }
      }
    }
    expect(imported).toBeGreaterThan(5);
  });

  it("exports no internals: tier cores, file-name and lock-file encodings, the engine's error transport and job names", () => {
    for (const internal of ["KvCore", "SnapshotCore", "AppendLogCore", "encodeKeyToFileName", "decodeFileNameToKey", "LOCK_FILE_NAME", "serializeError", "deserializeError", "COMPACT_GRAPH_JOB", "FaultKind"]) {
      expect(publicNames.has(internal), internal).toBe(false);
    }
  });

  it("lists every error code of src/errors.ts in the error table, under its class", () => {
    const rows = errorTableRows();
    for (const [cls, union] of Object.entries(ERROR_CLASSES)) {
      const codes = unionCodes(union);
      expect(codes.length).toBeGreaterThan(0);
      const listed = new Set(rows.filter((r) => r.cls === cls).map((r) => r.code));
      const missing = codes.filter((c) => !listed.has(c));
      expect(missing, `${cls} codes missing from the error table of docs/api.md`).toEqual([]);
    }
  });

  it("lists no code in the error table that its class does not have", () => {
    const known = new Map(Object.entries(ERROR_CLASSES).map(([cls, union]) => [cls, new Set(unionCodes(union))]));
    const rows = errorTableRows();
    expect(rows.length).toBeGreaterThan(0);
    const stale = rows.filter((r) => !known.get(r.cls)?.has(r.code)).map((r) => `${r.cls} ${r.code}`);
    expect(stale).toEqual([]);
  });
});
