/**
 * `compact`: the library's compactGraph run inline on a closed store. The restored state is unchanged, covered
 * frames are deleted (keeping --keep of them), a torn tail is skipped and left, a mid-stream corruption changes
 * nothing, and a store in use is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, runCliInTty, tempDir } from "./fixtures/cli.js";
import { SHOP, libraryRestore, writeShopStore } from "./fixtures/live.js";
import { KINDS, damageFrame, openBackend, storePath } from "./fixtures/stores.js";

const tmp = tempDir("compact");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

interface InspectDoc {
  graphs: Array<{ name: string; baseline: { seq: number }; wal: { frames: number; firstSeq: number | null; lastSeq: number | null } }>;
}
const inspect = (path: string): InspectDoc => JSON.parse(runCli(["inspect", path, "--json"]).stdout) as InspectDoc;

describe.each(KINDS)("compact (%s store)", (kind) => {
  it("folds the WAL into a new baseline, keeps --keep frames, and restores to the same state", async () => {
    const path = storePath(kind, tmp.path("keep"));
    const history = await writeShopStore(kind, path);
    const lastSeq = [...history.keys()].at(-1)!;
    const before = runCli(["export", path, "--graph", SHOP]).stdout;

    const r = runCli(["compact", path, "--graph", SHOP, "--keep", "3"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`graph "shop": baseline seq 1 -> ${lastSeq} (${lastSeq - 1} frames folded)`);
    expect(r.stdout).toContain(`deleted ${lastSeq - 1 - 3} frames, kept 3 at or below the baseline`);

    expect(inspect(path).graphs[0]).toMatchObject({
      baseline: { seq: lastSeq },
      wal: { frames: 3, firstSeq: lastSeq - 2, lastSeq },
    });
    expect(runCli(["export", path, "--graph", SHOP]).stdout).toBe(before);
    expect((await libraryRestore(kind, path)).snapshot).toEqual(history.get(lastSeq));
    expect(runCli(["verify", path]).code).toBe(0);
  });

  it("--json prints the compaction result; a second run has nothing to fold", async () => {
    const path = storePath(kind, tmp.path("json"));
    const history = await writeShopStore(kind, path);
    const lastSeq = [...history.keys()].at(-1)!;
    const first = JSON.parse(runCli(["compact", path, "--graph", SHOP, "--json"]).stdout) as Record<string, unknown>;
    expect(first).toMatchObject({
      graphName: SHOP,
      previousBaselineSeq: 1,
      baselineSeq: lastSeq,
      deletedFrames: lastSeq - 1,
      keptFrames: 0,
      skippedTornFrames: 0,
      atomic: kind === "sqlite",
    });
    expect(first.bytesAfter as number).toBeLessThan(first.bytesBefore as number);
    const again = runCli(["compact", path, "--graph", SHOP]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`graph "shop": nothing to fold, baseline stays at seq ${lastSeq}`);
  });

  it("skips a torn tail and leaves it in place (verify still reports it)", async () => {
    const path = storePath(kind, tmp.path("tail"));
    const history = await writeShopStore(kind, path);
    const lastSeq = [...history.keys()].at(-1)!;
    damageFrame(kind, path, SHOP, lastSeq, "truncate");
    const r = runCli(["compact", path, "--graph", SHOP]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`skipped torn tail frame seq ${lastSeq} (left in place, as restore skips it)`);
    expect(inspect(path).graphs[0]).toMatchObject({ baseline: { seq: lastSeq - 1 }, wal: { frames: 1, firstSeq: lastSeq } });
    const verify = runCli(["verify", path]);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(`torn frame seq ${lastSeq}`);
  });

  it("fails on a mid-stream corruption without changing the store", async () => {
    const path = storePath(kind, tmp.path("mid"));
    await writeShopStore(kind, path);
    damageFrame(kind, path, SHOP, 4, "checksum");
    const before = runCli(["inspect", path, "--json"]).stdout;
    const r = runCli(["compact", path, "--graph", SHOP]);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error torn-write-mid-stream: torn write mid-stream at frame_seq=4 \(checksum-mismatch[^\n]*\n$/);
    expect(runCli(["inspect", path, "--json"]).stdout).toBe(before);
  });

  it("refuses a store held by a running writer, and an unknown graph", async () => {
    const path = storePath(kind, tmp.path("locked"));
    await writeShopStore(kind, path);
    const writer = openBackend(kind, path);
    try {
      const r = runCli(["compact", path, "--graph", SHOP]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(new RegExp(`^error store-locked: store .* is locked by process ${process.pid} on host .*\n$`));
    } finally {
      writer.close();
    }
    const missing = runCli(["compact", path, "--graph", "nope"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/^error graph-not-found: /);
  });
});

describe("compact on a terminal", () => {
  it("draws a progress bar over the frames it reads", async () => {
    const path = storePath("sqlite", tmp.path("tty"));
    const history = await writeShopStore("sqlite", path);
    const frames = [...history.keys()].at(-1)! - 1;
    const r = runCliInTty(["compact", path, "--graph", SHOP]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("compact shop [");
    expect(r.stdout).toContain(`${frames}/${frames}`);
  });
});
