/**
 * The CLI over one key space shared by many graphs (docs/design.md §3.27). Names that only look alike ("g", "g/wal",
 * "g/wal/wal", "/wal/" inside, a newline) are each their own graph for every command, and compacting one leaves the
 * others as they were. A name shaped like another record's key (graph "a"'s frame key), or empty, is refused where it
 * enters (`--graph`, the snapshot file of `import`) with `error invalid-name` (exit 4), before anything is read or
 * written: `import` of a snapshot named "a/wal/00000000000000000002" used to overwrite graph a's frame 2. A frame key
 * already holding another graph's baseline is reported by `verify` as a corrupt row, never as a skippable torn tail.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { canonicalJson, jsonCodec } from "../../src/codec/json.js";
import type { GraphPersistSnapshot } from "../../src/graph/types.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, baselineSnapshot, buildStore, openBackend, storePath, writeRaw } from "./fixtures/stores.js";

const tmp = tempDir("names");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const LOOKALIKES = ["g", "g/wal", "g/wal/wal", "has/wal/inside", "two\nlines"];

/** What restore rebuilds for a buildStore graph: its baseline with `a` set by the last frame (seq 11). */
function expected(name: string): GraphPersistSnapshot {
  const snap = baselineSnapshot(name);
  return { ...snap, nodes: { ...snap.nodes, a: { ...snap.nodes.a!, value: 11 }, sum: snap.nodes.sum! } };
}

/**
 * verify finds the store clean (exit 0). A failure shows what verify printed: exit 1 is also node's for a crash, e.g.
 * a bin whose dist/ another build was rewriting (not a finding of verify's; its stack says so).
 */
function expectClean(path: string): void {
  const r = runCli(["verify", path]);
  expect(r.code, `verify exited ${String(r.code)}; stdout: ${r.stdout}; stderr: ${r.stderr}`).toBe(0);
}

function exported(path: string, name: string): GraphPersistSnapshot {
  const r = runCli(["export", path, "--graph", name]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as GraphPersistSnapshot;
}

describe.each(KINDS)("graphs whose names look alike, one %s store", (kind) => {
  it("inspect lists each, verify finds each clean, export and compact each touch only their own records", async () => {
    const path = storePath(kind, tmp.path("lookalikes"));
    await buildStore(kind, path, LOOKALIKES.map((name) => ({ name })));
    const inspect = runCli(["inspect", path, "--json"]);
    expect(inspect.code).toBe(0);
    const doc = JSON.parse(inspect.stdout) as { graphs: Array<{ name: string; wal: { frames: number } }> };
    expect(doc.graphs.map((g) => [g.name, g.wal.frames])).toEqual([...LOOKALIKES].sort().map((n) => [n, 10]));
    expectClean(path);
    const before = new Map(LOOKALIKES.map((n) => [n, exported(path, n)]));
    for (const name of LOOKALIKES) {
      // buildStore's derived `sum` is stored as a value; what matters is that each graph reads its own frames.
      expect(before.get(name)!.nodes.a).toEqual(expected(name).nodes.a);
      const compact = runCli(["compact", path, "--graph", name, "--json"]);
      expect(compact.code).toBe(0);
      expect(JSON.parse(compact.stdout)).toMatchObject({ graphName: name, foldedFrames: 10, deletedFrames: 10 });
    }
    // Each compaction deleted exactly its own 10 frames (above) and the others still read the same.
    for (const name of LOOKALIKES) expect(exported(path, name)).toEqual(before.get(name));
    expectClean(path);
  });
});

describe.each(KINDS)("names that cannot be a graph's (%s store)", (kind) => {
  const frameKey = walFrameKey(graphWalPrefix("a"), 2);

  it.each(["inspect", "verify", "frames", "export", "compact"])("%s --graph refuses an empty name and a frame key's shape", async (command) => {
    const path = storePath(kind, tmp.path(`refuse-${command}`));
    await buildStore(kind, path, [{ name: "a" }]);
    for (const name of ["", frameKey]) {
      const r = runCli([command, path, "--graph", name]);
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/^error invalid-name: --graph: .* is not a usable graph name: /);
      expect(r.stdout).toBe("");
    }
    expectClean(path);
  });

  it("stats --graph refuses a scratch graph name shaped like a frame key before writing anything", async () => {
    const path = storePath(kind, tmp.path("stats"));
    await buildStore(kind, path, [{ name: "a" }]);
    const r = runCli(["stats", path, "--graph", walFrameKey(graphWalPrefix("a"), 99), "--frames", "10", "--batch", "5"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error invalid-name: --graph: /);
    expectClean(path);
  });

  it("import refuses a snapshot named like graph a's frame key; the frame stays", async () => {
    const path = storePath(kind, tmp.path("import"));
    await buildStore(kind, path, [{ name: "a" }]);
    const backend = openBackend(kind, path);
    const frame = backend.read(frameKey);
    backend.close();
    expect(frame).toBeDefined();
    const file = tmp.path("evil.json");
    writeFileSync(file, canonicalJson(baselineSnapshot(frameKey)));
    const r = runCli(["import", file, path]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error invalid-name: import of .* is not a usable graph name: it is shaped like a WAL frame key \(graph "a"'s frame 2\)/);
    const after = openBackend(kind, path);
    expect(after.read(frameKey)).toEqual(frame);
    after.close();
    expectClean(path);
  });

  it("verify reports a frame key holding another graph's baseline as a corrupt row, not a skippable tail", async () => {
    const path = storePath(kind, tmp.path("collided"));
    await buildStore(kind, path, [{ name: "a" }]);
    const tail = walFrameKey(graphWalPrefix("a"), 11);
    const record = { format_version: 1, mode: "full", name: tail, seq: 1, snapshot: baselineSnapshot("x"), timestamp_ns: 0 };
    writeRaw(kind, path, tail, jsonCodec.encode(record));
    const r = runCli(["verify", path, "--json"]);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as { graphs: Array<{ name: string; verdict: string; problems: unknown[] }> };
    expect(doc.graphs).toEqual([
      expect.objectContaining({
        name: "a",
        verdict: "not-restorable",
        problems: [{ kind: "corrupt-row", key: tail, found: `the baseline of graph ${JSON.stringify(tail)}`, restorable: false }],
      }),
    ]);
  });

  it("a graph with an empty name in a foreign store is skipped by inspect with a warning, the others listed", async () => {
    const path = storePath(kind, tmp.path("empty"));
    await buildStore(kind, path, [{ name: "a" }, { name: "", baselineSeq: null, frameSeqs: [1, 2] }]);
    const r = runCli(["inspect", path, "--json"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('warning: skipped "": not a usable graph name (it is empty)\n');
    expect((JSON.parse(r.stdout) as { graphs: Array<{ name: string }> }).graphs.map((g) => g.name)).toEqual(["a"]);
  });
});
