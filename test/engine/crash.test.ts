/**
 * Worker crash drills (throw, process.exit, OOM inside the worker; terminate from the main thread), each
 * in the middle of a load: every waiting promise settles (rejecting with StorageError('worker-crashed')),
 * onError hears it, the store reopens through the same engine with its acknowledged data intact, and
 * stores on other worker threads keep working.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { StoreSpec } from "../../src/engine/index.js";
import { openFaultEngine, type FaultEngine } from "../support/faults.js";
import { StorageError } from "../../src/errors.js";
import { ownerThread, tempRoot, turn } from "./fixtures/helpers.js";

const root = tempRoot("crash");
afterAll(() => root.remove());

let engine: FaultEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

const ACKED_BATCHES = 10;
const PER_BATCH = 50;
/** Unanswered flushes kept in flight during the load (bounded so a dying worker is not buried in messages). */
const MAX_IN_FLIGHT = 16;

type Outcome = { ok: true } | { ok: false; error: unknown };

function track(p: Promise<unknown>, into: Outcome[]): Promise<void> {
  return p.then(
    () => void into.push({ ok: true }),
    (error: unknown) => void into.push({ ok: false, error }),
  );
}

function isWorkerCrashed(e: unknown): boolean {
  return e instanceof StorageError && e.code === "worker-crashed";
}

describe.each(["throw", "exit", "oom", "terminate"] as const)("worker crash: %s", (kind) => {
  it("rejects every waiting promise, reports it, and the store reopens with acknowledged data intact", async () => {
    const reported: Array<{ error: Error; store: StoreSpec }> = [];
    engine = openFaultEngine({
      threads: 2,
      resourceLimits: { maxOldGenerationSizeMb: 32 },
      onError: (error, ctx) => reported.push({ error, store: ctx.store }),
    });
    const e = engine;
    const victim: StoreSpec = { kind: "sqlite", path: root.fresh(`${kind}.db`) };
    const victimThread = await ownerThread(e, victim);

    // A store on another worker thread: piscina spreads actors over its threads once both have started,
    // so keep opening small stores (pausing between tries) until one lands elsewhere.
    let bystander: StoreSpec | undefined;
    for (let i = 0; i < 400 && !bystander; i++) {
      const candidate: StoreSpec = { kind: "memory", name: root.fresh(`bystander-${kind}`) };
      if ((await ownerThread(e, candidate)) !== victimThread) bystander = candidate;
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(bystander, "no store landed on a second worker thread").toBeDefined();
    const other = e.kv<string>(bystander!, { name: "other" });
    other.save("before", "still here");
    await other.flush();

    // Acknowledged durable before the crash.
    const kv = e.kv<number>(victim, { name: "kv", debounceMs: 60_000 });
    for (let b = 0; b < ACKED_BATCHES; b++) {
      for (let i = 0; i < PER_BATCH; i++) kv.save(`acked/${b}/${i}`, b * PER_BATCH + i);
      await kv.flush();
    }

    // The load: batches of saves and flushes, several always in flight, plus reads; none awaited one by one.
    const flushes: Outcome[] = [];
    const others: Outcome[] = [];
    const settled: Promise<void>[] = [];
    const ackedDuringLoad: number[] = [];
    const thrownAtCall: unknown[] = [];
    const fault = e.injectFault(victim, kind);
    settled.push(track(fault, others));
    let crashed = false;
    let inFlight = 0;
    // The load runs until a flush rejects or the crash is reported: a worker that answered every flush it took
    // before dying leaves none waiting (its answers are delivered first), and its store reopens for the next ones.
    const crashReported = (): boolean => reported.some((r) => isWorkerCrashed(r.error));
    for (let b = 0; !crashed && !crashReported(); b++) {
      if (inFlight < MAX_IN_FLIGHT) {
        try {
          for (let i = 0; i < PER_BATCH; i++) kv.save(`load/${b}/${i}`, i);
        } catch (err) {
          thrownAtCall.push(err); // the death was already known: save() fails fast
          break;
        }
        inFlight++;
        const flushed = kv.flush();
        settled.push(track(flushed, flushes));
        flushed.then(
          () => {
            inFlight--;
            ackedDuringLoad.push(b);
          },
          () => (crashed = true),
        );
        settled.push(track(kv.load(`acked/0/${b % PER_BATCH}`), others));
      }
      await turn();
    }
    await Promise.all(settled); // nothing hangs: every promise settles

    const failures = flushes.filter((o): o is { ok: false; error: unknown } => !o.ok);
    for (const err of thrownAtCall) expect(isWorkerCrashed(err), String(err)).toBe(true);
    for (const f of failures) expect(isWorkerCrashed(f.error), String(f.error)).toBe(true);
    for (const o of others) if (!o.ok) expect(isWorkerCrashed(o.error), String(o.error)).toBe(true);
    const crashReports = reported.filter((r) => isWorkerCrashed(r.error));
    expect(crashReports.map((r) => r.store)).toContainEqual(victim);

    // The same proxy works again: its store reopened on a new worker, and every write before was reported by a
    // flush (each batch of the load was followed by one), so nothing lost is left to report.
    const late = await kv.flush().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(late).toBeUndefined();

    // The store reopens through the same engine; acknowledged data is intact.
    const reopened = e.kv<number>(victim, { name: "kv" });
    const ackedKeys = new Set(await reopened.list("acked/"));
    expect(ackedKeys.size).toBe(ACKED_BATCHES * PER_BATCH);
    expect(await reopened.load(`acked/${ACKED_BATCHES - 1}/${PER_BATCH - 1}`)).toBe(ACKED_BATCHES * PER_BATCH - 1);
    const loadKeys = new Set(await reopened.list("load/"));
    for (const b of ackedDuringLoad) {
      for (let i = 0; i < PER_BATCH; i++) expect(loadKeys.has(`load/${b}/${i}`)).toBe(true);
    }
    reopened.save("after", 1);
    await reopened.flush();
    expect(await reopened.load("after")).toBe(1);
    const stats = await e.stats();
    expect(stats.find((s) => s.store.kind === "sqlite")?.alive).toBe(true);

    // The store on the other thread never noticed.
    expect(await other.load("before")).toBe("still here");
    other.save("after", "fine");
    await other.flush();
    expect(await other.load("after")).toBe("fine");
    console.log(
      `[crash ${kind}] ${flushes.length} flushes during the load: ${flushes.length - failures.length} acknowledged, ${failures.length} rejected worker-crashed`,
    );
  });
});
