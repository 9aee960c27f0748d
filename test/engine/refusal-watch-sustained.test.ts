/**
 * A sustained flood of refusals in the worker, flush after flush: every flush's refusals are heard (at most 64 by key
 * and one of unknown keys per message), never none. The per-turn bound was reset on a timer, so a message taken in
 * the same turn as an earlier one had its refusals silenced (review): a graph sharing the tier could acknowledge its
 * refused frame. Real parts: SQLite, a real worker thread, a module codec refusing in the worker.
 */
import { afterAll, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import type { Codec } from "../../src/codec/types.js";
import { tempRoot } from "./fixtures/helpers.js";

const MODULE = new URL("./fixtures/refusing-frames.mjs", import.meta.url).href;
const root = tempRoot("refusal-watch-sustained");
afterAll(() => root.remove());

it("sustained flood: each flush's refusals heard at most 64 by key + 1 keyless; late watcher hears only later ones", async () => {
  const engine = openStorageEngine({ threads: 1, onError: () => {} });
  try {
    const kv = engine.kv<unknown>({ kind: "sqlite", path: root.fresh("s.db") }, {
      name: "kv", debounceMs: 60_000, codec: { module: MODULE, export: "codec" } as unknown as Codec<unknown>,
    });
    const perRound: number[] = [];
    let heard = 0;
    kv.watchRefusals!("", () => void heard++);
    for (let round = 0; round < 30; round++) {
      const before = heard;
      for (let i = 0; i < 1000; i++) kv.save(`r${round}/k${i}`, "bad");
      kv.save(`good${round}`, round);
      await kv.flush().catch(() => undefined);
      perRound.push(heard - before);
    }
    expect(Math.max(...perRound)).toBeLessThanOrEqual(65 * 2);
    expect(perRound.every((n) => n > 0)).toBe(true); // every round refused 1000 values: its watchers must hear
    let late = 0;
    kv.watchRefusals!("", () => void late++);
    await kv.flush(); // nothing new refused: resolves, late hears nothing
    expect(late).toBe(0);
    expect(await kv.load("good29")).toBe(29);
  } finally {
    await engine.close().catch(() => undefined);
  }
});
