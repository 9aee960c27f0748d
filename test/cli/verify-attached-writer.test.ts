/**
 * Task 333 (review r330): verify's fold findings (`unknown-node`, `frame-unrestorable`) must not flag what a real
 * writer stores. A graph attached to a SQLite store makes every kind of change the library writes: adds and sets in
 * one batch, a remove and re-add, an unmount and mount with its nodes built again, a derived node added and removed,
 * an invalidate; then new code restores the store with codeChanges "accept", attaches and writes more. verify says
 * clean (exit 0) after each part, and a restore of the store gives the live graph's state.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { attachSnapshotStorage, createGraph, restoreSnapshot, type ReactiveGraph } from "../../src/index.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { build, pair, same } from "../persistence/fixtures/follow-graph.js";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";

const tmp = tempDir("verify-attached-writer");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

function expectClean(store: string, when: string): void {
  const r = runCli(["verify", store, "--json"]);
  const doc = JSON.parse(r.stdout) as { exitCode: number; graphs: Array<{ verdict: string; problems: unknown[] }> };
  expect(doc.graphs[0], `${when}: ${r.stdout}`).toMatchObject({ verdict: "clean", problems: [] });
  expect(r.code, when).toBe(0);
}

/** The state slices of a graph's snapshot (what restore takes from the store). */
function stateOf(g: ReactiveGraph): unknown {
  return Object.fromEntries(Object.entries(g.snapshot().nodes).filter(([, s]) => s.type === "state"));
}

describe("verify over a store a real attached writer wrote", () => {
  it("is clean after every kind of change, and after a restore with codeChanges accept and more writes", async () => {
    const store = tmp.path("s.db");
    const backend = sqliteBackend(store);
    try {
      const tiers = () => ({ snapshot: snapshotStorage<GraphCheckpointRecord>(backend), wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }) });
      const g = build(); // a, b, c = [a, b], mount x with x::s and x::d
      const handle = attachSnapshotStorage(g, [tiers()], { compactEvery: Number.POSITIVE_INFINITY });
      await handle.flush();
      const waves: Array<[string, () => void]> = [
        ["adds and sets in one batch", () => g.batch(() => (g.state("n", 1), g.set("n", 2), g.derived("m", ["n"], same), g.set("a", 10)))],
        ["a remove and re-add", () => (g.remove("c"), g.remove("b"), g.addState("b", 5, { unit: "kg" }), g.set("b", 6), g.derived("c", ["a", "b"], pair))],
        ["an unmount and mount", () => (g.unmount("x"), g.mount("x"), g.state("x::s", 9), g.derived("x::d", ["x::s"], same), g.set("x::s", 11))],
        ["a derived node added and removed", () => (g.derived("e", ["a"], same), g.set("a", 12), g.remove("e"))],
        ["an invalidate", () => (g.invalidate("n"), g.set("a", 13))],
      ];
      for (const [when, wave] of waves) {
        wave();
        await handle.flush();
        expectClean(store, when);
      }
      await handle.dispose();

      // New code: c on [a] alone, e new, m gone. Restored with "accept", attached, written.
      const next = createGraph("g");
      next.state("a", 0);
      next.state("b", 0);
      next.derived("c", ["a"], same);
      next.derived("e", ["a", "b"], pair);
      await restoreSnapshot(next, { ...tiers(), codeChanges: "accept" });
      expect(stateOf(next)).toEqual(stateOf(g));
      const again = attachSnapshotStorage(next, [tiers()], { compactEvery: Number.POSITIVE_INFINITY });
      await again.flush();
      next.batch(() => (next.set("a", 20), next.set("n", 21), next.remove("e")));
      next.mount("y");
      next.state("y::t", 1);
      await again.flush();
      await again.dispose();
      expectClean(store, "after the restore with codeChanges accept and more writes");

      const check = createGraph("g");
      check.state("a", 0);
      check.derived("c", ["a"], same);
      await restoreSnapshot(check, { ...tiers(), codeChanges: "accept" });
      expect(stateOf(check)).toEqual(stateOf(next));
    } finally {
      backend.close();
    }
  });
});
