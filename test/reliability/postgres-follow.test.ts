/**
 * A follower on another "machine" of a graph written through a PostgreSQL store (issue 15 item 3): writer processes
 * (engine + attach on a { kind: "postgres" } store, the actor auto-compacting the WAL) write under load and are
 * killed with SIGKILL; each next writer waits for the dead one's lease, restores and writes on. A follower process
 * (its own read-only postgresBackend, inline tiers, no engine) follows the whole time, FOLLOW_CYCLES writers
 * (default 4). Checked:
 * - every state the follower showed is one the writer had at that seq (the writer records its digest at every wave
 *   boundary before the frames leave the process; a PostgreSQL batch is one transaction, so never inside a wave);
 * - once a writer is dead and the store at rest, the follower catches up: its seq is at least the last acknowledged
 *   one, and its state equals what restore reads from the store;
 * - it never stops by itself across compactions and takeovers, and reloads the baselines that moved under it.
 */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt, envCount, killAllChildren, prng, sleep, startChild, tempDir, type ChildMessage } from "./fixtures/crash-harness.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { readSidecar, restoredFromPostgres, writerSpec } from "../support/postgres-graph.js";

const CYCLES = envCount("FOLLOW_CYCLES", 4);
/** A safety net for a hung child, never the thing asserted. */
const TIMEOUT = 60_000 + CYCLES * 15_000;
const database = useTestDatabase();

beforeAll(() => assertBuilt());
afterAll(() => killAllChildren());

describe("a follower process of PostgreSQL writer processes killed with SIGKILL", () => {
  it(`${CYCLES} writers; the follower shows only the writers' states and ends at the store's`, { timeout: TIMEOUT }, async () => {
    const db = await database();
    const store = "follow-crash";
    const tmp = tempDir("pg-follow");
    const sidecar = join(tmp.dir, "digests.log");
    closeSync(openSync(sidecar, "a"));
    const rnd = prng(0xf0110);
    let follower: ReturnType<typeof startChild> | undefined;
    let acked: { seq: number; digest: string } | undefined;
    let settles = 0;
    let checked = 0;
    let seenFrom = 0;
    try {
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const where = `cycle ${cycle}`;
        const writer = startChild("follow-writer.mjs", { spec: writerSpec(db, store), sidecar, seed: Math.floor(rnd() * 2 ** 31) });
        await writer.waitFor("ack", 2);
        if (follower === undefined) {
          follower = startChild("postgres-follower.mjs", { url: db.url, schema: db.schema, store, pollMs: 5 });
          await follower.waitFor("following");
        }
        await sleep(300 + Math.floor(rnd() * 500)); // following a writer under load
        const messages: ChildMessage[] = await writer.kill();
        const error = messages.find((m) => m.t === "error");
        expect(error, `${where}: the writer failed: ${String(error?.message)}`).toBeUndefined();
        for (const m of messages) {
          if (m.t === "ack" && (acked === undefined || (m.seq as number) >= acked.seq)) acked = { seq: m.seq as number, digest: m.digest as string };
        }

        // A statement the killed writer had sent may still commit on the server after the kill: settle until the
        // follower and a restore agree (bounded; it must happen).
        let settled: ChildMessage | undefined;
        let final: { seq: number; digest: string } | undefined;
        for (let attempt = 0; attempt < 50; attempt++) {
          follower.process.send({ t: "settle", polls: 2 });
          settled = await follower.waitFor("settled", ++settles);
          final = await restoredFromPostgres(db, store);
          if (settled.seq === final.seq && settled.digest === final.digest) break;
          await sleep(100);
        }
        expect(follower.messages.filter((m) => m.t === "fatal" || m.t === "error"), `${where}: the follower stopped`).toEqual([]);
        expect(settled!.seq, `${where}: the follower is below the last acknowledged seq`).toBeGreaterThanOrEqual(acked!.seq);
        expect([settled!.seq, settled!.frames], `${where}: caught up with the store`).toEqual([final!.seq, 0]);
        expect(settled!.digest, `${where}: the follower's final state is not the store's`).toBe(final!.digest);
        if (settled!.seq === acked!.seq) expect(settled!.digest, where).toBe(acked!.digest);

        const digests = readSidecar(sidecar);
        const seen = follower.messages.filter((x) => x.t === "seen");
        for (const m of seen.slice(seenFrom)) {
          checked++;
          expect(m.digest, `${where}: the follower showed a state the writer never had at seq ${String(m.seq)}`).toBe(digests.get(m.seq as number));
        }
        seenFrom = seen.length;
      }
      const last = follower!.messages.filter((m) => m.t === "settled").at(-1) as ChildMessage & { stats: { state: string; reloads: number; appliedFrames: number } };
      expect(last.stats.state).toBe("following");
      // Every writer but the first starts above a new attach baseline; the writers' compactions move it too.
      expect(last.stats.reloads).toBeGreaterThanOrEqual(CYCLES - 1);
      console.log("[postgres-follow]", JSON.stringify({ cycles: CYCLES, statesChecked: checked, ...last.stats }));
    } finally {
      await follower?.kill();
      tmp.remove();
    }
  });
});
