/**
 * Every CLI command reads a graph the way restore does (one reader, docs/design.md §3.16): on a store damaged in
 * each way below, `verify`'s verdict is restore's outcome, `export` prints what restore rebuilds or fails as it
 * does, and `compact` folds exactly when restore would succeed, changing nothing otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonCodec } from "../../src/codec/json.js";
import { createGraph } from "../../src/graph/graph.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { GraphPersistSnapshot } from "../../src/graph/types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { sealWalFrame, walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, damageFrame, openBackend, setFrame, storePath, writeRaw, type Kind } from "./fixtures/stores.js";

const tmp = tempDir("agree");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

/** The graph code of `buildStore`'s graphs: states a, b and derived sum. */
function buildGraph(name: string) {
  const g = createGraph(name);
  g.state("a", 0);
  g.state("b", 0);
  g.derived("sum", ["a", "b"], (a, b) => (a as number) + (b as number));
  return g;
}

async function libraryRestore(kind: Kind, path: string): Promise<{ snapshot?: GraphPersistSnapshot; code?: string }> {
  const backend = openBackend(kind, path);
  try {
    const g = buildGraph("g");
    await restoreSnapshot(g, {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
    });
    return { snapshot: g.snapshot() };
  } catch (err) {
    return { code: (err as { code?: string }).code ?? String(err) };
  } finally {
    backend.close();
  }
}

function rawOf(kind: Kind, path: string, key: string): Uint8Array {
  const backend = openBackend(kind, path);
  try {
    return backend.read(key)!;
  } finally {
    backend.close();
  }
}

function rewriteBaseline(kind: Kind, path: string, edit: (r: Record<string, unknown>) => void): void {
  const record = jsonCodec.decode(rawOf(kind, path, "g")) as Record<string, unknown>;
  edit(record);
  writeRaw(kind, path, "g", jsonCodec.encode(record));
}

interface Damage {
  name: string;
  apply(kind: Kind, path: string): void;
  /** What restore does: the error code, or undefined when it succeeds. */
  restore: string | undefined;
}

/** Frames 2..11 over baseline 1 (`buildStore`'s default). */
const DAMAGES: Damage[] = [
  { name: "nothing", apply: () => undefined, restore: undefined },
  { name: "a torn tail", apply: (k, p) => damageFrame(k, p, "g", 11, "truncate"), restore: undefined },
  { name: "a torn frame mid-stream", apply: (k, p) => damageFrame(k, p, "g", 6, "checksum"), restore: "torn-write-mid-stream" },
  { name: "a frame deleted mid-stream", apply: (k, p) => damageFrame(k, p, "g", 6, "delete"), restore: "wal-gap" },
  { name: "a mid-stream frame of 0 bytes", apply: (k, p) => writeRaw(k, p, "g/wal/00000000000000000006", new Uint8Array()), restore: "torn-write-mid-stream" },
  {
    name: "a frame whose frame_seq disagrees with its key",
    apply: (k, p) => writeRaw(k, p, "g/wal/00000000000000000005", walFrameCodec.encode(sealWalFrame(setFrame(6, "a", 6)))),
    restore: "torn-write-mid-stream",
  },
  { name: "a baseline of a newer format", apply: (k, p) => rewriteBaseline(k, p, (r) => (r.format_version = 99)), restore: "codec-mismatch" },
  { name: "a baseline of another graph", apply: (k, p) => rewriteBaseline(k, p, (r) => (r.name = "other")), restore: "baseline-missing" },
  { name: "a spec projection as baseline", apply: (k, p) => rewriteBaseline(k, p, (r) => (r.lifecycle = "spec")), restore: "baseline-missing" },
];

describe.each(KINDS)("the CLI agrees with restore (%s store)", (kind) => {
  it.each(DAMAGES)("$name", async (damage) => {
    const path = storePath(kind, tmp.path("store"));
    await buildStore(kind, path, [{ name: "g" }]);
    damage.apply(kind, path);
    const restored = await libraryRestore(kind, path);
    expect(restored.code).toBe(damage.restore);

    const verify = runCli(["verify", path, "--graph", "g", "--json"]);
    const doc = JSON.parse(verify.stdout) as { graphs: Array<{ verdict: string }> };
    expect(doc.graphs[0]!.verdict === "not-restorable", verify.stdout).toBe(damage.restore !== undefined);
    expect(verify.code === 2).toBe(damage.restore !== undefined);

    const exported = runCli(["export", path, "--graph", "g"]);
    if (damage.restore === undefined) {
      expect(exported.code).toBe(0);
      // State values agree (restore recomputes derived nodes; these hand-built frames carry no derived values).
      const nodes = (JSON.parse(exported.stdout) as GraphPersistSnapshot).nodes;
      expect([nodes.a, nodes.b]).toEqual([restored.snapshot!.nodes.a, restored.snapshot!.nodes.b]);
    } else {
      expect(exported.code).toBe(4);
      expect(exported.stderr).toMatch(new RegExp(`^error ${damage.restore}: `));
    }

    const before = runCli(["frames", path, "--graph", "g"]).stdout + JSON.stringify([...rawOf(kind, path, "g")]);
    const compacted = runCli(["compact", path, "--graph", "g", "--json"]);
    if (damage.restore === undefined) {
      expect(compacted.code).toBe(0);
      expect((await libraryRestore(kind, path)).snapshot).toEqual(restored.snapshot);
    } else {
      expect(compacted.code).toBe(4);
      expect(compacted.stderr).toMatch(new RegExp(`^error ${damage.restore}: `));
      expect(runCli(["frames", path, "--graph", "g"]).stdout + JSON.stringify([...rawOf(kind, path, "g")])).toBe(before);
    }
  });
});
