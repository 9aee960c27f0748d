/**
 * A hung worker (issue 11 item 4) and the other stores of a dead worker (item 5), with real worker threads:
 * - the "hang" fault (a 60 s busy loop) and a codec module that never returns, hit by a flush and by a job:
 *   with a small `watchdogMs`, the op waiting on the hung actor, a flush of another store on the same worker,
 *   engine.stats() and engine.close() all settle, with StorageError("worker-unresponsive"); the worker is
 *   terminated and the stores work again through the same tiers;
 * - a worker ended by process.exit (the "exit" fault) or by the watchdog: another store on it keeps working
 *   through its tiers; its write that no flush had acknowledged is never dropped silently: that tier's next
 *   flush rejects with StorageError("worker-crashed"), and the one after works.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngineOptions, type StoreSpec } from "../../src/engine/index.js";
import { openFaultEngine, type FaultEngine } from "../support/faults.js";
import { compactGraphInEngine } from "../../src/persistence/compaction.js";
import { StorageError } from "../../src/errors.js";
import { assertBuilt, sleep, tempDir, type TempDir } from "./fixtures/crash-harness.js";

const SPIN_CODEC = { module: fileURLToPath(new URL("./fixtures/spin-codec.mjs", import.meta.url)), export: "codec" };
/** "Does it ever settle": far above the watchdog's bound, far below the hang's 60 s. */
const SETTLES_MS = 30_000;

