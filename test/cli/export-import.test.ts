/**
 * `export` prints what the library's restore rebuilds (checked against the live graph and against restoreSnapshot),
 * honours --at and the torn-write policy, and `import` writes an exported snapshot back as a superseding baseline.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/codec/json.js";
import type { GraphPersistSnapshot } from "../../src/graph/types.js";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { SHOP, libraryRestore, writeShopStore } from "./fixtures/live.js";
import { KINDS, damageFrame, openBackend, storePath, type Kind } from "./fixtures/stores.js";

const tmp = tempDir("export");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

function exportJson(path: string, ...extra: string[]): GraphPersistSnapshot {
  const r = runCli(["export", path, "--graph", SHOP, ...extra]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as GraphPersistSnapshot;
}

const lastOf = (history: Map<number, GraphPersistSnapshot>): [number, GraphPersistSnapshot] => [...history].at(-1)!;

describe.each(KINDS)("export (%s store written by a live graph)", (kind) => {
  it("prints the live graph's final snapshot as canonical JSON, equal to the library's restore", async () => {
    const path = storePath(kind, tmp.path("shop"));
    const history = await writeShopStore(kind, path);
    const [, final] = lastOf(history);
    const r = runCli(["export", path, "--graph", SHOP]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(canonicalJson(final) + "\n");
    expect((await libraryRestore(kind, path)).snapshot).toEqual(final);
  });

  it("--at SEQ gives the snapshot the graph had at that seq; below the baseline or beyond the newest seq is an error that says what exists", async () => {
    const path = storePath(kind, tmp.path("at"));
    const history = await writeShopStore(kind, path);
    for (const [seq, snap] of history) expect(exportJson(path, "--at", String(seq))).toEqual(snap);
    const below = runCli(["export", path, "--graph", SHOP, "--at", "0"]);
    expect(below.code).toBe(4);
    expect(below.stderr).toMatch(/^error seq-out-of-range: --at 0 is older than graph "shop"'s baseline \(seq 1\): .* the earliest seq export can give is 1\n$/);
    const [lastSeq] = lastOf(history);
    // Beyond the newest seq: an error, not the latest state passed off as the one asked for.
    const beyond = runCli(["export", path, "--graph", SHOP, "--at", String(lastSeq + 1)]);
    expect(beyond.code).toBe(4);
    expect(beyond.stdout).toBe("");
    expect(beyond.stderr).toBe(
      `error seq-out-of-range: --at ${lastSeq + 1} is beyond graph "shop"'s newest seq ${lastSeq}: pick a seq from 1 (its baseline) to ${lastSeq}, or leave --at out for the latest state\n`,
    );
  });

  it("--out writes the file and says what it wrote", async () => {
    const path = storePath(kind, tmp.path("out"));
    const history = await writeShopStore(kind, path);
    const [seq, final] = lastOf(history);
    const out = tmp.path("shop.json");
    const r = runCli(["export", path, "--graph", SHOP, "--out", out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`exported graph "shop" at seq ${seq} (${seq - 1} frames folded) to ${out}\n`);
    expect(readFileSync(out, "utf8")).toBe(canonicalJson(final) + "\n");
  });

  it("skips a torn tail like restore does (and warns); a mid-stream corruption fails like restore", async () => {
    const path = storePath(kind, tmp.path("torn"));
    const history = await writeShopStore(kind, path);
    const seqs = [...history.keys()];
    const last = seqs.at(-1)!;
    damageFrame(kind, path, SHOP, last, "truncate");
    const tail = runCli(["export", path, "--graph", SHOP]);
    expect(tail.code).toBe(0);
    expect(tail.stderr).toBe(`warning: skipped torn tail frame seq ${last} (decode-failed), as restore does\n`);
    expect(JSON.parse(tail.stdout)).toEqual(history.get(seqs.at(-2)!));
    const lib = await libraryRestore(kind, path);
    expect(lib.result.skippedFrames).toBe(1);
    expect(lib.snapshot).toEqual(JSON.parse(tail.stdout));
    // verify agrees: restorable with a skipped tail.
    expect(runCli(["verify", path]).code).toBe(1);

    damageFrame(kind, path, SHOP, 3, "checksum");
    const mid = runCli(["export", path, "--graph", SHOP]);
    expect(mid.code).toBe(4);
    expect(mid.stdout).toBe("");
    expect(mid.stderr).toMatch(/^error torn-write-mid-stream: torn write mid-stream at frame_seq=3 \(checksum-mismatch/);
    await expect(libraryRestore(kind, path)).rejects.toMatchObject({ code: "torn-write-mid-stream" });
    expect(runCli(["verify", path]).code).toBe(2);
  });

  it("a graph without a usable baseline cannot be exported: baseline-missing", async () => {
    const path = storePath(kind, tmp.path("nobase"));
    await writeShopStore(kind, path);
    const b = openBackend(kind, path);
    b.delete(SHOP);
    b.close();
    const r = runCli(["export", path, "--graph", SHOP]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error baseline-missing: no usable baseline for graph "shop": nothing is stored under the graph name\n$/);
  });
});

describe.each(KINDS)("import into a %s store", (kind) => {
  const other: Kind = kind === "sqlite" ? "file" : "sqlite";

  it("round-trips an export into a new store of the other kind (baseline seq 1, nothing to replay)", async () => {
    const src = storePath(kind, tmp.path("src"));
    const [, final] = lastOf(await writeShopStore(kind, src));
    const file = tmp.path("snap.json");
    expect(runCli(["export", src, "--graph", SHOP, "--out", file]).code).toBe(0);

    const dst = storePath(other, tmp.path("dst"));
    const args = other === "file" ? ["import", file, dst, "--backend", "file"] : ["import", file, dst];
    const r = runCli(args);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('imported graph "shop" as baseline seq 1; 0 stored frames now superseded\n');
    expect(exportJson(dst)).toEqual(final);
    expect((await libraryRestore(other, dst)).snapshot).toEqual(final);
  });

  it("into the same store: a new baseline above every stored seq supersedes the WAL; compact then drops it", async () => {
    const path = storePath(kind, tmp.path("same"));
    const history = await writeShopStore(kind, path);
    const [lastSeq] = lastOf(history);
    // An edited snapshot, to see that the import (not the WAL) is what restore now sees.
    const snap = exportJson(path);
    (snap.nodes.price as { value: number }).value = 99;
    const file = tmp.path("edited.json");
    writeFileSync(file, JSON.stringify(snap));

    const r = runCli(["import", file, path]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`imported graph "shop" as baseline seq ${lastSeq + 1}; ${lastSeq - 1} stored frames now superseded\n`);
    // Again with --json: the same import, one seq higher.
    const json = runCli(["import", file, path, "--json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ graph: "shop", baselineSeq: lastSeq + 2, supersededFrames: lastSeq - 1 });
    expect(exportJson(path)).toEqual(snap);
    const lib = await libraryRestore(kind, path);
    expect(lib.result).toMatchObject({ replayedFrames: 0, finalSeq: lastSeq + 2 });
    expect(lib.snapshot.nodes.price).toMatchObject({ value: 99 });
    expect(runCli(["verify", path]).code).toBe(0);

    expect(runCli(["compact", path, "--graph", SHOP]).code).toBe(0);
    const doc = JSON.parse(runCli(["inspect", path, "--json"]).stdout) as { graphs: Array<{ wal: { frames: number }; baseline: { seq: number } }> };
    expect(doc.graphs[0]).toMatchObject({ wal: { frames: 0 }, baseline: { seq: lastSeq + 2 } });
  });

  it("rejects a file that is not a graph snapshot with invalid-input, writing nothing", async () => {
    const path = storePath(kind, tmp.path("bad"));
    await writeShopStore(kind, path);
    const before = runCli(["inspect", path, "--json"]).stdout;
    for (const [content, pattern] of [
      ["{not json", /is not valid JSON|bytes are not valid JSON/],
      ['{"name":"shop","nodes":{},"edges":[],"subgraphs":[]}', /is not a graph snapshot: version must be 1/],
      ['{"name":"shop","nodes":{"a":{"type":"state"}},"edges":[],"subgraphs":[],"version":1}', /nodes must map paths to node slices/],
    ] as const) {
      const file = tmp.path("bad.json");
      writeFileSync(file, content);
      const r = runCli(["import", file, path]);
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(new RegExp(`^error invalid-input: .*${pattern.source}`));
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    }
    expect(runCli(["inspect", path, "--json"]).stdout).toBe(before);
  });

  it("refuses a store held by a running writer (store-locked, exit 3)", async () => {
    const path = storePath(kind, tmp.path("locked"));
    await writeShopStore(kind, path);
    const file = tmp.path("s.json");
    expect(runCli(["export", path, "--graph", SHOP, "--out", file]).code).toBe(0);
    const writer = openBackend(kind, path);
    try {
      const r = runCli(["import", file, path]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(new RegExp(`^error store-locked: store .* is locked by process ${process.pid} on host `));
    } finally {
      writer.close();
    }
  });
});
