/**
 * The turn rings' ledger across stores (review r214 of task 209, docs/design.md §3.35): a ring one store gave back,
 * that its worker released and another store then took, belongs to that other store's story alone. The first store
 * kept a list of rings it had handed back: a ring dropped with the other store's lost actor stayed referenced there
 * (memory outside the budget, one ring per such loss), and the first store's own lost actor made the ledger forget a
 * ring the other store had given back since (never reused: a fresh buffer made while it lived on). The ledger now
 * remembers which slot gave each kept ring back, and an entry leaves with its ring's next take. Real worker threads
 * and SQLite files; the last case drives the ledger and a slot directly with real shared buffers.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, expect, it } from "vitest";
import type { StoreSpec } from "../../src/engine/index.js";
import { TurnRingLedger, TurnRingReader, TurnRingSlot, turnRingCounts, turnRingsMadeForTests } from "../../src/engine/ring.js";
import type { EngineTestAccess } from "../../src/engine/engine.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { outcome } from "../support/refusals.js";
import { until } from "../support/wait.js";
import { turn } from "./fixtures/helpers.js";
import { readyKv, ringEngines } from "./fixtures/ring-engines.js";
import { BLOCK, THREAD_ID } from "./fixtures/probe-messages.mjs";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const { root, open } = ringEngines("turn-ring-ledger", { threads: 2, idleStoreCloseMs: 0 });
const MiB = 2 ** 20;
afterEach(() => {
  turnRingsMadeForTests.watch = undefined;
});

/** The worker thread of `store`'s actor (ring-worker.mjs's THREAD_ID message: no job, no ring record). */
async function threadOf(access: EngineTestAccess, store: StoreSpec): Promise<number> {
  const into = new SharedArrayBuffer(4);
  await access.post(store, { type: THREAD_ID, into });
  const id = new Int32Array(into);
  await until(() => Atomics.load(id, 0) !== 0, "the actor's thread id", { timeoutMs: 20_000 }); // thread ids start at 1
  return Atomics.load(id, 0);
}

/**
 * `kv` (store `moved`'s only tier) with its store's actor on another thread than `stay`'s. The engine does not promise
 * that: piscina hands a new actor to the least busy thread that is ready, and the thread replacing a terminated one
 * may not be ready yet when a lost actor restarts (a loaded machine), so both stores' actors then share the one
 * thread, and terminating it for one loses the other's actor too, which these cases keep alive. Until they are
 * apart, `moved`'s tier is closed (its store shuts down, holding no ring) and another opened, whose actor starts anew.
 */
async function apartFrom(access: EngineTestAccess, moved: StoreSpec, stay: StoreSpec, kv: KvStorageTier<number>): Promise<KvStorageTier<number>> {
  const stays = await threadOf(access, stay);
  let current = kv;
  await until(
    async () => {
      if ((await threadOf(access, moved)) !== stays) return true;
      await current.close();
      current = access.engine.kv<number>(moved, { name: "kv", debounceMs: 60_000 });
      await current.flush();
      return false;
    },
    "the two stores' actors on different threads",
    { timeoutMs: 60_000 },
  );
  return current;
}

