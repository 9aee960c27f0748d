/**
 * A baseline record that reads well (mode, name, seq, versions, slices all as checkBaseline wants) but that no graph
 * can take: a node path no graph accepts, a node under a mount the snapshot does not list, a node of a type no code
 * builds. Every restore fails (phase-failed, derived-mismatch), whatever the code, while verify said "clean", exit 0.
 * verify's verdict is restore's outcome: such a baseline is now not restorable (exit 2), named in the problems. So
 * is a frame the graph refuses outright (restore fails phase-failed at it), found by folding as restore reads.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, baselineSnapshot, buildStore, openBackend, storePath, writeRaw, restoreOutcome as restored, type Kind } from "./fixtures/stores.js";
import { jsonCodec } from "../../src/codec/json.js";
import { createGraph } from "../../src/graph/graph.js";
import type { GraphPersistSnapshot, SnapshotNodeSlice } from "../../src/graph/types.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";

const tmp = tempDir("verify-unrestorable");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const state = (value: number): SnapshotNodeSlice => ({ type: "state", deps: [], status: "settled", meta: {}, value });

/** The graph's baseline at seq 1 with `change` applied to its snapshot (frames 2..11 stay). */
function writeBaseline(kind: Kind, store: string, change: (s: GraphPersistSnapshot) => void): void {
  const snapshot = baselineSnapshot("g");
  change(snapshot);
  const record = { name: "g", mode: "full", snapshot, seq: 1, timestamp_ns: 1, format_version: 1 };
  writeRaw(kind, store, "g", jsonCodec.encode(record));
}

/** The library's restore: "ok" or the error's code. */
async function restoreOutcome(kind: Kind, store: string): Promise<string> {
  return (await restored(kind, store)).code;
}

const UNRESTORABLE: ReadonlyArray<[string, (s: GraphPersistSnapshot) => void, string, RegExp]> = [
  ["a node path with an empty segment", (s) => void (s.nodes["x::"] = state(1)), "phase-failed", /"x::" has an empty segment/],
  ["a node under a mount the snapshot does not list", (s) => void (s.nodes["m::x"] = state(1)), "phase-failed", /parent mount "m"/],
  ["a mount where a node is", (s) => void (s.subgraphs = ["a"]), "phase-failed", /already exists at "a"/],
  ["a node of a type no code builds", (s) => void (s.nodes.a = { ...state(1), type: "banana" as "state" }), "derived-mismatch", /type "banana"/],
];

describe.each(KINDS)("verify of a baseline no graph can take (%s store)", (kind) => {
  it.each(UNRESTORABLE)("%s: not restorable (exit 2), as restore fails", async (_label, change, restoreCode, why) => {
    const store = storePath(kind, tmp.path("s"));
    await buildStore(kind, store, [{ name: "g" }]);
    writeBaseline(kind, store, change);
    expect(await restoreOutcome(kind, store)).toBe(restoreCode);
    const r = runCli(["verify", store, "--json"]);
    expect(r.code, r.stderr).toBe(2);
    const doc = JSON.parse(r.stdout) as { graphs: Array<{ verdict: string; problems: Array<{ kind: string; detail: string }> }> };
    expect(doc.graphs[0]?.verdict).toBe("not-restorable");
    expect(doc.graphs[0]?.problems[0]?.kind).toBe("baseline-unrestorable");
    expect(doc.graphs[0]?.problems[0]?.detail).toMatch(why);
    const human = runCli(["verify", store]);
    expect(human.code).toBe(2);
    expect(human.stdout).toMatch(/baseline record cannot be applied to any graph: .*\n {2}NOT restorable/);
  });

  it("control: a baseline with nodes named __proto__ and constructor and a nested mount is clean and restores", async () => {
    const store = storePath(kind, tmp.path("ok"));
    await buildStore(kind, store, [{ name: "g" }]);
    writeBaseline(kind, store, (s) => {
      Object.defineProperty(s.nodes, "__proto__", { value: state(3), enumerable: true, writable: true, configurable: true });
      s.nodes["constructor"] = state(4);
      s.subgraphs = ["m", "m::n"];
      s.nodes["m::n::x"] = state(5);
    });
    expect(await restoreOutcome(kind, store)).toBe("ok");
    const r = runCli(["verify", store]);
    expect(r.stdout).toMatch(/clean \(exit 0\)/);
    expect(r.code).toBe(0);
  });
});

/** Frame 12 (above the fixture's frames 2..11), a spec frame carrying `change`, sealed by the WAL codec. */
async function writeSpecFrame(kind: Kind, store: string, path: string, change: unknown): Promise<void> {
  const frame: WALFrame = {
    t: "c",
    lifecycle: "spec",
    path,
    change: { structure: "graph.value", version: 0, t_ns: 12, lifecycle: "spec", change },
    frame_seq: 12,
    frame_t_ns: 12,
    checksum: "",
    format_version: 1,
  };
  const backend = openBackend(kind, store);
  try {
    const wal = kvStorage<WALFrame>(backend, { codec: walFrameCodec });
    wal.save(walFrameKey(graphWalPrefix("g"), 12), frame);
    await wal.flush();
  } finally {
    backend.close();
  }
}

const REFUSED_FRAMES: ReadonlyArray<[string, string, unknown, RegExp]> = [
  ["an add at a path with an empty segment", "x::", { kind: "graph.add", nodeId: "x::", slice: state(1) }, /"x::" has an empty segment/],
  ["an add under a mount that does not exist", "m::x", { kind: "graph.add", nodeId: "m::x", slice: state(1) }, /parent mount "m"/],
  ["a mount where a node is", "a", { kind: "graph.mount", path: "a" }, /a node already exists at "a"/],
];

describe.each(KINDS)("verify of a frame no graph can take (%s store)", (kind) => {
  it.each(REFUSED_FRAMES)("%s: not restorable (exit 2), as restore fails phase-failed", async (_label, path, change, why) => {
    const store = storePath(kind, tmp.path("f"));
    await buildStore(kind, store, [{ name: "g" }]);
    await writeSpecFrame(kind, store, path, change);
    expect(await restoreOutcome(kind, store)).toBe("phase-failed");
    const r = runCli(["verify", store, "--json"]);
    expect(r.code, r.stderr).toBe(2);
    const doc = JSON.parse(r.stdout) as { graphs: Array<{ verdict: string; problems: Array<{ kind: string; seq: number; detail: string }> }> };
    expect(doc.graphs[0]?.verdict).toBe("not-restorable");
    expect(doc.graphs[0]?.problems).toEqual([{ kind: "frame-unrestorable", seq: 12, detail: expect.stringMatching(why), restorable: false }]);
    expect(runCli(["verify", store]).stdout).toMatch(/frame seq 12 cannot be applied to any graph: .*restore fails \(phase-failed\)/);
  });
});
