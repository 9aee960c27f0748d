/**
 * Baselines that lag behind the WAL (docs/design.md §3.7, issue 10 item 4): a snapshot tier debounced 60 s beside
 * a WAL flushed per save, compactEvery 5, and a real child writer killed with SIGKILL before the debounce ends.
 * - The periodic baselines never land, and that costs nothing: they take no seq of their own, so the frames stay
 *   consecutive, verify (the CLI's code) says clean, and restore gives the writer's state, its last acknowledged
 *   one included, from the older baseline plus every frame.
 * - An attach baseline (the live graph, which may differ from the store) is durable before any later frame
 *   reaches the store, whatever the debounce: killed right after attach and a few waves, the store never holds
 *   frames above a missing baseline.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { verifyGraph } from "../../src/cli/verify.js";
import { createProgress } from "../../src/cli/progress.js";
import { createGraph, restoreSnapshot, type GraphCheckpointRecord } from "../../src/index.js";
import { backendSource, listFrameKeys } from "../../src/persistence/stored-graph.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { assertBuilt, killAllChildren, startChild, tempDir, type ChildMessage, type TempDir } from "./fixtures/crash-harness.js";
import { GRAPH_NAME, buildGraph, digestOf } from "./fixtures/graph-crash-model.mjs";

type Kind = "sqlite" | "file";

let tmp: TempDir;
beforeAll(() => {
  assertBuilt();
  tmp = tempDir("baseline-lag");
});
afterAll(async () => {
  await killAllChildren();
  tmp.remove();
});

const open = (kind: Kind, store: string): StorageBackend => (kind === "sqlite" ? sqliteBackend(store) : fileBackend(store));

/** Runs the child until it reports `written`, then kills it; returns its messages. */
async function killedWriter(kind: Kind, store: string, seed: number, acked: number, unacked: number): Promise<ChildMessage[]> {
  const child = startChild("baseline-lag-writer.mjs", { kind, store, seed, acked, unacked });
  await child.waitFor("written");
  return child.kill();
}

/** What the CLI's verify and restore make of the store the kill left (the child is dead). */
async function inspect(kind: Kind, store: string) {
  const b = open(kind, store);
  try {
    const verdict = (await verifyGraph(backendSource(b), GRAPH_NAME, createProgress(false))).verdict;
    const snapshot = snapshotStorage<GraphCheckpointRecord>(b, { name: "snap" });
    const wal = kvStorage<WALFrame>(b, { name: "wal", codec: walFrameCodec });
    const baselineSeq = ((await snapshot.load(GRAPH_NAME)) as GraphCheckpointRecord).seq;
    const frames = (await listFrameKeys(backendSource(b), GRAPH_NAME)).map((k) => k.seq);
    const g = buildGraph(createGraph);
    const restored = await restoreSnapshot(g, { snapshot, wal });
    return { verdict, baselineSeq, frames, finalSeq: restored.finalSeq, digest: digestOf(g) as string };
  } finally {
    await b.close?.();
  }
}

const msg = (messages: ChildMessage[], t: string): ChildMessage & { seq: number; digest: string } => {
  const m = messages.find((x) => x.t === t);
  expect(m, `the child sent no "${t}"`).toBeDefined();
  return m as ChildMessage & { seq: number; digest: string };
};

describe.concurrent("kill -9 while baselines lag behind the WAL (debounced snapshot tier, WAL per save, compactEvery 5)", () => {
  it.for<Kind>(["sqlite", "file"])("%s: periodic baselines that never landed leave no hole; restore gives the writer's state", { timeout: 60_000 }, async (kind, { expect }) => {
    const store = join(tmp.dir, kind === "sqlite" ? "periodic.db" : "periodic");
    const messages = await killedWriter(kind, store, 7, 23, 12);
    const ack = msg(messages, "ack");
    const written = msg(messages, "written");
    const seen = await inspect(kind, store);
    expect(seen.verdict).toBe("clean");
    // The stored baseline is the one the acknowledging flush made durable; the later one never left the debounce.
    expect(seen.baselineSeq).toBeGreaterThan(1);
    expect(seen.baselineSeq).toBeLessThanOrEqual(ack.seq);
    expect(seen.frames).toEqual(Array.from({ length: written.seq - 1 }, (_, i) => i + 2));
    expect(seen.finalSeq).toBe(written.seq);
    expect(seen.digest).toBe(written.digest);
    // The last acknowledged state is a point in that WAL.
    const b = open(kind, store);
    try {
      const g = buildGraph(createGraph);
      const tiers = { snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal: kvStorage<WALFrame>(b, { codec: walFrameCodec }) };
      await restoreSnapshot(g, { ...tiers, targetSeq: ack.seq });
      expect(digestOf(g)).toBe(ack.digest);
    } finally {
      await b.close?.();
    }
  });

  it.for<Kind>(["sqlite", "file"])("%s: killed right after attach and a few waves, no frame lies above a missing attach baseline", { timeout: 60_000 }, async (kind, { expect }) => {
    const store = join(tmp.dir, kind === "sqlite" ? "attach.db" : "attach");
    for (let round = 0; round < 4; round++) {
      const before = round === 0 ? undefined : await inspect(kind, store);
      const messages = await killedWriter(kind, store, 100 + round, round === 0 ? 3 : 0, 6);
      if (before !== undefined) expect(msg(messages, "restored").digest).toBe(before.digest);
      const start = before?.digest ?? msg(messages, "ack").digest; // the state at the attach baseline / the ack
      const seen = await inspect(kind, store);
      const where = `round ${round}: baseline ${seen.baselineSeq}, frames ${JSON.stringify(seen.frames)}`;
      expect(seen.verdict, where).toBe("clean");
      // The attach baseline took the seq right above everything stored; frames above it exist only with it.
      const attachSeq = before === undefined ? 1 : Math.max(before.baselineSeq, ...before.frames) + 1;
      if (seen.frames.some((s) => s > attachSeq)) expect(seen.baselineSeq, where).toBeGreaterThanOrEqual(attachSeq);
      // SQLite commits a turn's frames together: the store holds the state at attach or after every wave.
      if (kind === "sqlite") expect([start, msg(messages, "written").digest], where).toContain(seen.digest);
    }
  });
});
