/**
 * Readers of a PostgreSQL store beside a writer process that compacts all the time (the store's actor folds the WAL
 * every few frames: a new baseline and the deletion of the frames it covers, one transaction). A reader on a
 * read-only handle reads a stored graph inside the handle's readConsistent (one REPEATABLE READ transaction:
 * stored-graph.ts), so its baseline, listing and frames are one point in time; the stored-graph reader's rule
 * (a hole, a vanished frame or a moved baseline makes the read start over) stays for reads outside one. Before,
 * restores and a follower's reloads read statement by statement and gave up with store-busy after 10 moved
 * baselines (a follower reported it in a CI run). Checked here, in this process while the writer runs:
 * - repeated restores (each on a new read-only handle, every other one inside an explicit, nested readConsistent)
 *   never fail, never go backwards and each shows exactly the writer's state at its seq (the writer records its
 *   digest at every wave boundary before the frames leave it);
 * - a follower polling every few ms never reports an error, shows only the writer's states and reloads the
 *   baselines that moved under it.
 */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import { createGraph } from "../../src/graph/graph.js";
import { followGraph } from "../../src/persistence/follow.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { assertBuilt, envCount, killAllChildren, sleep, startChild, tempDir } from "./fixtures/crash-harness.js";
import { GRAPH_NAME, buildGraph, digestOf } from "./fixtures/graph-crash-model.mjs";
import { useTestDatabase } from "../support/postgres-db.js";
import { readSidecar, restoredFromPostgres, writerSpec } from "../support/postgres-graph.js";

/** How long the readers read beside the compacting writer. */
const READ_MS = envCount("PG_READERS_MS", 6_000);
const database = useTestDatabase();

beforeAll(() => assertBuilt());
afterAll(() => killAllChildren());

interface Seen {
  readonly seq: number;
  readonly digest: string;
}

describe("PostgreSQL readers beside a writer process compacting in a loop", () => {
  it("restores and a follower see only the writer's states, in order, and never fail", { timeout: 60_000 + READ_MS * 3 }, async () => {
    const db = await database();
    const store = "readers-compacting";
    const tmp = tempDir("pg-readers");
    const sidecar = join(tmp.dir, "digests.log");
    closeSync(openSync(sidecar, "a"));
    const writer = startChild("follow-writer.mjs", { spec: writerSpec(db, store), sidecar, seed: 0x5eed, compactEveryFrames: 2 });
    const backend = await postgresBackend({ url: db.url, schema: db.schema, store, readOnly: true });
    const followed: Seen[] = [];
    const followErrors: string[] = [];
    try {
      await writer.waitFor("ack", 2);
      const graph = buildGraph(createGraph);
      const pair = { snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }), wal: kvStorage(backend, { name: "wal", codec: walFrameCodec }) };
      const follower = await followGraph(graph, pair, {
        pollMs: 2,
        onLag: (lag) => {
          if (lag.appliedSeq !== followed.at(-1)?.seq) followed.push({ seq: lag.appliedSeq, digest: digestOf(graph) });
        },
        onError: (err, fatal) => followErrors.push(`${fatal ? "fatal " : ""}${(err as { code?: string }).code ?? ""}: ${err.message}`),
      });
      const baselineAt = async (): Promise<number> => (await pair.snapshot.load(GRAPH_NAME))?.seq ?? 0;
      const firstBaseline = await baselineAt();
      const restored: Seen[] = [];
      const restoreErrors: string[] = [];
      const consistentErrors: string[] = [];
      let consistentRestores = 0;
      const end = Date.now() + READ_MS;
      for (let i = 0; Date.now() < end; i++) {
        // Every other restore inside an explicit readConsistent, which the restore's own nests into.
        const consistent = i % 2 === 1;
        try {
          restored.push(await restoredFromPostgres(db, store, { consistent }));
          if (consistent) consistentRestores++;
        } catch (err) {
          (consistent ? consistentErrors : restoreErrors).push(`${(err as { code?: string }).code ?? ""}: ${(err as Error).message}`);
        }
        await sleep(20); // the follower's turn
      }
      const lastBaseline = await baselineAt();
      const stats = follower.stats();
      await follower.stop();
      const messages = await writer.kill();
      expect(messages.find((m) => m.t === "error"), "the writer failed").toBeUndefined();
      const acks = messages.filter((m) => m.t === "ack").length;

      const digests = readSidecar(sidecar);
      expect(restoreErrors, "restores that failed").toEqual([]);
      expect(consistentErrors, "restores inside readConsistent that failed").toEqual([]);
      expect(followErrors, "the follower's errors").toEqual([]);
      // Restores of both kinds ended (a loaded machine may manage only a few in READ_MS).
      expect(restored.length).toBeGreaterThanOrEqual(2);
      expect(consistentRestores).toBeGreaterThanOrEqual(1);
      for (let i = 1; i < restored.length; i++) {
        expect(restored[i]!.seq, `restore ${i} went backwards`).toBeGreaterThanOrEqual(restored[i - 1]!.seq);
      }
      for (let i = 1; i < followed.length; i++) {
        expect(followed[i]!.seq, `the follower went backwards at poll ${i}`).toBeGreaterThan(followed[i - 1]!.seq);
      }
      for (const r of [...restored, ...followed]) {
        expect(r.digest, `a state the writer never had at seq ${r.seq}`).toBe(digests.get(r.seq));
      }
      // The writer compacted under the readers: the baseline moved while they read.
      expect(lastBaseline).toBeGreaterThan(firstBaseline);
      console.log("[postgres-readers]", JSON.stringify({ restores: restored.length, consistentRestores, baselines: [firstBaseline, lastBaseline], lastSeq: restored.at(-1)?.seq, acks, followed: followed.length, reloads: stats.reloads, polls: stats.polls }));
    } finally {
      await backend.close();
      await killAllChildren();
      tmp.remove();
    }
  });
});
