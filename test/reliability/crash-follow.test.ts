/**
 * A follower in this process (followGraph over inline read-only tiers) tails a store that a writer process (engine +
 * attach under load, the actor auto-compacting the WAL) writes; the writer is killed with SIGKILL at a random moment
 * and a new one restores and writes on, FOLLOW_CYCLES times per backend (default 4; SQLite and the file store run
 * concurrently). Checked:
 * - every state the follower showed (its graph after each poll) is one the writer had at that seq (the writer
 *   records its digest at every wave boundary before the frames leave the process); the file store's batches are
 *   not atomic, so there a poll may end inside a wave, which is counted;
 * - once the writer is dead, the follower catches up: its seq is at least the last acknowledged one, and its state
 *   equals what restore reads from the store (and the writer's state at that seq);
 * - it never fails or reports a fatal error, across compactions and writer restarts.
 */
import { closeSync, existsSync, openSync, readFileSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, it, type ExpectStatic } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { fileBackend } from "../../src/backend/file.js";
import { createGraph } from "../../src/graph/graph.js";
import { followGraph, IDLE_BASELINE_POLLS, type FollowerLag } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { fileKv, fileSnapshot, sqliteKv, sqliteSnapshot } from "../../src/tier/factories.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { assertBuilt, envCount, killAllChildren, prng, sleep, startChild, tempDir, type ChildMessage } from "./fixtures/crash-harness.js";
import { MID_WAVE, buildGraph, digestOf } from "./fixtures/graph-crash-model.mjs";

type Kind = "sqlite" | "file";
const CYCLES = envCount("FOLLOW_CYCLES", 4);
/** A safety net for a hung child, never the thing asserted. */
const TIMEOUT = 60_000 + CYCLES * 10_000;

beforeAll(() => assertBuilt());
afterAll(() => killAllChildren());

/** seq -> the writer's digest at that seq; later lines win (a seq that never became durable is reused). */
function readSidecar(path: string): Map<number, string> {
  const out = new Map<number, string>();
  if (!existsSync(path)) return out;
  const text = readFileSync(path, "utf8");
  const end = text.lastIndexOf("\n") + 1;
  // A kill can cut the last line short: drop it, or the next writer's first line would be glued to it.
  if (end < text.length) truncateSync(path, Buffer.byteLength(text.slice(0, end)));
  for (const line of text.slice(0, end).split("\n")) {
    const m = /^(\d+) (\S+)$/.exec(line);
    if (m) out.set(Number(m[1]), m[2] as string);
  }
  return out;
}

interface Pair {
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>;
  wal: KvStorageTier<WALFrame>;
}

function readOnlyPair(kind: Kind, store: string): Pair {
  return kind === "sqlite"
    ? {
        snapshot: sqliteSnapshot<GraphCheckpointRecord>(store, { name: "snap", readOnly: true }),
        wal: sqliteKv<WALFrame>(store, { name: "wal", codec: walFrameCodec, readOnly: true }),
      }
    : {
        snapshot: fileSnapshot<GraphCheckpointRecord>(store, { name: "snap", readOnly: true }),
        wal: fileKv<WALFrame>(store, { name: "wal", codec: walFrameCodec, readOnly: true }),
      };
}

/** What restore reads from the store at rest: its seq and the digest of the restored graph. */
async function restoredFromStore(kind: Kind, store: string): Promise<{ seq: number; digest: string }> {
  const backend = kind === "sqlite" ? sqliteBackend(store, { readOnly: true }) : fileBackend(store, { readOnly: true });
  try {
    const graph = buildGraph(createGraph);
    const r = await restoreSnapshot(graph, {
      snapshot: snapshotStorage<GraphCheckpointRecord>(backend),
      wal: kvStorage<WALFrame>(backend, { codec: walFrameCodec }),
    });
    return { seq: r.finalSeq, digest: digestOf(graph) };
  } finally {
    backend.close();
  }
}

interface Tally {
  cycles: number;
  observed: number;
  midWave: number;
  reloads: number;
  appliedFrames: number;
  maxFramesBehind: number;
}

