/**
 * flush() calls posted after writes count against the store's bound while unanswered (docs/design.md §3.19, "Flush
 * calls"). Write-less calls join one queued flush per tier (flush-join); a call after a write is posted, and each
 * cost ~1.5 KB of main-thread heap (its waiter, op and promises) and a place in the actor's chain until answered,
 * uncounted: a writer pairing each save with a flush against a locked SQLite file held 50,000 of them under a
 * 4 MiB bound (+76 MB heap, +256 MB RSS). Now each weighs FLUSH_CALL_WEIGHT until answered, so the bound holds the
 * flushes too. Real worker thread, real SQLite file, a real second process holding its write lock.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { FLUSH_CALL_WEIGHT } from "../../src/tier/weights.js";
import { tempRoot } from "./fixtures/helpers.js";

const LOCKER = fileURLToPath(new URL("./fixtures/sqlite-locker.mjs", import.meta.url));
const root = tempRoot("flush-call-weight");
afterAll(() => root.remove());
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** Another process holding the SQLite file's write lock until `release()`. */
async function lockFile(path: string): Promise<{ release(): Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, [LOCKER, path], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  const said = (word: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const look = (): void => {
        if (!out.includes(word)) return;
        child.stdout!.off("data", onData);
        resolve();
      };
      const onData = (d: Buffer): void => {
        out += d.toString();
        look();
      };
      child.stdout!.on("data", onData);
      child.once("exit", (code) => reject(new Error(`locker exited (${code}) before saying ${word}`)));
      look();
    });
  await said("locked");
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    const unlocked = said("unlocked");
    child.stdin!.end();
    await unlocked;
    if (child.exitCode === null) await once(child, "exit");
  };
  cleanups.push(release);
  return { release };
}

it("save + flush pairs against a locked store: unanswered flushes are counted, and stay within the bound", async () => {
  const max = 64 * 1024;
  const engine = openStorageEngine({ threads: 1, maxPendingBytes: max, onError: () => undefined });
  cleanups.push(() => engine.close());
  const path = root.fresh("s.db");
  const kv = engine.kv<number>({ kind: "sqlite", path }, { name: "kv", debounceMs: 60_000 });
  kv.save("warm", 0);
  await kv.flush();
  const lock = await lockFile(path);

  // A server whose handlers each save and flush, not pacing on drained(): turns of 50 pairs until one is refused.
  let unanswered = 0;
  const calls: Array<Promise<void>> = [];
  const accepted: string[] = [];
  let refusal: StorageError | undefined;
  for (let i = 0; refusal === undefined; ) {
    for (let j = 0; j < 50; j++, i++) {
      try {
        kv.save(`k${i}`, i);
      } catch (err) {
        refusal = err as StorageError;
        break;
      }
      accepted.push(`k${i}`);
      unanswered++;
      const call = kv.flush();
      calls.push(call);
      call.then(
        () => unanswered--,
        () => unanswered--,
      );
    }
    if (refusal === undefined) await new Promise((r) => setImmediate(r));
  }
  expect(refusal).toBeInstanceOf(StorageError);
  expect(refusal.code).toBe("backpressure");
  const pending = refusal.details.pendingBytes as number;
  // The flushes waiting for an answer are in what the store counts, which stays within the bound (one flush's weight
  // over it at most: a flush is never refused). Before: ~800 flushes unanswered, ~1.6 MB beyond a 64 KiB count.
  expect(unanswered).toBeGreaterThan(0);
  expect(unanswered * FLUSH_CALL_WEIGHT).toBeLessThanOrEqual(pending);
  expect(pending).toBeLessThanOrEqual(max + FLUSH_CALL_WEIGHT);

  // Nothing accepted is lost: once the lock is gone a flush stores every value.
  await lock.release();
  await Promise.allSettled(calls);
  for (let tries = 0; ; tries++) {
    const stored = await kv.flush().then(
      () => true,
      (err: unknown) => {
        // The lock's end may meet an attempt (store-busy, transient): flush again until stored.
        if (tries > 50 || (err as StorageError).code !== "store-busy") throw err;
        return false;
      },
    );
    if (stored) break;
  }
  expect(unanswered).toBe(0);
  const [stats] = await engine.stats();
  expect(stats!.pendingBytes).toBe(0);
  const values = await Promise.all(accepted.map((k) => kv.load(k)));
  expect(accepted.filter((k, i) => values[i] !== Number(k.slice(1)))).toEqual([]);
});
