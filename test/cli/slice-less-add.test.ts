/**
 * Task 333 (review r330 F9): a `graph.add` frame without a slice (the protocol allows it, docs/protocol.md §6.5;
 * replay ignores it) followed by a set of its node. verify named the set `unknown-node` saying the node was "not added
 * by an earlier frame" (it was, without a slice), and restoreSnapshot into a graph whose code builds that node threw
 * an untyped TypeError (reAddedAbove compared the missing slice). Restore now ignores such an add, as replay does.
 */
import { describe, expect, it } from "vitest";
import { createGraph } from "../../src/graph/graph.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { cliGraphStore } from "../support/cli-graph-store.js";
import { runCli } from "./fixtures/cli.js";
import { appendFrames, openBackend, setFrame } from "./fixtures/stores.js";

const fixture = cliGraphStore("slice-less-add");

/** A spec frame adding `nodeId` with no slice. */
function sliceLessAdd(seq: number, nodeId: string): WALFrame {
  return {
    t: "c",
    lifecycle: "spec",
    path: nodeId,
    change: { structure: "graph.spec", version: 1, t_ns: seq, lifecycle: "spec", change: { kind: "graph.add", nodeId } },
    frame_seq: seq,
    frame_t_ns: seq,
    checksum: "",
    format_version: 1,
  };
}

describe("a graph.add without a slice, then a set of its node", () => {
  it("restore ignores the add (as replay does) into a graph whose code builds the node; verify says so truly", async () => {
    await appendFrames(fixture.store, [sliceLessAdd(12, "dx"), setFrame(13, "dx", 5), setFrame(14, "a", 14)]);

    const backend = openBackend("sqlite", fixture.store);
    try {
      const g = createGraph("g");
      g.state("a", 0);
      g.state("b", 0);
      g.derived("sum", ["a", "b"], (a, b) => (a as number) + (b as number));
      g.derived("dx", ["a"], (a) => (a as number) * 2);
      await restoreSnapshot(g, { snapshot: snapshotStorage(backend), wal: kvStorage(backend, { codec: walFrameCodec }) });
      expect(g.get("a")).toBe(14);
      // The stored graph never held dx (its add carried nothing to build): restore's default drops the code's node,
      // as it does for any code-built node the baseline and frames lack.
      expect(g.kindOf("dx")).toBeUndefined();
    } finally {
      backend.close();
    }

    const key = walFrameKey(graphWalPrefix("g"), 13);
    const human = runCli(["verify", fixture.store]);
    expect(human.code, human.stderr).toBe(1);
    expect(human.stdout).toContain(
      `  frame seq 13 (${key}) sets node "dx", which the stored graph does not have there (not in the baseline, added by no earlier frame with its slice, or removed): restore ignores it (its change is never replayed)\n`,
    );
    expect(human.stdout).not.toContain("not added by an earlier frame");
    // The only finding is a change restore ignores: the verdict does not speak of damaged frames.
    expect(human.stdout).toContain("\n  restorable (restore ignores some frames' changes)\n");
  });
});
