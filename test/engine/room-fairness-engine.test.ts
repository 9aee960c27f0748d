/**
 * Engine stores share inline tiers' first-come-first-served room (src/tier/room.ts via backlog.ts, docs/design.md
 * §3.19). Before, a save heavier than half the bound starved under a steady stream of small saves to the same store:
 * each small one fit beside what was pending, so pending never fell far enough for the big one. Real SQLite store;
 * the chatty tier's codec sleeps 2 ms per value in the store's worker (a slow disk); the
 * large tier keeps the built-in JSON codec, so its save is weighed by its measured size. Outcomes are asserted, never time.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { backpressureOf } from "../support/save-until-refused.js";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("room-fairness-engine");
afterAll(() => root.remove());
const SLEEPY = pathToFileURL(join(REPO_ROOT, "test/engine/fixtures/sleepy-codec.mjs")).href;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("engine: room is first come, first served", () => {
  it("a 100 KiB save gets in under a steady stream of 200 B saves to another tier of the store (it starved before)", async () => {
    const engine = openStorageEngine({ maxPendingBytes: 64 * 1024 });
    try {
      const codec = { module: SLEEPY, export: "sleepyJson" };
      const path = root.fresh("store.db");
      const chatty = engine.kv<string>({ kind: "sqlite", path }, { name: "chatty", codec, debounceMs: 0 });
      const large = engine.kv<string>({ kind: "sqlite", path }, { name: "large", debounceMs: 0 });
      await Promise.all([chatty.flush(), large.flush()]);
      let stop = false;
      let smallTaken = 0;
      const small = (async () => {
        for (let i = 0; i < 4000 && !stop; i++) {
          for (let j = 0; j < 3; j++) if (backpressureOf(() => chatty.save(`s${i}-${j}`, "x".repeat(200))) === undefined) smallTaken++;
          await sleep(1);
        }
        stop = true;
      })();
      await sleep(50); // the stream runs: something is always pending
      const big = "y".repeat(100 * 1024);
      let taken = false;
      let tries = 0;
      while (!stop && !taken) {
        tries++;
        const err = backpressureOf(() => large.save("big", big));
        if (err === undefined) taken = true;
        else await Promise.race([large.drained?.(err.details?.weight as number), small]);
      }
      stop = true;
      await small;
      expect(taken).toBe(true);
      expect(tries).toBeLessThanOrEqual(3);
      expect(smallTaken).toBeGreaterThan(0);
      await large.flush();
      expect(await large.load("big")).toBe(big);
    } finally {
      await engine.close();
    }
  }, 30_000);
});
