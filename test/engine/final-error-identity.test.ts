/**
 * A store's final error (StorageBackend.finalError: a PostgreSQL writer's lost lease) is what the backend states, by
 * identity, not any error sharing its code: the actor marked every error of code `not-owner` final while its backend
 * had one (review r253, task 261), so an ordinary error of that code (here a commit watcher's own report) ended the
 * store's writes on the main thread with its wording. And the main thread keeps the FIRST loss it hears: its backlog
 * kept the last, so a later final answer replaced the error writes had been refused with.
 *
 * Real parts: the test PostgreSQL server, the store actor (in this thread) and its backend; the main thread's backlog.
 */
import { afterEach, describe, expect, it } from "vitest";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import { StoreBacklog } from "../../src/engine/backlog.js";
import type { CommitWatcherContext, CommitWatcherDefinition } from "../../src/engine/commit-watchers.js";
import type { ActorEvent, TierSpec } from "../../src/engine/protocol.js";
import { deserializeError, StorageError } from "../../src/errors.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { flush, nextId, put } from "./fixtures/actor-ops.js";

const database = useTestDatabase();
const kvSpec: TierSpec = { kind: "kv", name: "kv", debounceMs: 60_000, compactEvery: undefined, codec: { kind: "builtin", name: "json" } };

const actors: StoreActor[] = [];
afterEach(async () => {
  for (const a of actors.splice(0)) await a.shutdown().catch(() => undefined);
});

/** The errors the actor reported, each with whether it said the store writes no more. */
const reported = (events: ActorEvent[]): Array<{ code: unknown; message: string; final: boolean }> =>
  events.flatMap((e) =>
    e.type === "error"
      ? [{ code: (deserializeError(e.error) as { code?: unknown }).code, message: deserializeError(e.error).message, final: e.final === true }]
      : [],
  );

describe("a store's final error", () => {
  it("is the backend's own error: another error of code not-owner reported after the loss is not final", async () => {
    const db = await database();
    let watcher: CommitWatcherContext | undefined;
    const definition: CommitWatcherDefinition<unknown> = {
      name: "reporter",
      create: (ctx) => {
        watcher = ctx;
        return { committed: () => undefined };
      },
    };
    const store = { kind: "postgres" as const, url: db.url, schema: db.schema, store: "final-identity" };
    const actor = new StoreActor({ store, synchronous: "FULL", counters: new ActorCounters().buffer }, new Map(), [definition]);
    actors.push(actor);
    const events: ActorEvent[] = [];
    actor.setEventSink((e) => events.push(e));
    await actor.ready();
    await actor.apply([{ t: "open", tier: 1, spec: kvSpec, id: nextId() }]);
    const first = await actor.apply([put(1, "before", 1), flush(1)]);
    expect(first.results.at(-1)).toMatchObject({ ok: true });

    // Another machine takes the store over: the actor's next write loses its lease (the backend's final error).
    const raw = await db.raw();
    await raw.query(`UPDATE "${db.schema}".graphrefly_storage_lease SET holder = 'thief', epoch = epoch + 1 WHERE store = $1`, [store.store]);
    const lost = await actor.apply([put(1, "after", 2), flush(1)]);
    expect(lost.results.at(-1)).toMatchObject({ ok: false });
    expect(reported(events)).toEqual([{ code: "not-owner", message: expect.stringContaining("thief"), final: true }]);

    // A report of the watcher's own, sharing the code: no statement of the backend's.
    watcher!.report(new StorageError("not-owner", "the watcher's own refusal, from another store"), "reporter");
    expect(reported(events).slice(1)).toEqual([{ code: "not-owner", message: "the watcher's own refusal, from another store", final: false }]);
  });

  it("heard twice on the main thread, stays the first one heard", () => {
    const backlog = new StoreBacklog(new ActorCounters(), undefined, "s");
    const firstLoss = new StorageError("not-owner", "the first loss");
    backlog.end(firstLoss);
    backlog.end(new StorageError("not-owner", "a later copy: an earlier attempt may have been stored"));
    expect(backlog.ended).toBe(firstLoss);
    // A new actor opens the store again: its own loss is heard afresh.
    backlog.fail(new StorageError("worker-unresponsive", "the actor was lost"));
    const next = new StorageError("not-owner", "the new actor's loss");
    backlog.end(next);
    expect(backlog.ended).toBe(next);
  });
});
