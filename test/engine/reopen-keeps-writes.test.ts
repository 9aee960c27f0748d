/**
 * Writes made while an engine store is moved aside and its worker is lost (terminated here) reach no actor: the
 * reopen that takes them fails (store-moved, may pass) before it took any op. They were reported lost like writes
 * held by a lost worker, so once the store was back attach's loss check found their frame missing and stopped the
 * pair (rebaseline() needed). Now the connection keeps them and sends them again, in order, to the next actor:
 * - the store moves back, a flush resolves only once they are stored (read back right after), the pair goes on
 *   without a rebaseline, and writes made after the move back land after them (order kept);
 * - meanwhile they weigh in the store's backlog: stats() shows them, and past maxPendingBytes a save is refused
 *   (backpressure), so the memory they hold is bounded; every save accepted lands once the store is back.
 */
import { mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import type { StorageBackend } from "../../src/backend/types.js";
import type { StoreSpec } from "../../src/engine/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { openFaultEngine } from "../support/faults.js";
import { FAST_RETRY as RETRY, attachA, enginePair } from "../support/graph-a-pair.js";
import { restoredA } from "../support/restored-a.js";
import { outcome } from "../support/settled.js";
import { ASIDE_CASES as cases, flushedBack, readBack as read } from "../support/store-aside.js";

const root = mkdtempSync(join(tmpdir(), "grf-reopen-keeps-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const codeOf = (e: unknown): string => (e as { code?: string }).code ?? String(e);

const kvValue = (b: StorageBackend, key: string): Promise<unknown> => kvStorage<unknown>(b).load(key);

for (const c of cases) {
  it(`${c.kind}: writes taken by a reopen that failed (store moved aside, worker lost) land once it is back, in order; the pair goes on`, async () => {
    const dir = join(root, `${c.kind}-pair`);
    const spec = c.spec(dir);
    const engine = openFaultEngine({ threads: 1, onError: () => {} });
    const pairErrors: string[] = [];
    const { g, h } = attachA(enginePair(engine, spec, RETRY), { initial: 0, onError: (e) => void pairErrors.push(codeOf(e)) });
    const kv = engine.kv<string>(spec, RETRY);
    try {
      g.set("a", 1);
      kv.save("k", "before");
      await h.flush();
      await kv.flush();
      renameSync(dir, `${dir}.aside`);
      await engine.injectFault(spec, "terminate");
      // Taken by the reopen that fails (store-moved): no actor applies them.
      g.set("a", 3);
      kv.save("k", "away");
      kv.save("only-away", "x");
      expect(await outcome(h.flush())).toBe("rejected backend-error");
      expect(await outcome(kv.flush())).toBe("rejected backend-error");
      // Kept, and weighed as any pending write (backpressure bounds them), across another failed reopen.
      const [away] = await engine.stats();
      expect(away!.pendingBytes).toBeGreaterThan(0);
      renameSync(`${dir}.aside`, dir);
      // After the move back, in order after the kept ones: the store ends with these.
      g.set("a", 4);
      kv.save("k", "after");
      expect(await flushedBack(() => h.flush())).toBe("resolved");
      expect(await outcome(kv.flush())).toBe("resolved");
      // The flushes resolved over stored data: read back now, before anything else is written.
      expect(await read(() => c.open(dir), restoredA)).toBe(4);
      expect(await read(() => c.open(dir), (b) => kvValue(b, "k"))).toBe("after");
      expect(await read(() => c.open(dir), (b) => kvValue(b, "only-away"))).toBe("x");
      // Nothing was reported lost: the pair was not stopped and needs no rebaseline.
      expect(pairErrors).not.toContain("write-refused");
      g.set("a", 5);
      expect(await outcome(h.flush())).toBe("resolved");
    } finally {
      await h.dispose().catch(() => {});
      await engine.close().catch(() => {});
    }
    expect(await read(() => c.open(dir), restoredA)).toBe(5);
  }, 60_000);
}

it("writes kept while the store is away weigh in its backlog: past maxPendingBytes a save is refused, and every accepted one lands", async () => {
  const dir = join(root, "bounded");
  const spec: StoreSpec = { kind: "file", dir };
  const maxPendingBytes = 8 * 1024;
  const engine = openFaultEngine({ threads: 1, maxPendingBytes, onError: () => {} });
  const kv = engine.kv<string>(spec, RETRY);
  const value = "v".repeat(1000);
  const accepted: string[] = [];
  try {
    kv.save("first", value);
    await kv.flush();
    renameSync(dir, `${dir}.aside`);
    await engine.injectFault(spec, "terminate");
    for (const k of ["k0", "k1"]) {
      kv.save(k, value);
      accepted.push(k);
    }
    // The reopen fails (store-moved) and keeps what it took, weighed: before, the backlog forgot them (0 pending).
    expect(await outcome(kv.flush())).toBe("rejected backend-error");
    const [kept] = await engine.stats();
    expect(kept!.pendingBytes).toBeGreaterThanOrEqual(2 * value.length);
    // The next saves go to another reopen, beside the kept ones: the bound counts both.
    let refused: string | undefined;
    for (let i = 2; i < 100 && refused === undefined; i++) {
      try {
        kv.save(`k${i}`, value);
        accepted.push(`k${i}`);
      } catch (err) {
        refused = codeOf(err);
      }
    }
    expect(refused).toBe("backpressure");
    expect(accepted.length * value.length).toBeLessThanOrEqual(maxPendingBytes);
    const [held] = await engine.stats();
    expect(held!.pendingBytes).toBeGreaterThan(maxPendingBytes / 2);
    expect(held!.pendingBytes).toBeLessThanOrEqual(maxPendingBytes);
    renameSync(`${dir}.aside`, dir);
    expect(await flushedBack(() => kv.flush())).toBe("resolved");
    const stored = await read(
      () => fileBackend(dir, { readOnly: true }),
      (b) => Promise.all(accepted.map((k) => kvValue(b, k))),
    );
    expect(stored).toEqual(accepted.map(() => value));
  } finally {
    await engine.close().catch(() => {});
  }
}, 60_000);
