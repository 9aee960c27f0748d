/**
 * A joined flush never rejects while its writes are stored (task 194, review r193). In a store actor's flush group an
 * append-log's batch is conditional on its new segment keys being absent; when another handle of the store took one,
 * the group's commit fails, its batches commit alone, and the log's batch is numbered again and written alone by its
 * tier. Its tier's later members of the group (a later batch, or a flush that took nothing and answers for that
 * batch) rejected StorageError("store-busy") there, though the retry then stored the writes they answer for: two
 * engines flushing a log and a kv tier together saw 61–98 of 120 log flushes reject with their entry already stored,
 * so a caller appending again stores it twice. They now settle with that retry: stored after it (call order kept), or
 * rejected with it, unwritten, when it fails for good. Real worker threads and real SQLite files; the group's failure
 * paths driven in a real store actor by a trigger in the real SQLite file (another handle's row under the key).
 */
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import type { Op, OpResult, TierSpec } from "../../src/engine/protocol.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { flushed, warmed } from "../support/racing-appends.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("flush-group-expectations");
const engines: StorageEngine[] = [];
afterAll(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
  root.remove();
});

/** No automatic retry during a test: what a rejected flush left pending is written only by the test's next flush. */
const retry = { initialMs: 60_000, maxMs: 60_000 };

function engine(): StorageEngine {
  const e = openStorageEngine({ threads: 1, onError: () => undefined });
  engines.push(e);
  return e;
}

describe("through engines (real worker threads, one SQLite file)", () => {
  // A file store's conditional batches never join a group (flush-group.ts `for`): its case checks the same promise there.
  it.each(["sqlite", "file"] as const)("%s: two engines each flushing a log and a kv tier together: a rejected flush's entry is not stored, a resolved one's is, each once, in call order", async (kind) => {
    const path = root.fresh(kind === "sqlite" ? "two-engines.db" : "two-engines");
    const spec = kind === "sqlite" ? { kind: "sqlite" as const, path } : { kind: "file" as const, dir: path };
    const pairs = [engine(), engine()].map((e) => ({
      log: e.appendLog<string>(spec, { name: "log", keyOf: () => "k", retry }),
      kv: e.kv<number>(spec, { name: "kv", retry }),
    }));
    await warmed(pairs.map((p) => p.log));
    // What is stored the moment a flush settles: read by a third handle (SQLite), or by the first engine's worker (a
    // read writes nothing that is pending there).
    const readerBackend = kind === "sqlite" ? sqliteBackend(path) : undefined;
    const reader = readerBackend && appendLogStorage<string>(readerBackend, { name: "log", keyOf: () => "k" });
    const stored = async (): Promise<string[]> => (await (reader ?? pairs[0]!.log).loadEntries({ keyFilter: "k" })).entries;
    const N = 60;
    const storedWhenRejected: string[] = [];
    const missingWhenResolved: string[] = [];
    let resolved = 0;
    try {
      await Promise.all(
        pairs.map(async ({ log, kv }, w) => {
          for (let i = 0; i < N; i++) {
            const entry = `w${w}-${i}`;
            log.appendEntries([entry]);
            kv.save(`w${w}`, i);
            const [logFlush, kvFlush] = await Promise.allSettled([log.flush(), kv.flush()]);
            expect(kvFlush.status).toBe("fulfilled");
            const now = await stored();
            if (logFlush.status === "fulfilled") {
              resolved++;
              if (!now.includes(entry)) missingWhenResolved.push(entry);
            } else {
              expect((logFlush.reason as { code?: unknown }).code).toBe("store-busy");
              if (now.includes(entry)) storedWhenRejected.push(entry); // before: 61–98 of 120
            }
          }
          await flushed(() => log.flush()); // what a rejected flush left pending
        }),
      );
      expect(storedWhenRejected).toEqual([]);
      expect(missingWhenResolved).toEqual([]);
      expect(resolved).toBeGreaterThan(0);
      const all = (await stored()).filter((e) => e !== "warm");
      expect(all.length).toBe(2 * N); // each entry exactly once
      for (const w of [0, 1]) {
        expect(all.filter((e) => e.startsWith(`w${w}-`))).toEqual(Array.from({ length: N }, (_, i) => `w${w}-${i}`));
      }
    } finally {
      await reader?.close();
      readerBackend?.close();
    }
  }, 180_000);

  it("an engine's joined flushes of one log, the first's numbers taken by an inline tier: every flush resolves, in call order", async () => {
    const path = root.fresh("engine-inline.db");
    const viaEngine = engine().appendLog<string>({ kind: "sqlite", path }, { name: "log", keyOf: () => "k", retry });
    const backend = sqliteBackend(path);
    const inline = appendLogStorage<string>(backend, { name: "log", keyOf: () => "k", retry });
    const rejected: string[] = [];
    try {
      for (let round = 0; round < 5; round++) {
        viaEngine.appendEntries([`r${round}-warm`]);
        await viaEngine.flush(); // the worker's allocator holds the next number
        inline.appendEntries([`r${round}-i1`]);
        await inline.flush(); // takes the number the worker uses next (its own allocator lists the store)
        inline.appendEntries([`r${round}-i2`]);
        await inline.flush();
        // Four appends, each with a flush, in one turn: one message, one flush group in the worker.
        const flushes: Array<Promise<void>> = [];
        for (let j = 1; j <= 4; j++) {
          viaEngine.appendEntries([`r${round}-e${j}`]);
          flushes.push(viaEngine.flush());
        }
        for (const r of await Promise.allSettled(flushes)) if (r.status === "rejected") rejected.push(String((r.reason as Error).message));
      }
      expect(rejected).toEqual([]); // before: the later flushes of each round rejected store-busy
      const all = (await viaEngine.loadEntries({ keyFilter: "k" })).entries;
      const mine = all.filter((e) => /-(warm|e\d)$/.test(e));
      const want: string[] = [];
      for (let round = 0; round < 5; round++) want.push(`r${round}-warm`, `r${round}-e1`, `r${round}-e2`, `r${round}-e3`, `r${round}-e4`);
      expect(mine).toEqual(want);
      expect(all.length).toBe(want.length + 10);
    } finally {
      await inline.close();
      backend.close();
    }
  }, 120_000);
});

