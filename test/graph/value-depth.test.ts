/**
 * A graph value's nesting leaves room for the baseline around it (MAX_GRAPH_VALUE_DEPTH, src/graph/json-utils.ts):
 * a baseline holds a node's value four containers down (record, snapshot, nodes, slice), a frame less deep. A value
 * nested 997 deep used to be accepted by `set` and acknowledged in a WAL frame, yet no baseline could hold it:
 * compaction failed every time and attach after a restart refused its own baseline, so the graph was never
 * persisted again. Such a value is now refused where it enters the graph, like one past MAX_JSON_DEPTH.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { CodecError } from "../../src/errors.js";
import { MAX_GRAPH_VALUE_DEPTH } from "../../src/graph/json-utils.js";
import {
  attachSnapshotStorage,
  compactGraph,
  createGraph,
  MAX_JSON_DEPTH,
  restoreSnapshot,
  type GraphCheckpointRecord,
  type JsonValue,
} from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";

function nested(depth: number): JsonValue {
  let value: JsonValue = 0;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

function nestedObject(depth: number): Record<string, JsonValue> {
  let value: Record<string, JsonValue> = {};
  for (let i = 1; i < depth; i++) value = { k: value };
  return value;
}

function expectTooDeep(call: () => unknown): void {
  let error: unknown;
  try {
    call();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(CodecError);
  expect((error as CodecError).code).toBe("encode-failed");
  expect((error as CodecError).message).toMatch(/nested/);
}

describe("graph values nest at most MAX_GRAPH_VALUE_DEPTH", () => {
  it("leaves the baseline's four containers of MAX_JSON_DEPTH", () => {
    expect(MAX_GRAPH_VALUE_DEPTH).toBe(MAX_JSON_DEPTH - 4);
  });

  it("a value at the bound is acknowledged, restored, compacted and persisted again after a restart", async () => {
    const backend = memoryBackend();
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
    const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
    const graph = createGraph("g");
    graph.state("a", 0);
    const handle = attachSnapshotStorage(graph, [{ snapshot, wal }], { compactEvery: Number.POSITIVE_INFINITY });
    await handle.flush();
    graph.set("a", nested(MAX_GRAPH_VALUE_DEPTH));
    await handle.flush();
    await handle.dispose();

    const restarted = createGraph("g");
    restarted.state("a", 0);
    await restoreSnapshot(restarted, { snapshot, wal });
    expect(restarted.get("a")).toEqual(nested(MAX_GRAPH_VALUE_DEPTH));
    const again = attachSnapshotStorage(restarted, [{ snapshot, wal }]);
    await again.flush(); // its own baseline holds the value
    await again.dispose();
    await compactGraph({ backend }, { graphName: "g" });
  });

  it("refuses one level more at set, as an initial value, as meta and as a derived result", () => {
    const graph = createGraph("g");
    graph.state("a", 0);
    for (const depth of [MAX_GRAPH_VALUE_DEPTH + 1, MAX_JSON_DEPTH]) {
      expectTooDeep(() => graph.set("a", nested(depth)));
      expectTooDeep(() => graph.state(`s${depth}`, nested(depth)));
      expectTooDeep(() => graph.state(`m${depth}`, 0, { meta: nestedObject(depth) }));
    }
    expect(graph.get("a")).toBe(0);
    graph.state("n", 0);
    graph.derived("d", ["n"], (n) => (n === 0 ? 0 : nested(MAX_GRAPH_VALUE_DEPTH + 1)));
    graph.set("n", 1);
    expect(graph.get("d")).toBe(0); // the result was refused: the last value is kept
    expect(graph.snapshot().nodes["d"]?.status).toBe("errored");
  });
});
