/**
 * Holding triggered flushes (what a store actor's group commit does, src/engine/group-commit.ts) may change when a
 * tier writes, never what: a held sync-through save of a snapshot tier is written, not displaced by a save under
 * another key (nor, since task 270, is a debounced one: the tier keeps one pending record per key). Driven on the
 * tier core directly, the way the actor drives it.
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { jsonCodecFor } from "../../src/codec/json.js";
import { SnapshotCore } from "../../src/tier/snapshot.js";

interface Rec {
  v: number;
}

function heldSnapshot(debounceMs?: number): { core: SnapshotCore<Rec>; keys: () => readonly string[] } {
  const backend = memoryBackend();
  const core = new SnapshotCore<Rec>(backend, jsonCodecFor<Rec>(), { name: "s", ...(debounceMs !== undefined ? { debounceMs } : {}) });
  core.deferTriggeredFlushes = true;
  return { core, keys: () => backend.list() as readonly string[] };
}

/** What the group commit does at the end of the worker's turn. */
function endTurn(core: SnapshotCore<Rec>): void {
  core.deferTriggeredFlushes = false;
  core.flushDeferred();
}

describe("held triggered flushes and the snapshot slot", () => {
  it("sync-through saves under two keys while flushes are held: both records are written", async () => {
    const { core, keys } = heldSnapshot();
    core.put("a", { v: 1 });
    expect(keys(), "held: nothing written yet").toEqual([]);
    core.put("b", { v: 2 });
    endTurn(core);
    await core.flush();
    expect(keys()).toEqual(["a", "b"]);
    expect(await core.load("a")).toEqual({ v: 1 });
    expect(await core.load("b")).toEqual({ v: 2 });
  });

  it("saves under one key while held still collapse into one write (last write wins)", async () => {
    const { core, keys } = heldSnapshot();
    for (let v = 1; v <= 3; v++) core.put("a", { v });
    endTurn(core);
    await core.flush();
    expect(keys()).toEqual(["a"]);
    expect(core.stats.writes).toBe(1);
    expect(await core.load("a")).toEqual({ v: 3 });
  });

  it("a debounce window is not a held flush: a save under another key leaves the pending one, both written (task 270)", async () => {
    const { core, keys } = heldSnapshot(60_000);
    core.put("a", { v: 1 });
    core.put("b", { v: 2 });
    endTurn(core);
    await core.flush();
    expect(keys()).toEqual(["a", "b"]);
    expect(await core.load("a")).toEqual({ v: 1 });
    await core.close();
  });
});
