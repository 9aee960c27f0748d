/**
 * What `npm pack` ships: the built library and workers, the license and changelog, the docs and examples the README
 * links to, not the demo; and type declarations whose every bare import resolves to a runtime dependency (a strict
 * user without our devDependencies would otherwise get TS7016), with source maps that carry their sources.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const pkg = JSON.parse(readFileSync(`${REPO}package.json`, "utf8")) as {
  dependencies: Record<string, string>;
  scripts: Record<string, string>;
  license: string;
};

interface PackEntry {
  files: Array<{ path: string }>;
}

// --ignore-scripts: dist/ is already built by `npm test`'s pretest; packing must not rebuild in the middle of a run.
const packed = (JSON.parse(
  execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: REPO, encoding: "utf8" }),
) as PackEntry[])[0]!.files.map((f) => f.path);

describe("the npm package", () => {
  it("builds before packing, so a clean clone packs the library, and drops output whose source is gone", () => {
    expect(pkg.scripts.prepack).toBe("npm run build && node scripts/prune-dist.mjs");
  });

  it("ships the library, the worker entry, the license and the changelog, and not the demo", () => {
    expect(packed).toEqual(expect.arrayContaining(["dist/src/index.js", "dist/src/index.d.ts", "dist/src/cli/main.js", "LICENSE", "CHANGELOG.md", "README.md"]));
    expect(packed.some((p) => p.startsWith("dist/workers/") && p.endsWith(".js"))).toBe(true);
    expect(packed.filter((p) => p.startsWith("dist/src/demo/"))).toEqual([]);
    expect(packed.filter((p) => p.startsWith("dist/bench/") || p.startsWith("test/") || p.startsWith("src/"))).toEqual([]);
    expect(readFileSync(`${REPO}LICENSE`, "utf8")).toContain(`${pkg.license} License`);
  });

  it("ships the docs and examples its markdown links to: every relative link resolves to a shipped file and heading", () => {
    expect(packed).toEqual(expect.arrayContaining(["docs/api.md", "docs/design.md", "docs/protocol.md", "docs/graph-model.md", "docs/postgres.md", "examples/kv-inline.mjs"]));
    const shipped = new Set(packed);
    const outsideCode = (md: string): string => md.replace(/^```[\s\S]*?^```/gm, "");
    /** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
    const anchors = (file: string): Set<string> => {
      const seen = new Map<string, number>();
      const out = new Set<string>();
      for (const m of outsideCode(readFileSync(`${REPO}${file}`, "utf8")).matchAll(/^#{1,6}\s+(.*)$/gm)) {
        const text = (m[1] as string).replace(/\[([^\]]*)\]\([^)]*\)/g, "$1");
        const slug = text.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
        const n = seen.get(slug) ?? 0;
        seen.set(slug, n + 1);
        out.add(n === 0 ? slug : `${slug}-${n}`);
      }
      return out;
    };
    const broken: string[] = [];
    let links = 0;
    for (const file of packed.filter((p) => p.endsWith(".md"))) {
      for (const m of outsideCode(readFileSync(`${REPO}${file}`, "utf8")).matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = m[1] as string;
        if (/^[a-z]+:/.test(link)) continue;
        const [path = "", anchor] = link.split("#");
        const target = path === "" ? file : normalize(join(dirname(file), path));
        // The benchmarks run from a clone (npm run bench): their README is not part of the package.
        if (target.startsWith("bench/")) continue;
        links++;
        if (!shipped.has(target)) broken.push(`${file}: ${link} (not shipped)`);
        else if (anchor !== undefined && target.endsWith(".md") && !anchors(target).has(anchor)) broken.push(`${file}: ${link} (no such heading)`);
      }
    }
    expect(links).toBeGreaterThan(30);
    expect(broken).toEqual([]);
  });

  it("ships type declarations whose bare imports are all runtime dependencies", () => {
    const external = new Set<string>();
    for (const file of packed.filter((p) => p.endsWith(".d.ts"))) {
      const text = readFileSync(`${REPO}${file}`, "utf8");
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["']([^"'.][^"']*)["']/g)) {
        const spec = m[1]!;
        if (spec.startsWith("node:") || builtinModules.includes(spec)) continue;
        external.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
      }
    }
    expect(external.size).toBeGreaterThan(0);
    for (const name of external) {
      const typesPackage = name.startsWith("@") ? `@types/${name.slice(1).replace("/", "__")}` : `@types/${name}`;
      const shipsTypes = name in pkg.dependencies || typesPackage in pkg.dependencies;
      expect(shipsTypes, `${name} is imported by a shipped .d.ts but neither it nor ${typesPackage} is a dependency`).toBe(true);
    }
  });

  it("ships source maps that carry their sources (no dangling paths to unshipped .ts files)", () => {
    const maps = packed.filter((p) => p.endsWith(".js.map"));
    expect(maps.length).toBeGreaterThan(0);
    for (const file of maps) {
      const map = JSON.parse(readFileSync(`${REPO}${file}`, "utf8")) as { sources: string[]; sourcesContent?: string[] };
      expect(map.sourcesContent?.length, file).toBe(map.sources.length);
    }
  });
});
