/**
 * A `--graph` argument the store does not hold is named in the error line as a JSON string: the name was put between
 * quotes as is, and the one-line rule turned a newline in it into a space, so `--graph $'g\n'` on a store holding
 * graph "g" said `no graph "g "`: a name that is neither the one given nor one stored. Escaped, the line says which.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { buildStore } from "./fixtures/stores.js";

const tmp = tempDir("graph-arg-shown");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

it.each([
  ["g\n", String.raw`no graph "g\n" in `],
  ["g\t ", String.raw`no graph "g\t " in `],
  ['say "hi"', String.raw`no graph "say \"hi\"" in `],
])("--graph %j is shown escaped in the one error line", async (graph, shown) => {
  const store = tmp.path("s.db");
  await buildStore("sqlite", store, [{ name: "g" }]);
  for (const command of ["export", "frames", "inspect", "verify"]) {
    const r = runCli([command, store, "--graph", graph]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(r.stderr.startsWith(`error graph-not-found: ${shown}`), r.stderr).toBe(true);
  }
});