let tmp: TempDir;
beforeAll(() => {
  assertBuilt();
  tmp = tempDir("worker-watchdog");
});
afterAll(() => tmp.remove());

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** The promise's outcome, or "stuck" when it has not settled within SETTLES_MS. */
async function settled(p: Promise<unknown>): Promise<Outcome | "stuck"> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<"stuck">((r) => (timer = setTimeout(() => r("stuck"), SETTLES_MS)));
  const outcome = p.then(
    (value): Outcome => ({ ok: true, value }),
    (error: unknown): Outcome => ({ ok: false, error }),
  );
  try {
    return await Promise.race([outcome, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

function codeOf(o: Outcome | "stuck"): string {
  if (o === "stuck") return "stuck";
  if (o.ok) return "resolved";
  return o.error instanceof StorageError ? o.error.code : `untyped: ${String(o.error)}`;
}

function engineWith(reported: Error[], opts: StorageEngineOptions = {}): FaultEngine {
  return openFaultEngine({
    threads: 1,
    watchdogMs: 1_500,
    closeTimeoutMs: 10_000,
    onError: (err) => reported.push(err),
    ...opts,
  });
}

/**
 * How the death of its worker reached a store with nothing unacknowledged: a flush in flight then rejects, or, when
 * none was, onError hears it (and the next flush resolves through a new actor: nothing was lost).
 */
async function deathHeard(kv: { flush(): Promise<void> }, reported: readonly Error[], store: StoreSpec): Promise<string> {
  const path = (store as { path: string }).path;
  const heard = (): string | undefined =>
    reported
      .filter((e): e is StorageError => e instanceof StorageError && String(e.details.store).includes(path))
      .map((e) => e.code)
      .find((c) => c.startsWith("worker-"));
  for (let i = 0; i < 200; i++) {
    const code = codeOf(await settled(kv.flush()));
    if (code !== "resolved") return code;
    const said = heard();
    if (said !== undefined) return said;
    await sleep(10);
  }
  return "never heard";
}

const sqlite = (name: string): StoreSpec => ({ kind: "sqlite", path: join(tmp.dir, `${name}.db`) });

describe("a hung worker: the watchdog", () => {
  it("the hang fault: flush, a flush of another store on the worker, stats and close settle typed; the stores work again", async () => {
    const reported: Error[] = [];
    const e = engineWith(reported);
    const a = sqlite("hang-a");
    const b = sqlite("hang-b");
    const kvA = e.kv<number>(a, { name: "kv", debounceMs: 60_000 });
    const kvB = e.kv<number>(b, { name: "kv", debounceMs: 60_000 });
    kvA.save("acked", 1);
    kvB.save("acked", 1);
    await Promise.all([kvA.flush(), kvB.flush()]);

    await e.injectFault(a, "hang"); // a 60 s busy loop on the one worker both stores live on
    await sleep(1_000); // the loop has begun (its message is handled at once): B's flush below meets a worker that no longer answers
    kvA.save("lost", 2);
    kvB.save("lost", 2);
    const [flushA, flushB, stats] = await Promise.all([settled(kvA.flush()), settled(kvB.flush()), settled(e.stats())]);
    expect(codeOf(flushA)).toBe("worker-unresponsive");
    expect(codeOf(flushB)).toBe("worker-unresponsive");
    expect(codeOf(stats)).toBe("resolved");
    expect(reported.some((err) => err instanceof StorageError && err.code === "worker-unresponsive")).toBe(true);

    // The same tiers work again (a fresh worker, the stores reopened); acknowledged data is intact.
    kvA.save("after", 3);
    kvB.save("after", 3);
    expect(codeOf(await settled(kvA.flush()))).toBe("resolved");
    expect(codeOf(await settled(kvB.flush()))).toBe("resolved");
    expect(await kvA.load("acked")).toBe(1);
    expect(await kvA.load("after")).toBe(3);
    expect(await kvB.load("acked")).toBe(1);
    expect(codeOf(await settled(e.close()))).toBe("resolved");
  }, 120_000);

  it("a codec that never returns, in a flush and in a job: typed rejections, then the store works again", async () => {
    const reported: Error[] = [];
    const e = engineWith(reported);
    const spec = sqlite("spin");
    const kv = e.kv<string>(spec, { name: "kv", codec: SPIN_CODEC, debounceMs: 60_000 });
    kv.save("ok", "fine");
    await kv.flush();

    kv.save("bad", "spin");
    expect(codeOf(await settled(kv.flush()))).toBe("worker-unresponsive");

    // A job (graph compaction flushes every tier first) meets the same loop.
    kv.save("bad", "spin");
    expect(codeOf(await settled(compactGraphInEngine(e, spec, "g")))).toBe("worker-unresponsive");
    // That write was lost with the worker and no flush had reported it: the tier's next flush does, once.
    expect(codeOf(await settled(kv.flush()))).toBe("worker-crashed");

    kv.save("good", "again");
    expect(codeOf(await settled(kv.flush()))).toBe("resolved");
    expect(await kv.load("ok")).toBe("fine");
    expect(await kv.load("good")).toBe("again");
    expect(await kv.load("bad")).toBeUndefined();
    expect(codeOf(await settled(e.close()))).toBe("resolved");
  }, 120_000);

  it("close() of an engine whose worker hangs settles with worker-unresponsive; the store opens again", async () => {
    const reported: Error[] = [];
    const e = engineWith(reported);
    const spec = sqlite("hang-close");
    const kv = e.kv<number>(spec, { name: "kv", debounceMs: 60_000 });
    kv.save("acked", 1);
    await kv.flush();
    await e.injectFault(spec, "hang");
    kv.save("lost", 2);
    expect(codeOf(await settled(e.close()))).toBe("worker-unresponsive");

    const again = engineWith([]);
    expect(await again.kv<number>(spec, { name: "kv" }).load("acked")).toBe(1);
    await again.close();
  }, 120_000);

  it("close() settles within closeTimeoutMs when the watchdog's bound is far away", async () => {
    // Only close's own bound can end this close (a drain stuck behind a codec that never returns).
    const e = engineWith([], { watchdogMs: 120_000, closeTimeoutMs: 1_000 });
    const spec = sqlite("close-bound");
    const kv = e.kv<string>(spec, { name: "kv", codec: SPIN_CODEC, debounceMs: 60_000 });
    kv.save("ok", "fine");
    await kv.flush();
    kv.save("bad", "spin");
    void kv.flush().catch(() => undefined);
    await sleep(200);
    expect(codeOf(await settled(e.close()))).toBe("close-timeout");
  }, 120_000);
});

describe("watchdog options", () => {
  it("watchdogMs and closeTimeoutMs take a number of milliseconds > 0 or Infinity", async () => {
    for (const bad of [0, -1, Number.NaN, "1000", null]) {
      expect(() => openStorageEngine({ watchdogMs: bad as number })).toThrow(RangeError);
      expect(() => openStorageEngine({ closeTimeoutMs: bad as number })).toThrow(RangeError);
    }
    const e = openStorageEngine({ threads: 1, watchdogMs: Number.POSITIVE_INFINITY, closeTimeoutMs: Number.POSITIVE_INFINITY });
    const kv = e.kv<number>({ kind: "memory", name: "opts" });
    kv.save("k", 1);
    await kv.flush();
    await e.close();
  });
});

describe("worker death and the other stores on it", () => {
  it.for(["exit", "hang"] as const)(
    "%s: another store's tiers keep working; its unacknowledged write fails its next flush with worker-crashed",
    { timeout: 120_000 },
    async (death) => {
      const reported: Error[] = [];
      const e = engineWith(reported);
      const a = sqlite(`death-${death}-a`);
      const b = sqlite(`death-${death}-b`);
      const kvA = e.kv<number>(a, { name: "kv", debounceMs: 60_000 });
      const kvB = e.kv<number>(b, { name: "kv", debounceMs: 60_000 });
      kvA.save("acked", 1);
      kvB.save("acked", 1);
      await Promise.all([kvA.flush(), kvB.flush()]);

      kvB.save("unflushed", 2); // reaches B's actor, never acknowledged
      await sleep(50);
      await e.injectFault(a, death);
      // A learns of the death (exit: worker-crashed, once the worker got to it; hang: the watchdog): through its own
      // flush if one was in flight, else from onError (A had nothing unacknowledged to lose).
      expect(await deathHeard(kvA, reported, a)).toBe(death === "exit" ? "worker-crashed" : "worker-unresponsive");

      // B's tier: its unacknowledged write is reported once, then it works as before.
      const first = await settled(kvB.flush());
      expect(codeOf(first)).toBe("worker-crashed");
      kvB.save("later", 3);
      expect(codeOf(await settled(kvB.flush()))).toBe("resolved");
      expect(await kvB.load("acked")).toBe(1);
      expect(await kvB.load("later")).toBe(3);
      kvA.save("later", 3);
      expect(codeOf(await settled(kvA.flush()))).toBe("resolved");
      expect(await kvA.load("acked")).toBe(1);
      expect(codeOf(await settled(e.close()))).toBe("resolved");
    },
  );
});

describe("a busy worker is not a hung one", () => {
  it("a file store's batch of many files, longer than watchdogMs in one synchronous call, completes: each file written is progress", async () => {
    // Seen in CI under load: a file store's flush of a few thousand keys (temp file, fsync and rename each) blocked
    // the worker's event loop past watchdogMs, and the watchdog terminated a worker that was writing all along.
    // 400 ms: far above what encoding or sending a few thousand small values takes (and than one fsync on a loaded
    // machine: 150 ms failed there), far below 2,500 fsyncs on a disk (~1 ms each here).
    const engine = openStorageEngine({ threads: 1, watchdogMs: 400 });
    try {
      const store: StoreSpec = { kind: "file", dir: join(tmp.dir, "many-files") };
      const kv = engine.kv<number>(store, { name: "many", debounceMs: 3_600_000 });
      await kv.flush(); // the store is open and its worker beating
      const keys = 2_500;
      for (let i = 0; i < keys; i++) kv.save(`k/${i}`, i);
      const outcome = await settled(kv.flush());
      expect(outcome).toEqual({ ok: true, value: undefined });
      expect((await kv.list("k/")).length).toBe(keys);
    } finally {
      await engine.close().catch(() => undefined);
    }
  });

  it("another store on the same worker, waiting meanwhile, is not declared hung either (the progress is the thread's)", async () => {
    const engine = openStorageEngine({ threads: 1, watchdogMs: 400 });
    try {
      const kv = engine.kv<number>({ kind: "file", dir: join(tmp.dir, "many-files-2") }, { name: "many", debounceMs: 3_600_000 });
      const other = engine.kv<number>({ kind: "memory", name: "beside-many-files" }, { name: "other" });
      await Promise.all([kv.flush(), other.flush()]);
      for (let i = 0; i < 2_500; i++) kv.save(`k/${i}`, i);
      const flushed = settled(kv.flush());
      await sleep(20); // the batch is under way on the worker; this load waits behind it
      const loaded = settled(other.load("absent"));
      expect(await flushed).toEqual({ ok: true, value: undefined });
      expect(await loaded).toEqual({ ok: true, value: undefined });
    } finally {
      await engine.close().catch(() => undefined);
    }
  });
});
