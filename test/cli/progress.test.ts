/**
 * Progress bars: drawn on stderr when it is a terminal (a real pseudo-terminal via util-linux `script`), absent
 * when output is piped or with --no-progress, and never mixed into stdout data.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, runCliInTty, tempDir } from "./fixtures/cli.js";
import { buildStore, storePath } from "./fixtures/stores.js";

const tmp = tempDir("progress");
let store: string;
beforeAll(async () => {
  requireBuiltBin();
  store = storePath("sqlite", tmp.path("p"));
  await buildStore("sqlite", store, [{ name: "g", frameSeqs: Array.from({ length: 200 }, (_, i) => i + 2) }]);
});
afterAll(() => tmp.remove());

describe("progress bars", () => {
  it("verify on a terminal draws a bar with the frame count", () => {
    const r = runCliInTty(["verify", store]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("verify g [");
    expect(r.stdout).toContain("200/200");
    expect(r.stdout).toContain("result: clean (exit 0)");
  });

  it("--no-progress keeps a terminal quiet", () => {
    const r = runCliInTty(["verify", store, "--no-progress"]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("verify g [");
    expect(r.stdout).toContain("result: clean (exit 0)");
  });

  it("piped runs draw nothing: stderr stays empty and stdout is only data", () => {
    for (const args of [["verify", store], ["inspect", store], ["stats", "--frames", "50"]]) {
      const r = runCli(args);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      expect(r.stdout).not.toContain("[");
    }
    const frames = runCli(["frames", store, "--graph", "g"]);
    expect(frames.stderr).toBe("");
    expect(frames.stdout.trimEnd().split("\n").every((l) => l.startsWith("{"))).toBe(true);
  });
});
