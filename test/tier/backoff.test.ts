/**
 * Issue 11 item 3: a full disk while saves continue. Automatic retries of the failed flush back off (they do not
 * run once per save), onError hears the fault once per failing spell and onRecovered once when it ends, an
 * explicit flush() still tries at once, and every accepted value lands once space is freed. Real tmpfs, real
 * ENOSPC; inline and through the engine.
 */
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { afterAll, expect, it, vi } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { describeWithTmpfs, tmpfsRoot } from "../support/tmpfs.js";

const disks = tmpfsRoot("backoff");
afterAll(() => disks.remove());

const SAVES = 1000;
const RETRY = { initialMs: 20, maxMs: 200 };
const value = (i: number): { i: number; pad: string } => ({ i, pad: "x".repeat(200) });

/** The backend with its write calls counted (each failed flush attempt makes at least one). */
function counting<B extends object>(backend: B): { backend: B; calls: () => number } {
  let n = 0;
  const wrapped = new Proxy(backend, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      if (prop === "write" || prop === "writeBatch") {
        return (...args: unknown[]) => {
          n++;
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return { backend: wrapped, calls: () => n };
}

describeWithTmpfs(import.meta.url, "retry with backoff on a full disk", () => {
  it("inline: one onError per failing spell, retries back off while saves continue, flush() tries at once, all lands after space is freed", async () => {
    const disk = disks.mount("inline", 16 * 1024);
    const { backend, calls } = counting(fileBackend(join(disk.dir, "store")));
    const errors: Error[] = [];
    let recovered = 0;
    const kv = kvStorage<{ i: number; pad: string }>(backend, {
      onError: (e) => errors.push(e),
      onRecovered: () => recovered++,
      retry: RETRY,
    });
    kv.save("first", value(-1));
    await kv.flush();
    disk.fill();
    const before = calls();
    for (let i = 0; i < SAVES; i++) {
      kv.save(`k${i}`, value(i));
      await nextTurn();
    }
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(StorageError);
    expect((errors[0] as StorageError).details.osCode).toBe("ENOSPC");
    const attempts = calls() - before;
    expect(attempts).toBeGreaterThan(0);
    expect(attempts).toBeLessThan(SAVES / 10); // one per save before: 1,000 attempts and 1,000 onError calls

    // An explicit flush does not wait for the backoff: it tries now and rejects with the cause.
    const beforeFlush = calls();
    await expect(kv.flush()).rejects.toMatchObject({ code: "backend-error" });
    expect(calls()).toBeGreaterThan(beforeFlush);
    expect(errors).toHaveLength(1);
    expect(recovered).toBe(0);

    disk.free();
    await kv.flush();
    expect(recovered).toBe(1);
    expect(errors).toHaveLength(1);
    expect(await kv.list("k")).toHaveLength(SAVES);
    expect(await kv.load(`k${SAVES - 1}`)).toEqual(value(SAVES - 1));
    await kv.close();
  });

  it("engine: one onError per failing spell, flush attempts counted in stats grow slowly, failing/recovered, all lands", async () => {
    const disk = disks.mount("engine", 16 * 1024);
    const errors: Error[] = [];
    const recovered: unknown[] = [];
    const engine = openStorageEngine({
      threads: 1,
      onError: (e) => errors.push(e),
      onRecovered: (ctx) => recovered.push(ctx),
    });
    try {
      const store = { kind: "file" as const, dir: join(disk.dir, "store") };
      const kv = engine.kv<{ i: number; pad: string }>(store, { name: "kv", retry: RETRY });
      kv.save("first", value(-1));
      await kv.flush();
      disk.fill();
      const [start] = await engine.stats();
      for (let i = 0; i < SAVES; i++) {
        kv.save(`k${i}`, value(i));
        await nextTurn();
      }
      await vi.waitFor(() => expect(errors).toHaveLength(1), { timeout: 30_000 });
      const [during] = await engine.stats();
      expect(during?.failing).toBe(1);
      const attempts = (during?.flushAttempts ?? 0) - (start?.flushAttempts ?? 0);
      expect(attempts).toBeGreaterThan(0);
      expect(attempts).toBeLessThan(SAVES / 10);
      expect(during?.failedFlushes).toBe(attempts);

      await expect(kv.flush()).rejects.toMatchObject({ code: "backend-error" });
      const [afterFlush] = await engine.stats();
      expect(afterFlush?.flushAttempts).toBeGreaterThan(during?.flushAttempts ?? 0);

      disk.free();
      await kv.flush();
      await vi.waitFor(() => expect(recovered).toHaveLength(1), { timeout: 30_000 });
      expect(recovered[0]).toMatchObject({ store: { kind: "file" }, tier: "kv" });
      const [after] = await engine.stats();
      expect(after?.failing).toBe(0);
      expect(after?.pendingEntries).toBe(0);
      expect(errors).toHaveLength(1);
      expect(await kv.list("k")).toHaveLength(SAVES);
      expect(await kv.load(`k${SAVES - 1}`)).toEqual(value(SAVES - 1));
    } finally {
      await engine.close();
    }
  });
});
