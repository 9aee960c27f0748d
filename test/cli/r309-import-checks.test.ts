/**
 * Review r309 F7: `import` took a file holding one key twice (JSON.parse keeps the last, silently) and a graph name
 * holding NUL, which no command line can pass, so no command could name the graph after. Both are refused now
 * (CodecError `duplicate-key`; CliError `invalid-input`), exit 4, before the store is created.
 */
import { existsSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";

const tmp = tempDir("r309-import-checks");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const slice = (value: string): string => `{"type":"state","deps":[],"status":"settled","meta":{},"value":${value}}`;
const snap = (name: string, nodes: string): string => `{"name":${name},"version":1,"nodes":{${nodes}},"edges":[],"subgraphs":[]}`;

function importText(text: string): { code: number | null; stderr: string; created: boolean } {
  const file = tmp.path("snap.json");
  writeFileSync(file, text);
  const store = tmp.path("s.db");
  const r = runCli(["import", file, store]);
  return { code: r.code, stderr: r.stderr, created: existsSync(store) };
}

describe("import refuses what the file cannot mean", () => {
  it("a key twice with different values, at the top or deep in a value: duplicate-key, nothing created", () => {
    for (const text of [
      `{"name":"g","name":"h","version":1,"nodes":{},"edges":[],"subgraphs":[]}`,
      snap('"g"', `"a":${slice('{"x":1,"x":2}')}`),
      snap('"g"', `"a":${slice("1")},"a":${slice("2")}`),
    ]) {
      const r = importText(text);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/^error duplicate-key: .*: key "(name|x|a)" appears twice in one object with different values/);
      expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
      expect(r.created).toBe(false);
    }
  });

  it("a key repeated with the same value means one thing: imported", () => {
    const r = importText(snap('"g"', `"a":${slice('{"x":1,"x":1}')}`));
    expect(r.code, r.stderr).toBe(0);
  });

  it("a graph name holding NUL: invalid-input, nothing created", () => {
    const r = importText(snap('"g\\u0000x"', `"a":${slice("1")}`));
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/^error invalid-input: .*graph name "g\\u0000x" cannot be passed on a command line \(it holds a NUL character\)/);
    expect(r.created).toBe(false);
  });
});
