/**
 * A follower whose store is down (review s15c2 D-C): its polls fail at once, and it polled every pollMs with an
 * onError per poll (a new PostgreSQL connection attempt each). Now the wait before the next poll backs off (pollMs
 * doubled per failed poll, jittered half to full, up to 10 s), resets once a poll succeeds, and onError hears a
 * failing spell once (again only for a different error). The store is a real PostgreSQL server behind a loopback
 * proxy that, while "down", cuts every connection as it sends anything.
 */
import { describe, expect, it } from "vitest";
import {
  attachSnapshotStorage,
  createGraph,
  followGraph,
  kvStorage,
  postgresBackend,
  snapshotStorage,
  walFrameCodec,
  type GraphCheckpointRecord,
  type StorageBackend,
} from "../../src/index.js";
import { MAX_FOLLOW_BACKOFF_MS } from "../../src/persistence/follow.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { usePipes, type Pipe } from "../support/postgres-pipe.js";
import { until } from "../support/wait.js";

const database = useTestDatabase();
const backends = useBackends(database, "follow-backoff");
const pipes = usePipes();
const POLL_MS = 20;

const pairOf = (b: StorageBackend) => ({
  snapshot: snapshotStorage<GraphCheckpointRecord>(b, { name: "s" }),
  wal: kvStorage(b, { name: "w", codec: walFrameCodec }),
});

const codeOf = (e: unknown): string => String((e as { code?: unknown }).code ?? (e as Error).name);

describe("a follower whose store is down", () => {
  it("backs off while polls fail, resets on success, and reports once per failing spell", async () => {
    const db = await database();
    const writer = await backends({ store: "fb" });
    const g = createGraph("g");
    g.state("v", 0);
    const handle = attachSnapshotStorage(g, [pairOf(writer)]);
    g.set("v", 1);
    await handle.flush();

    let down = false;
    let pipe: Pipe | undefined;
    pipe = await pipes(db.url, {
      toServer: (_d, pass) => {
        if (down) pipe?.cut();
        else pass();
      },
    });
    const reader = await backends({ url: pipe.url, store: "fb", readOnly: true });
    const g2 = createGraph("g");
    g2.state("v", 0);
    const reported: string[] = [];
    const follower = await followGraph(g2, pairOf(reader), { pollMs: POLL_MS, onError: (e) => reported.push(codeOf(e)) });
    try {
      const first = follower.stats().nextPollMs;
      down = true;
      pipe.cut();
      // (Before the fix the stats had no count of failed polls: each failed poll was reported.)
      const failed = (): number => follower.stats().failedPolls ?? reported.length;
      const chosen: Array<{ failedPolls: number; nextPollMs: number | undefined }> = [];
      for (let k = 1; k <= 5; k++) {
        await until(() => failed() >= k, `poll ${k} failed`, { timeoutMs: 30_000 });
        const { failedPolls, nextPollMs } = follower.stats();
        chosen.push({ failedPolls, nextPollMs });
      }
      // One report per spell, another only for a different error: never the same code twice in a row.
      expect(reported.length).toBeGreaterThan(0);
      for (let i = 1; i < reported.length; i++) expect(reported[i]).not.toBe(reported[i - 1]);
      expect(reported.length).toBeLessThan(failed());
      // The wait it chose after `failedPolls` failures in a row: pollMs doubled per failure, jittered half to full.
      expect(first).toBe(POLL_MS);
      for (const { failedPolls, nextPollMs } of chosen) {
        const nominal = Math.min(MAX_FOLLOW_BACKOFF_MS, POLL_MS * 2 ** failedPolls);
        expect(nextPollMs).toBeGreaterThanOrEqual(Math.max(POLL_MS, nominal / 2));
        expect(nextPollMs).toBeLessThanOrEqual(nominal);
      }
      expect(follower.stats().state).toBe("following");

      // The store back: the next poll succeeds, the wait is pollMs again, and the follower catches up.
      const before = reported.length;
      down = false;
      g.set("v", 2);
      await handle.flush();
      await until(() => follower.stats().failedPolls === 0, "a poll succeeded", { timeoutMs: 30_000 });
      expect(follower.stats().nextPollMs).toBe(POLL_MS);
      await until(() => g2.get("v") === 2, "the follower caught up", { timeoutMs: 30_000 });
      expect(reported).toHaveLength(before);

      // A new spell is reported again, once.
      down = true;
      pipe.cut();
      await until(() => follower.stats().failedPolls >= 3, "three polls failed again", { timeoutMs: 30_000 });
      expect(reported.length).toBeGreaterThan(before);
      expect(reported.length).toBeLessThan(before + 3);
    } finally {
      down = false;
      await follower.stop();
      await handle.dispose();
    }
  });
});
