/**
 * `compact`: the library's compactGraph run inline on a closed store. The restored state is unchanged, covered
 * frames are deleted (keeping --keep of them), a torn tail is skipped and left, a mid-stream corruption changes
 * nothing, and a store in use is refused. On SQLite it reports the free space the file keeps, and --vacuum returns it.
 */
import { statSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachSnapshotStorage, createGraph, kvStorage, snapshotStorage, walFrameCodec } from "../../src/index.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { WALFrame } from "../../src/wal/frame.js";
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

describe("compact: the disk space of a SQLite store", () => {
  it("says how much free space the file keeps after compaction, and --vacuum gives it back to the disk", async () => {
    const path = storePath("sqlite", tmp.path("space"));
    const backend = openBackend("sqlite", path);
    const kv = kvStorage<WALFrame>(backend, { codec: walFrameCodec });
    // A large WAL of one graph beside its baseline: many big frames, then compaction deletes them.
    const g = createGraph("big");
    g.state("blob", "x");
    const handle = attachSnapshotStorage(g, [{ snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal: kv }], {
      compactEvery: Number.POSITIVE_INFINITY,
    });
    for (let i = 0; i < 300; i++) g.set("blob", `${i}:${"y".repeat(4000)}`);
    await handle.flush();
    await handle.dispose();
    backend.close();
    const grown = statSync(path).size;

    const first = runCli(["compact", path, "--graph", "big"]);
    expect(first.code, first.stderr).toBe(0);
    const kept = /SQLite file ([\d.]+ \w+), of which ([\d.]+ \w+) is free space it keeps; run again with --vacuum to give it back/.exec(first.stdout);
    expect(kept, first.stdout).not.toBeNull();
    expect(statSync(path).size).toBeGreaterThan(grown / 2); // the file keeps its size: the pages are only free

    const second = runCli(["compact", path, "--graph", "big", "--vacuum"]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/SQLite file vacuumed: [\d.]+ \w+ on disk/);
    expect(statSync(path).size).toBeLessThan(grown / 10);
    expect(runCli(["verify", path]).code).toBe(0);
  });
});

describe("counts in words", () => {
  it("says 1 frame, 1 node and 1 graph, not 1 frames", async () => {
    const path = storePath("sqlite", tmp.path("one"));
    const backend = openBackend("sqlite", path);
    const g = createGraph("solo");
    g.state("only", 0);
    const handle = attachSnapshotStorage(
      g,
      [{ snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }) }],
      { compactEvery: Number.POSITIVE_INFINITY },
    );
    g.set("only", 1);
    await handle.flush();
    await handle.dispose();
    backend.close();
    const inspected = runCli(["inspect", path]).stdout;
    expect(inspected).toContain("1 graph\n");
    expect(inspected).toMatch(/1 node, /);
    expect(inspected).toMatch(/wal {9}1 frame, /);
    expect(runCli(["verify", path]).stdout).toMatch(/, 1 frame \(1 above the baseline\)/);
    const compacted = runCli(["compact", path, "--graph", "solo"]).stdout;
    expect(compacted).toContain("(1 frame folded)");
    expect(compacted).toContain("deleted 1 frame, kept 0");
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
