/**
 * An engine store's stats().failing counts tiers whose flushes fail now. A tier failing when its worker died was
 * never taken off the count (the new actor's tiers start healthy and only their own transitions move the shared
 * counter), so after the store recovered stats still reported it failing (review). A new actor starts the gauge at 0.
 */
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import type { StoreSpec } from "../../src/engine/protocol.js";
import { openFaultEngine } from "../support/faults.js";
import { describeWithTmpfs, tmpfsRoot } from "../support/tmpfs.js";
import { until } from "../support/wait.js";

const disks = tmpfsRoot("stats-failing");
afterAll(() => disks.remove());

describeWithTmpfs(import.meta.url, "stats().failing after a worker crash", () => {
  it("is 0 once the store's flushes succeed again", async () => {
    const disk = disks.mount("full", 512);
    const engine = openFaultEngine({ threads: 1, onError: () => undefined });
    try {
      const spec: StoreSpec = { kind: "sqlite", path: join(disk.dir, "s.db") };
      const kv = engine.kv<string>(spec, { name: "kv" });
      kv.save("a", "x");
      await kv.flush();
      disk.fill();
      kv.save("b", "y".repeat(64 * 1024));
      await expect(kv.flush()).rejects.toMatchObject({ code: "backend-error" });
      const failing = async () => (await engine.stats()).find((s) => s.store === spec || (s.store as { path?: string }).path === spec.path)!.failing;
      expect(await failing()).toBe(1);
      await engine.injectFault(spec, "throw");
      await until(async () => !(await engine.stats())[0]!.alive, "the worker died", { timeoutMs: 20_000 });
      disk.free();
      kv.save("c", "z");
      await kv.flush().catch(() => undefined); // the lost writes are reported once
      kv.save("d", "w");
      await kv.flush();
      expect(await kv.load("d")).toBe("w");
      expect(await failing()).toBe(0);
    } finally {
      await engine.close().catch(() => undefined);
    }
  });
});