/** How many of `refs` still point at their buffer after main-thread collections with turns between. */
async function liveAfterGc(refs: readonly WeakRef<SharedArrayBuffer>[]): Promise<number> {
  for (let i = 0; i < 3; i++) {
    // A WeakRef's target is kept until the current job ends: collect after a turn, not in the same one.
    await turn();
    gc();
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}

it("a ring dropped with another store's lost actor is not kept alive by the store that handed it back before", async () => {
  const ringBytes = 4 * MiB; // the budget holds 16
  const access = open({ turnRingBytes: ringBytes });
  const e = access.engine;
  const { store: a, kv: kvA } = await readyKv(e, root, "a.db");
  const { store: b, kv: firstKvB } = await readyKv(e, root, "b.db");
  let kvB = firstKvB;
  // WeakRefs to the main thread's objects of the buffers made: the main isolate collects its own object once nothing
  // here refers to it, whatever the workers' isolates do with theirs (an idle worker may never collect its garbage,
  // so array-buffer byte counts, which follow the shared backing store, also see the workers' leftovers).
  const made: WeakRef<SharedArrayBuffer>[] = [];
  turnRingsMadeForTests.watch = (sab) => made.push(new WeakRef(sab));
  const cycles = 8;
  for (let i = 0; i < cycles; i++) {
    kvA.save(`a${i}`, i); // A takes a ring (a fresh one: the last was dropped with B's actor)
    await turn();
    expect(await outcome(kvA.flush())).toBe("resolved");
    access.sweepRings();
    access.sweepRings(); // A's ring goes back by message (A's handedBack keeps it)
    await until(() => access.rings()!.reusable === 1, "A's worker released it", { timeoutMs: 20_000 });
    await outcome(kvB.flush()); // B's (revived) actor ready: its next save goes through a ring
    kvB = await apartFrom(access, b, a, kvB); // terminating B's thread below must leave A's actor alone
    kvB.save(`b${i}`, i); // B takes the same buffer (reset: RELEASED 0)
    await turn();
    expect(await outcome(kvB.flush())).toBe("resolved");
    expect(access.rings()).toMatchObject({ held: 1, reusable: 0 });
    await access.terminate(b); // B's actor lost: the ledger drops the ring (never released again)
    await until(() => access.rings()!.held === 0, "B's ring dropped", { timeoutMs: 20_000 });
    expect(await kvA.load(`a${i}`)).toBe(i); // A is alive and well (another thread)
  }
  expect(access.rings()).toMatchObject({ held: 0, kept: 0, made: cycles }); // the ledger keeps none...
  expect(made).toHaveLength(cycles);
  // ...and nothing else on this thread holds them: before, A's slot kept every ring made here (8 of 8 alive).
  expect(await liveAfterGc(made)).toBe(0);
}, 180_000);

it("a store's lost actor does not make the ledger forget a ring another store gave back since: it is reused", async () => {
  const access = open();
  const e = access.engine;
  const { store: a, kv: kvA } = await readyKv(e, root, "fa.db");
  const { store: b, kv: firstKvB } = await readyKv(e, root, "fb.db");
  // Terminating A's thread below must leave B's actor alone (blocked, then releasing X).
  const kvB = await apartFrom(access, b, a, firstKvB);
  kvA.save("a", 1); // A takes ring X
  await turn();
  expect(await outcome(kvA.flush())).toBe("resolved");
  access.sweepRings();
  access.sweepRings(); // X back by message: A's handedBack = [X]
  await until(() => access.rings()!.reusable === 1, "A's worker released X", { timeoutMs: 20_000 });
  kvB.save("b", 1); // B takes X (reset: RELEASED 0)
  await turn();
  expect(await outcome(kvB.flush())).toBe("resolved");
  expect(access.rings()).toMatchObject({ held: 1, made: 1 });
  await access.post(b, { type: BLOCK, ms: 4_000 }); // B's worker reads its handover a few seconds late
  access.sweepRings();
  access.sweepRings(); // B gives X back by message: kept for reuse once B's worker releases it
  expect(access.rings()).toMatchObject({ held: 0, kept: 1 });
  await access.terminate(a); // A's actor lost: A's slot forgets every ring in its handedBack not released: X
  await until(async () => (await e.stats()).find((s) => JSON.stringify(s.store).includes("fa.db"))?.alive === false, "A lost");
  // B's worker comes back and releases X (its load is answered after the handover message): the ledger should keep X
  // for reuse, as it would had A's actor lived.
  expect(await kvB.load("b")).toBe(1);
  expect(access.rings()).toMatchObject({ held: 0, kept: 1, reusable: 1 });
}, 120_000);

it("a ring handed to an actor that shut down before reading the handover is dropped, one it released is kept", () => {
  const ledger = new TurnRingLedger(1024, 2);
  const slot = new TurnRingSlot(ledger);
  const sab = slot.take()!; // posted to an actor whose thread stopped reading its port: nothing will release it
  expect(turnRingCounts(sab).written).toBe(0);
  slot.ended(); // its task ended (connection die "closed")
  expect(ledger).toMatchObject({ held: 0, kept: 0 }); // no place of the budget held for the engine's life
  const other = new TurnRingSlot(ledger);
  const released = other.take()!;
  other.give(); // handed back by message
  new TurnRingReader(released).release(); // its worker read the handover and let go (ring-drain.ts stop)
  other.ended();
  expect(ledger).toMatchObject({ held: 0, kept: 1, reusable: 1 });
  expect(slot.take()).toBe(released); // reused, not a fresh buffer
  expect(ledger.made).toBe(2);
});
