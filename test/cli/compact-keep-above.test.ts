/**
 * `compact --keep-above SEQ`: frames above SEQ stay whatever the new baseline covers (the lowest baseline seq of other
 * stores whose pairs share this WAL: design §3.10); the frames below it go, and the store restores as before.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { SHOP, libraryRestore, writeShopStore } from "./fixtures/live.js";
import { storePath } from "./fixtures/stores.js";

const tmp = tempDir("compact-keep-above");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

it("keeps every frame above --keep-above and deletes the covered ones below it", async () => {
  const path = storePath("sqlite", tmp.path("keep-above"));
  const history = await writeShopStore("sqlite", path);
  const lastSeq = [...history.keys()].at(-1)!;
  expect(lastSeq).toBeGreaterThan(4);
  const r = runCli(["compact", path, "--graph", SHOP, "--keep-above", "3", "--json"]);
  expect(r.stderr).toBe("");
  expect(JSON.parse(r.stdout)).toMatchObject({ baselineSeq: lastSeq, deletedFrames: 2, keptFrames: lastSeq - 3 });
  const doc = JSON.parse(runCli(["inspect", path, "--json"]).stdout) as { graphs: Array<{ wal: { firstSeq: number; lastSeq: number } }> };
  expect(doc.graphs[0]?.wal).toMatchObject({ firstSeq: 4, lastSeq });
  expect((await libraryRestore("sqlite", path)).snapshot).toEqual(history.get(lastSeq));
  expect(runCli(["compact", path, "--graph", SHOP, "--keep-above", "x"]).code).not.toBe(0);
});
