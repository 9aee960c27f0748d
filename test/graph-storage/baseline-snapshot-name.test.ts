/**
 * A baseline is its graph's only if its snapshot is too (docs/protocol.md §7.1: the snapshot's `name` is the
 * graph's). checkBaseline compared only the record's top-level `name`, so a record under key `g` naming `g` but
 * holding graph `h`'s snapshot was restored, followed and compacted as g's state. Now every reader refuses it as
 * another graph's (RestoreError `baseline-missing`, `details.problem` "other-graph") and compaction changes nothing.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { RestoreError } from "../../src/errors.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { followGraph } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { checkBaseline } from "../../src/persistence/stored-graph.js";
import { GRAPH, buildGraph, dumpStore, inlinePair, tempDir } from "../graph-compaction/fixtures.js";
import type { StorageBackend } from "../../src/backend/types.js";

const tmp = tempDir("snapshot-name");
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => tmp.remove());

/** A SQLite file whose record under GRAPH names GRAPH but holds graph "h"'s snapshot (its `a` is 42). */
async function storeWithOtherSnapshot(): Promise<StorageBackend> {
  const backend = sqliteBackend(tmp.path("store.db"));
  cleanups.push(() => backend.close());
  const other = buildGraph();
  other.set("a", 42);
  const { snapshot } = inlinePair(backend);
  snapshot.save({
    format_version: 1,
    mode: "full",
    name: GRAPH,
    seq: 3,
    snapshot: { ...other.snapshot(), name: "h" },
    timestamp_ns: 1,
  });
  await snapshot.flush();
  return backend;
}

const otherGraph = (err: unknown): boolean =>
  err instanceof RestoreError && err.code === "baseline-missing" && (err.details as { problem?: unknown }).problem === "other-graph";

describe("a record whose snapshot is another graph's", () => {
  it("checkBaseline refuses it, with a name and without (the fold's call)", () => {
    const g = buildGraph();
    const record = { format_version: 1, mode: "full", name: GRAPH, seq: 1, snapshot: { ...g.snapshot(), name: "h" }, timestamp_ns: 1 };
    for (const name of [GRAPH, undefined]) {
      const check = checkBaseline(record, name);
      expect(check.ok).toBe(false);
      expect(check.ok ? undefined : check.problem).toBe("other-graph");
    }
    expect(checkBaseline({ ...record, snapshot: g.snapshot() }, GRAPH).ok).toBe(true);
  });

  it("restore and a follower refuse it (baseline-missing, other-graph); the graph is left as it was", async () => {
    const backend = await storeWithOtherSnapshot();
    const graph = buildGraph();
    const err = await restoreSnapshot(graph, inlinePair(backend)).catch((e: unknown) => e);
    expect(otherGraph(err), String(err)).toBe(true);
    expect(graph.get("a")).toBe(1);
    const followErr = await followGraph(buildGraph(), inlinePair(backend)).catch((e: unknown) => e);
    expect(otherGraph(followErr), String(followErr)).toBe(true);
  });

  it("compaction refuses it and changes nothing", async () => {
    const backend = await storeWithOtherSnapshot();
    const before = await dumpStore(backend);
    const err = await compactGraph({ backend }, { graphName: GRAPH }).catch((e: unknown) => e);
    expect(otherGraph(err), String(err)).toBe(true);
    expect(await dumpStore(backend)).toEqual(before);
  });
});