describe("in a store actor (real SQLite file): a log's later members of a failed group settle with its retry", () => {
  let ids = 1;
  const json = { kind: "builtin", name: "json" } as const;
  const logSpec: TierSpec = { kind: "append-log", name: "log", debounceMs: 60_000, compactEvery: undefined, codec: json, retry };
  const kvSpec: TierSpec = { kind: "kv", name: "kv", debounceMs: 60_000, compactEvery: undefined, codec: json, retry };
  const append = (entry: string): Op => ({ t: "append", tier: 1, bucket: "k", entries: [entry], count: 1, w: 1, n: 1 });
  const put = (key: string, value: unknown): Op => ({ t: "puts", tier: 2, keys: [key], values: [value], w: 1, n: 1 });
  const flush = (tier: number): Op => ({ t: "flush", tier, id: ids++ });
  /** One turn: the log's batch, the kv's, the log's second batch, and a log flush that takes nothing (it answers for them). */
  const turn = (a: string, b: string): Op[] => [append(a), flush(1), put("x", a), flush(2), append(b), flush(1), flush(1)];
  const outcomes = (results: readonly OpResult[]): string[] =>
    results.map((r) => (r.ok ? "ok" : (r.error.code ?? r.error.message)));

  /**
   * Runs `body` on a store actor over a fresh SQLite file with tiers 1 (append-log "log", bucket "k") and 2 (kv), the
   * log's bucket holding "warm" (segment key `warm`). `refuse(when)` installs two triggers: one puts a row under each
   * new log segment key the condition `when` selects (on NEW.k) just before the actor inserts it, as if another
   * handle took that number (a conditional insert then fails on its primary key); the other fails the kv's put of
   * "x" in a transaction that stored such a segment first, which is only the group's one batch (the group's
   * unconditional write replaces a row it finds). So the group's commit fails, its batches commit alone (the kv's
   * resolves), and the log's first batch finds its number taken.
   */
  async function withActor(
    body: (s: {
      apply(ops: Op[]): Promise<OpResult[]>;
      entries(): Promise<unknown[]>;
      warm: string;
      refuse(when: string): void;
      allow(): void;
    }) => Promise<void>,
  ): Promise<void> {
    const path = root.fresh("actor.db");
    const actor = new StoreActor({ store: { kind: "sqlite", path }, synchronous: "FULL", counters: new ActorCounters().buffer });
    await actor.ready();
    const db = new Database(path);
    try {
      const apply = async (ops: Op[]): Promise<OpResult[]> => (await actor.apply(ops)).results;
      const opened = await apply([logSpec, kvSpec].map((spec, i) => ({ t: "open", tier: i + 1, spec, id: ids++ }) as Op));
      expect(opened.map((r) => r.ok)).toEqual([true, true]);
      const entries = async (): Promise<unknown[]> =>
        ((await apply([{ t: "loadEntries", tier: 1, id: ids++, opts: { keyFilter: "k" } }]))[0] as { value: { entries: unknown[] } }).value.entries;
      expect(outcomes(await apply([append("warm"), flush(1)]))).toEqual(["ok"]);
      const segments = db.prepare("SELECT k FROM graphrefly_storage WHERE k > 'k' || char(31) AND k < 'k' || char(32)").all() as Array<{ k: string }>;
      expect(segments.length).toBe(1);
      const warm = segments[0]!.k;
      const newSegment = (k: string): string => `(${k} > '${warm}' AND ${k} < 'k' || char(32))`;
      const allow = (): void => {
        db.exec("DROP TRIGGER IF EXISTS t194_taken; DROP TRIGGER IF EXISTS t194_group");
      };
      await body({
        apply,
        entries,
        warm,
        refuse: (when) => {
          db.exec(
            `CREATE TRIGGER t194_taken BEFORE INSERT ON graphrefly_storage WHEN ${newSegment("NEW.k")} AND ${when}
             BEGIN INSERT INTO graphrefly_storage VALUES (NEW.k, x'00'); END`,
          );
          db.exec(
            `CREATE TRIGGER t194_group BEFORE INSERT ON graphrefly_storage
             WHEN NEW.k = 'x' AND EXISTS (SELECT 1 FROM graphrefly_storage WHERE ${newSegment("k")})
             BEGIN SELECT RAISE(ABORT, 'test: the group fails'); END`,
          );
        },
        allow,
      });
    } finally {
      db.exec("DROP TRIGGER IF EXISTS t194_taken; DROP TRIGGER IF EXISTS t194_group");
      db.close();
      await actor.shutdown().catch(() => undefined);
    }
  }

  it("the first batch's number is taken once: its retry stores it, then the later batch, and every flush resolves", async () => {
    await withActor(async ({ apply, entries, warm, refuse, allow }) => {
      const next = Number(warm.slice(2)) + 1; // the number the log's next segment takes
      refuse(`NEW.k = 'k' || char(31) || '${String(next).padStart(20, "0")}'`);
      // Before: the later batch's flush and the empty one rejected store-busy, though the retry stored the first batch.
      expect(outcomes(await apply(turn("a1", "a2")))).toEqual(["ok", "ok", "ok", "ok"]);
      expect(await entries()).toEqual(["warm", "a1", "a2"]);
      allow();
      expect(outcomes(await apply([append("a3"), flush(1)]))).toEqual(["ok"]);
      expect(await entries()).toEqual(["warm", "a1", "a2", "a3"]);
    });
  });

  it("every number is taken: the retry fails for good, the log's flushes reject with it, nothing of them is stored, and a later flush stores them in call order, once", async () => {
    await withActor(async ({ apply, entries, refuse, allow }) => {
      refuse("1");
      // The kv's flush resolves (committed alone); the log's three reject with the retry's error, unwritten.
      expect(outcomes(await apply(turn("a1", "a2")))).toEqual(["store-busy", "ok", "store-busy", "store-busy"]);
      expect(await entries()).toEqual(["warm"]);
      allow();
      expect(outcomes(await apply([append("a3"), flush(1)]))).toEqual(["ok"]);
      expect(await entries()).toEqual(["warm", "a1", "a2", "a3"]);
    });
  });
});
