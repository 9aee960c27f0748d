/**
 * The README's "Layers" table is the import rule of the source tree: each row names folders (or root files) of
 * src/ and workers/ and the layers they import. This test reads every import of every source file and checks that
 * the table lists every folder, that each folder imports exactly the layers its row names (a row naming a layer
 * no longer imported is stale too), and that the rows admit no cycle, so lower layers never import higher ones.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

/** `src/<dir>/…` → dir, `src/<file>.ts` → file name without extension, `workers/…` → workers. */
function layerOf(repoPath: string): string {
  const parts = repoPath.split("/");
  if (parts[0] === "workers") return "workers";
  if (parts[0] !== "src" || parts.length < 2) throw new Error(`not a source path: ${repoPath}`);
  return parts.length === 2 ? (parts[1] as string).replace(/\.(d\.ts|ts|js)$/, "") : (parts[1] as string);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

/** layer → layers it imports (relative imports that leave the layer; packages and node: builtins are not layers). */
function actualImports(): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const file of [...sourceFiles(resolve(REPO, "src")), ...sourceFiles(resolve(REPO, "workers"))]) {
    const from = layerOf(relative(REPO, file));
    if (!edges.has(from)) edges.set(from, new Set());
    const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+)["']/g)) {
      const to = layerOf(relative(REPO, resolve(dirname(file), m[1] as string)));
      if (to !== from) edges.get(from)!.add(to);
    }
  }
  return edges;
}

/** layer → layers its README row says it imports. */
function tableImports(): Map<string, Set<string>> {
  const readme = readFileSync(resolve(REPO, "README.md"), "utf8");
  const section = /^## Layers\s*$([\s\S]*?)(?=^## )/m.exec(readme);
  if (section === null) throw new Error("README.md has no Layers section");
  const rows = new Map<string, Set<string>>();
  for (const line of (section[1] as string).split("\n")) {
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    if (cells.length !== 3 || !cells[0]!.startsWith("`")) continue;
    // Notes in parentheses say why; the layer names are the words outside them.
    const imports = cells[2]!.replace(/\([^)]*\)/g, "").split(",").map((s) => s.trim()).filter((s) => s !== "" && s !== "—");
    for (const m of cells[0]!.matchAll(/`([^`]+)`/g)) rows.set(layerOf((m[1] as string).replace(/\/$/, "/x")), new Set(imports));
  }
  return rows;
}

const actual = actualImports();
const table = tableImports();
const sorted = (s: Set<string> | undefined): string[] => [...(s ?? [])].sort();

describe("README Layers table", () => {
  it("has a row for every folder and root file of src/ and for workers/, and no row for anything else", () => {
    expect([...table.keys()].sort()).toEqual([...actual.keys()].sort());
  });

  it("names exactly the layers each folder imports", () => {
    for (const [layer, imports] of actual) {
      expect(sorted(imports), `${layer}: the imports in the source vs the README row`).toEqual(sorted(table.get(layer)));
    }
  });

  it("admits no cycle: lower layers never import higher ones", () => {
    const state = new Map<string, "visiting" | "done">();
    const visit = (layer: string, path: string[]): void => {
      if (state.get(layer) === "done") return;
      expect(state.get(layer), `import cycle: ${[...path, layer].join(" → ")}`).not.toBe("visiting");
      state.set(layer, "visiting");
      for (const next of table.get(layer) ?? []) visit(next, [...path, layer]);
      state.set(layer, "done");
    };
    const unknown = [...table.values()].flatMap((imports) => [...imports]).filter((name) => !table.has(name));
    expect(unknown, "names in the may-import column that have no row").toEqual([]);
    for (const layer of table.keys()) visit(layer, []);
  });
});
