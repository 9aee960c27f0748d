/** `inspect` and `frames` run as a child process against real SQLite and file-backend stores. */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, damageFrame, storePath, writeRaw } from "./fixtures/stores.js";

const tmp = tempDir("inspect");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

describe.each(KINDS)("inspect (%s store)", (kind) => {
  it("lists every graph with its baseline, WAL size, seq range, lifecycles and kinds", async () => {
    const path = storePath(kind, tmp.path("two"));
    await buildStore(kind, path, [{ name: "orders" }, { name: "users", baselineSeq: 4, frameSeqs: [5, 6, 7] }]);
    // A value that is neither a baseline nor a frame must not show up as a graph.
    writeRaw(kind, path, "unrelated", new TextEncoder().encode('{"hello":1}'));

    const r = runCli(["inspect", path]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain(`store ${path} (${kind}), 2 graphs`);
    expect(r.stdout).toMatch(/graph "orders"\n {2}baseline +seq 1, 2023-11-14T22:13:20\.000Z, 3 nodes/);
    expect(r.stdout).toMatch(/ {2}wal +10 frames, [\d.]+ KiB, seq 2\.\.11/);
    expect(r.stdout).toMatch(/graph "users"\n {2}baseline +seq 4/);
    expect(r.stdout).toMatch(/ {2}wal +3 frames, .*seq 5\.\.7/);
    expect(r.stdout).toContain("lifecycles  spec 0, data 3, ownership 0");
    expect(r.stdout).toContain("kinds       node.set 10");
    expect(r.stdout).not.toContain("unrelated");
  });

  it("a baseline whose timestamp_ns is an exact u64 (the Rust reference's) is shown, not an internal error", async () => {
    const path = storePath(kind, tmp.path("wide-ts"));
    const baseline =
      '{"format_version":1,"mode":"full","name":"g","seq":1,"snapshot":{"edges":[],"name":"g","nodes":{"a":{"deps":[],"meta":{},"status":"settled","type":"state","value":1}},"subgraphs":[],"version":1},"timestamp_ns":1747000000123456789}';
    writeRaw(kind, path, "g", new TextEncoder().encode(baseline));
    const human = runCli(["inspect", path]);
    expect(human.stderr).toBe("");
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/baseline +seq 1, 2025-05-11T21:46:40\.123Z/);
    const json = runCli(["inspect", path, "--json"]);
    expect(json.code).toBe(0);
    expect(json.stdout).toContain('"timestamp_ns":1747000000123456789'); // exact, not rounded
  });

  it("--json gives the same facts as one machine-readable document; --graph narrows it", async () => {
    const path = storePath(kind, tmp.path("json"));
    await buildStore(kind, path, [{ name: "g" }, { name: "h" }]);
    damageFrame(kind, path, "g", 11, "truncate");
    const r = runCli(["inspect", path, "--graph", "g", "--json"]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      store: { kind: string; path: string };
      graphs: Array<{ name: string; baseline: { state: string; seq: number; nodes: number }; wal: Record<string, unknown> }>;
    };
    expect(doc.store).toEqual({ kind, path });
    expect(doc.graphs.map((g) => g.name)).toEqual(["g"]);
    const [g] = doc.graphs;
    expect(g!.baseline).toMatchObject({ state: "ok", seq: 1, nodes: 3, lifecycle: null, timestamp_ns: 1_700_000_000_000_000_000 });
    expect(g!.wal).toMatchObject({
      frames: 10,
      firstSeq: 2,
      lastSeq: 11,
      undecodable: 1,
      lifecycles: { spec: 0, data: 9, ownership: 0 },
      kinds: { "node.set": 9 },
    });
    expect(g!.wal.bytes).toBeGreaterThan(0);
  });

  it("finds a graph that only has WAL frames, and says it has no baseline", async () => {
    const path = storePath(kind, tmp.path("walonly"));
    await buildStore(kind, path, [{ name: "loose", baselineSeq: null, frameSeqs: [1, 2] }]);
    const r = runCli(["inspect", path]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/graph "loose"\n {2}baseline +none\n {2}wal +2 frames/);
  });
});

describe.each(KINDS)("frames (%s store)", (kind) => {
  it("prints one canonical JSON object per line, honouring --from and --limit", async () => {
    const path = storePath(kind, tmp.path("frames"));
    await buildStore(kind, path, [{ name: "g" }]);
    const r = runCli(["frames", path, "--graph", "g", "--from", "4", "--limit", "3"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    const objs = lines.map((l) => JSON.parse(l) as { seq: number; key: string; checksum_ok: boolean; frame: { frame_seq: number; change: { change: { value: number } } } });
    expect(objs.map((o) => o.seq)).toEqual([4, 5, 6]);
    expect(objs.map((o) => o.frame.frame_seq)).toEqual([4, 5, 6]);
    expect(objs.every((o) => o.checksum_ok)).toBe(true);
    expect(objs[0]!.key).toBe("g/wal/00000000000000000004");
    expect(objs[0]!.frame.change.change.value).toBe(4);
    // Canonical: keys sorted, no whitespace.
    expect(lines[0]!.startsWith('{"checksum_ok":true,"frame":{"change":')).toBe(true);
  });

  it("stops quietly when the reader goes away (`| head -n 1`)", async () => {
    const path = storePath(kind, tmp.path("pipe"));
    // Far more output than a pipe buffers, so the writer does hit the closed pipe.
    await buildStore(kind, path, [{ name: "g", frameSeqs: Array.from({ length: 3000 }, (_, i) => i + 2) }]);
    const r = spawnSync("bash", ["-c", 'set -o pipefail; "$0" "$1" frames "$2" --graph g | head -n 1', process.execPath, BIN, path], {
      encoding: "utf8",
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toMatchObject({ seq: 2 });
  });

  it("shows damaged frames instead of hiding them", async () => {
    const path = storePath(kind, tmp.path("frames-bad"));
    await buildStore(kind, path, [{ name: "g" }]);
    damageFrame(kind, path, "g", 3, "checksum");
    damageFrame(kind, path, "g", 11, "truncate");
    const r = runCli(["frames", path, "--graph", "g"]);
    expect(r.code).toBe(0);
    const objs = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objs).toHaveLength(10);
    expect(objs[1]).toMatchObject({ seq: 3, checksum_ok: false });
    expect(objs[9]).toMatchObject({ seq: 11, key: "g/wal/00000000000000000011" });
    expect(objs[9]!.error).toMatch(/not valid JSON/);
    expect(typeof objs[9]!.raw).toBe("string");
  });
});
