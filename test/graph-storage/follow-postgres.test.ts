/**
 * Followers of PostgreSQL stores (issue 15 item 3): the backend's change counter (the lease row's `changes`, bumped
 * inside every write transaction) moves with every committed write of any writer and with nothing else, so a
 * follower's idle poll is one indexed row read; a follower over read-only PostgreSQL tiers keeps up with a writer
 * across compactions and a takeover by a new writer. The writer runs in this process here;
 * test/reliability/postgres-follow.test.ts runs writer and follower in processes of their own.
 */
import { afterEach, describe, expect, it } from "vitest";
import { postgresBackend, simulatePausedHolder, type PostgresBackend, type PostgresBackendOptions } from "../../src/backend/postgres.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { followGraph } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { kvStorage } from "../../src/tier/kv.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { errorOf, sleep } from "../support/wait.js";
import { GRAPH, buildGraph, inlinePair, randomWave, rng } from "../graph-compaction/fixtures.js";

const database = useTestDatabase();
let n = 0;
const freshStore = (): string => `follow-${n++}`;
/** Long enough that the timer never polls during a test that polls by hand. */
const BY_HAND = 3_600_000;

const opened: PostgresBackend[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const b of opened.splice(0).reverse()) await b.close();
});

async function open(opts: Partial<PostgresBackendOptions> & { store: string }): Promise<PostgresBackend> {
  const db = await database();
  const b = await postgresBackend({ url: db.url, schema: db.schema, ...opts });
  opened.push(b);
  return b;
}

const one = Uint8Array.of(1);

describe("postgresBackend changeCounter", () => {
  it("moves with every committed write of any writer, and not with reads, renewals, takeovers or fenced writes", async () => {
    const store = freshStore();
    const reader = await open({ store, readOnly: true });
    expect(await reader.changeCounter(), "no lease row yet").toBe(0);
    const a = await open({ store, lease: { holder: "A", ttlMs: 1500, renewEveryMs: 50 } });
    // A new lease row counts on from the database clock (µs), far from any count a follower saw on an earlier row.
    const c0 = await reader.changeCounter();
    expect(c0).toBeGreaterThan(Date.UTC(2020, 0) * 1000);
    await sleep(300); // several renewals
    expect(await reader.changeCounter(), "renewals write no data").toBe(c0);
    await a.write("a", one);
    const c1 = await reader.changeCounter();
    expect(c1).not.toBe(c0);
    await reader.read("a");
    await reader.list();
    await sleep(300); // several renewals
    expect(await reader.changeCounter(), "reads and renewals change nothing").toBe(c1);
    await a.delete("a");
    const c2 = await reader.changeCounter();
    expect(c2).not.toBe(c1);
    await a.writeBatch([
      { op: "put", key: "b", value: one },
      { op: "put", key: "c", value: one },
    ]);
    const c3 = await reader.changeCounter();
    expect(c3).not.toBe(c2);
    expect(await a.changeCounter(), "the writer's own handle reads the same count").toBe(c3);

    // A holder frozen past its lease: its late write is fenced (nothing stored), and the count stays.
    simulatePausedHolder(a);
    const b = await open({ store, lease: { holder: "B", waitMs: 30_000, ttlMs: 10_000 } });
    expect(await reader.changeCounter(), "a takeover writes no data").toBe(c3);
    expect((await errorOf(() => a.write("late", one)) as { code?: string }).code).toBe("not-owner");
    expect(await reader.changeCounter(), "a fenced write stores nothing").toBe(c3);
    await b.write("d", one);
    const c4 = await reader.changeCounter();
    expect(c4, "the new holder's writes count on from the old one's").toBeGreaterThan(c3);
  });

  it("reaches engine followers: a read-only engine kv tier of a PostgreSQL store passes it through", async () => {
    const db = await database();
    const store = freshStore();
    const writer = await open({ store });
    const engine = openStorageEngine({ threads: 1 });
    cleanups.push(() => engine.close());
    const kv = engine.kv<number>({ kind: "postgres", url: db.url, schema: db.schema, store, readOnly: true });
    const c0 = await kv.changeCounter!();
    await writer.write("a", one);
    const c1 = await kv.changeCounter!();
    expect(c1).not.toBe(c0);
    await kv.list();
    expect(await kv.changeCounter!()).toBe(c1);
  });

  it("is 0 on a database without the tables, and kv tiers pass it through", async () => {
    const db = await database();
    const empty = await postgresBackend({ url: db.url, schema: `${db.schema}_none`, store: "x", readOnly: true });
    opened.push(empty);
    expect(await empty.changeCounter()).toBe(0);
    const tier = kvStorage<number>(empty);
    expect(await tier.changeCounter?.()).toBe(0);
  });
});

/** `inner` with its listings counted: a follower's idle poll must not list. */
function countingLists(inner: PostgresBackend): { backend: StorageBackend; lists(): number } {
  let lists = 0;
  const backend: StorageBackend = {
    name: inner.name,
    supports: inner.supports,
    readOnly: true,
    read: (k) => inner.read(k),
    write: (k, b) => inner.write(k, b),
    list(prefix) {
      lists++;
      return inner.list(prefix);
    },
    changeCounter: () => inner.changeCounter(),
  };
  return { backend, lists: () => lists };
}

describe("followGraph over read-only PostgreSQL tiers", () => {
  it("equals the writer's graph after every poll across compactions and a new writer, and idle polls list nothing", async () => {
    const store = freshStore();
    const writerBackend = await open({ store, lease: { holder: "W1" } });
    let writerGraph = buildGraph();
    let handle = attachSnapshotStorage(writerGraph, [inlinePair(writerBackend)], { compactEvery: Number.POSITIVE_INFINITY });
    cleanups.push(() => handle.dispose());
    await handle.flush();

    const reader = countingLists(await open({ store, readOnly: true }));
    const graph = buildGraph();
    const follower = await followGraph(graph, inlinePair(reader.backend), { pollMs: BY_HAND });
    cleanups.push(() => follower.stop());
    await follower.poll(); // the first poll has no counter value to compare with
    const idle = reader.lists();
    for (let i = 0; i < 5; i++) await follower.poll();
    expect(reader.lists(), "polls of an unchanged store list nothing").toBe(idle);

    const random = rng(0x9e5);
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 5; i++) randomWave(writerGraph, random);
      const seq = await handle.flush();
      if (round % 2 === 1) await compactGraph({ backend: writerBackend }, { graphName: GRAPH, keepFrames: 0 });
      expect(await follower.poll()).toMatchObject({ appliedSeq: seq, frames: 0 });
      expect(graph.snapshot(), `round ${round}`).toEqual(writerGraph.snapshot());
    }
    expect(follower.stats().reloads, "compactions folded frames it had not applied").toBeGreaterThan(0);

    // The writer goes away; a new one takes the store over, restores and writes on above its attach baseline.
    await handle.dispose();
    await writerBackend.close();
    const next = await open({ store, lease: { holder: "W2", waitMs: 30_000 } });
    writerGraph = buildGraph();
    await restoreSnapshot(writerGraph, inlinePair(next));
    handle = attachSnapshotStorage(writerGraph, [inlinePair(next)], { compactEvery: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 5; i++) randomWave(writerGraph, random);
    const seq = await handle.flush();
    expect(await follower.poll()).toMatchObject({ appliedSeq: seq, frames: 0 });
    expect(graph.snapshot()).toEqual(writerGraph.snapshot());
    expect(follower.stats().state).toBe("following");
  });
});