async function runFollowerCycles(kind: Kind, expect: ExpectStatic): Promise<Tally> {
  const tmp = tempDir(`follow-${kind}`);
  const store = kind === "sqlite" ? join(tmp.dir, "store.db") : join(tmp.dir, "store");
  const sidecar = join(tmp.dir, "digests.log");
  closeSync(openSync(sidecar, "a"));
  const rnd = prng(kind === "sqlite" ? 0xf011 : 0xf0f0);
  const tally: Tally = { cycles: 0, observed: 0, midWave: 0, reloads: 0, appliedFrames: 0, maxFramesBehind: 0 };
  const graph = buildGraph(createGraph);
  /** (seq, digest) of the follower's graph after every poll, checked against the sidecar once the writer is dead. */
  let seen: Array<[number, string]> = [];
  const fatal: Error[] = [];
  let pair: Pair | undefined;
  let follower: Awaited<ReturnType<typeof followGraph>> | undefined;
  let acked: { seq: number; digest: string } | undefined;
  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const where = `${kind} cycle ${cycle}`;
      const child = startChild("follow-writer.mjs", { kind, store, sidecar, seed: Math.floor(rnd() * 2 ** 31) });
      await child.waitFor("ack", 2);
      if (follower === undefined) {
        pair = readOnlyPair(kind, store);
        follower = await followGraph(graph, pair, {
          pollMs: 5,
          onLag: (lag: FollowerLag) => {
            seen.push([lag.appliedSeq, digestOf(graph)]);
            tally.maxFramesBehind = Math.max(tally.maxFramesBehind, lag.frames);
          },
          onError: (err, isFatal) => void (isFatal && fatal.push(err)),
        });
      }
      await sleep(150 + Math.floor(rnd() * 400)); // following a writer under load
      const messages: ChildMessage[] = await child.kill();
      const error = messages.find((m) => m.t === "error");
      expect(error, `${where}: the writer failed: ${String(error?.message)}`).toBeUndefined();
      for (const m of messages) {
        if (m.t === "ack" && (acked === undefined || (m.seq as number) >= acked.seq)) acked = { seq: m.seq as number, digest: m.digest as string };
      }

      // The store is at rest now: a bounded number of polls sees everything (without a change counter, an idle poll
      // reads the baseline every IDLE_BASELINE_POLLS polls).
      for (let i = 0; i <= IDLE_BASELINE_POLLS; i++) await follower.poll();
      const digests = readSidecar(sidecar);
      let lag = follower.lag();
      let final = await restoredFromStore(kind, store);
      // A writer killed inside SQLite's commit (WAL frames written, shared WAL index not yet updated) leaves a
      // transaction it never acknowledged that connections see only once one of them rebuilds the index, as a fresh
      // connection may: the follower then sees it on a later poll. Bounded, so a follower that is stuck still fails.
      for (let i = 0; i < 20 && (lag.appliedSeq !== final.seq || lag.frames !== 0); i++) {
        await follower.poll();
        lag = follower.lag();
        final = await restoredFromStore(kind, store);
      }
      expect(fatal, `${where}: the follower stopped`).toEqual([]);
      expect(lag.appliedSeq, `${where}: the follower is below the last acknowledged seq`).toBeGreaterThanOrEqual(acked!.seq);
      expect([lag.appliedSeq, lag.frames], `${where}: caught up with the store`).toEqual([final.seq, 0]);
      expect(digestOf(graph), `${where}: the follower's final state is not the store's`).toBe(final.digest);
      if (lag.appliedSeq === acked!.seq) expect(digestOf(graph), where).toBe(acked!.digest);
      for (const [seq, digest] of seen) {
        tally.observed++;
        const expected = digests.get(seq);
        if (expected === undefined || expected === MID_WAVE) {
          // Only a non-atomic batch can stop inside a wave; SQLite commits a wave's frames together.
          expect(kind, `${where}: the follower showed seq ${seq}, not a wave boundary`).toBe("file");
          tally.midWave++;
        } else expect(digest, `${where}: the follower showed a state the writer never had at seq ${seq}`).toBe(expected);
      }
      seen = [];
      tally.cycles++;
    }
    const stats = follower!.stats();
    tally.reloads = stats.reloads;
    tally.appliedFrames = stats.appliedFrames;
    expect(stats.state).toBe("following");
    // Every cycle but the first starts a new writer above a new attach baseline; compactions move it too.
    expect(stats.reloads).toBeGreaterThanOrEqual(CYCLES - 1);
    return tally;
  } finally {
    await follower?.stop();
    await Promise.all([pair?.snapshot.close(), pair?.wal.close()]);
    tmp.remove();
  }
}

describe("a follower of a writer process that is killed with SIGKILL and restarted", () => {
  it.concurrent.for<Kind>(["sqlite", "file"])(
    `%s: ${CYCLES} cycles; the follower shows only the writer's states and ends at the store's`,
    { timeout: TIMEOUT },
    async (kind, { expect }) => {
      const tally = await runFollowerCycles(kind, expect);
      console.log(`[crash-follow ${kind}]`, JSON.stringify(tally));
    },
  );
});
