/**
 * A wave's WAL frames commit together: a writer killed with SIGKILL never leaves a part of a wave, so restore never
 * yields a state the graph never had. Before, inline SQLite tiers with their defaults (sync-through) committed each
 * frame of a wave as a transaction of its own (8 of 8 kills restored mixed states), and through an engine a wave
 * that met backpressure (maxPendingBytes) went out in parts, each committed apart (10 of 10). Attach now saves a
 * wave's frames as one unit (KvStorageTier.saveMany): room for all of them at once, one flush, one transaction.
 * Each round's writer (fixtures/mid-wave-writer.mjs) sets every node to k in each wave; the kill lands at a moment
 * that varies per round, after the writer's acknowledgements show it writing.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { createGraph } from "../../src/graph/graph.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { assertBuilt, killAllChildren, sleep, startChild, tempDir } from "./fixtures/crash-harness.js";

beforeAll(() => assertBuilt());
afterAll(() => killAllChildren());

interface Round {
  /** The waves the restored nodes hold (one: a state the graph had). */
  readonly waves: string[];
  readonly finalSeq: number;
}

/** Starts a writer, kills it `delayMs` after its `acks`-th acknowledgement, and restores what it left. */
async function killAndRestore(config: { mode: "inline" | "engine"; nodes: number; maxPendingBytes?: number; pad?: number }, acks: number, delayMs: number): Promise<Round> {
  const dir = tempDir("mid-wave");
  try {
    const path = join(dir.dir, "g.db");
    const child = startChild("mid-wave-writer.mjs", { ...config, path });
    await child.waitFor("ack", acks);
    await sleep(delayMs);
    await child.kill();
    const backend = sqliteBackend(path, { readOnly: true });
    const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" });
    const wal = kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec });
    try {
      const g = createGraph("g");
      for (let i = 0; i < config.nodes; i++) g.state(`n${i}`, "0");
      const { finalSeq } = await restoreSnapshot(g, { snapshot, wal });
      const waves = new Set(g.paths().map((p) => String(g.get(p)).replace(/x+$/, "")));
      return { waves: [...waves], finalSeq };
    } finally {
      await snapshot.close();
      await wal.close();
      await backend.close?.();
    }
  } finally {
    dir.remove();
  }
}

describe("a SIGKILL inside a wave", () => {
  it("never restores part of a wave: inline SQLite tiers with their defaults (sync-through)", { timeout: 60_000 }, async () => {
    const mixed: string[] = [];
    const rounds = 8;
    for (let round = 0; round < rounds; round++) {
      const r = await killAndRestore({ mode: "inline", nodes: 40 }, 2 + (round % 3), 3 + round * 7);
      expect(r.finalSeq, `round ${round}: acknowledged waves were restored`).toBeGreaterThan(40 * 6);
      if (r.waves.length !== 1) mixed.push(`round ${round}: finalSeq ${r.finalSeq}, waves ${r.waves.join(",")}`);
    }
    expect(mixed, "restored states the graph never had").toEqual([]);
  });

  it("never restores part of a wave bigger than the engine's maxPendingBytes (backpressure)", { timeout: 60_000 }, async () => {
    const mixed: string[] = [];
    const rounds = 8;
    // 300 frames of ~250 bytes: a wave weighs more than the bound, so it is taken alone once nothing else is pending.
    const config = { mode: "engine" as const, nodes: 300, maxPendingBytes: 48 * 1024, pad: 200 };
    for (let round = 0; round < rounds; round++) {
      const r = await killAndRestore(config, 2, 5 + round * 13);
      expect(r.finalSeq, `round ${round}: acknowledged waves were restored`).toBeGreaterThan(300 * 6);
      if (r.waves.length !== 1) mixed.push(`round ${round}: finalSeq ${r.finalSeq}, waves ${r.waves.join(",")}`);
    }
    expect(mixed, "restored states the graph never had").toEqual([]);
  });
});
