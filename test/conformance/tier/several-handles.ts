/** Several handles on one store, in this process and in others (supports.sharedStores, docs/design.md §3.17). */
import { describe, expect, it } from "vitest";
import type { TierHarness } from "../../support/tier-harness.js";
import { kvInChild } from "../../support/tier-child.js";
import type { SuiteContext } from "./context.js";

export function severalHandlesCases({ open, live }: SuiteContext): void {
  describe("one store, several handles (docs/design.md §3.17)", () => {
    const locationOf = (h: TierHarness): { kind: "file" | "sqlite"; path: string } => {
      if (!h.location) throw new Error("suite bug: a shared-store case ran on a harness without a location");
      return h.location;
    };

    it("a second handle in this process reads what the first wrote and writes through the same store", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv" });
      const snap = h.snapshot<{ name: string; v: number }>({ name: "snap" });
      kv.save("k/a", 1);
      snap.save({ name: "g", v: 1 });
      await Promise.all([kv.flush(), snap.flush()]);
      const second = await h.share();
      live.push(second);
      const kv2 = second.kv<number>({ name: "kv" });
      const snap2 = second.snapshot<{ name: string; v: number }>({ name: "snap" });
      expect(await kv2.load("k/a")).toBe(1);
      expect(await snap2.load("g")).toEqual({ name: "g", v: 1 });
      kv2.save("k/b", 2);
      snap2.save({ name: "g", v: 2 });
      await Promise.all([kv2.flush(), snap2.flush()]);
      expect(await kv.load("k/b")).toBe(2);
      expect(await snap.load("g")).toEqual({ name: "g", v: 2 });
      expect(await kv.list("k/")).toEqual(["k/a", "k/b"]);
      // Closing the second handle leaves the store with the first, still writable.
      await second.close();
      kv.save("k/c", 3);
      await kv.flush();
      expect(await kv.list("k/")).toEqual(["k/a", "k/b", "k/c"]);
    });

    it("a read-only handle in another process reads what this one wrote while it writes, and refuses writes", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv" });
      kv.save("a", 1);
      await kv.flush();
      const { kind, path } = locationOf(h);
      const first = await kvInChild(kind, path, "read", "a");
      expect(first).toMatchObject({ opened: true, keys: ["a"], value: 1, write: { code: "read-only" } });
      kv.save("b", 2);
      await kv.flush();
      expect(await kvInChild(kind, path, "read", "b")).toMatchObject({ opened: true, keys: ["a", "b"], value: 2 });
      // This handle still writes after the reader came and went.
      kv.save("c", 3);
      await kv.flush();
      expect(await kv.load("c")).toBe(3);
    });

    it("a second writer process is refused with store-locked naming this process", async () => {
      const h = await open();
      const kv = h.kv<number>({ name: "kv" });
      kv.save("a", 1);
      await kv.flush(); // the store is open (an engine opens it in its actor at the first op)
      const { kind, path } = locationOf(h);
      const report = await kvInChild(kind, path, "write", "a");
      expect(report).toMatchObject({ opened: false, error: { code: "store-locked", details: { pid: process.pid } } });
      kv.save("b", 2);
      await kv.flush();
      expect(await kv.list()).toEqual(["a", "b"]);
    });
  });
}
