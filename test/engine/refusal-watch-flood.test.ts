/**
 * A store's actor sends the main thread each refusal its tiers make, by key (BaseStorageTier.watchRefusals), ahead
 * of the answer of the flush reporting it. A flood is bounded: per tier and turn, 64 by key, then one of unknown
 * keys (which every watcher hears), so a burst of refused values cannot flood the port.
 * Real parts: a SQLite store, a real worker thread, a module codec refusing values in the worker.
 */
import { afterAll, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import type { Codec } from "../../src/codec/types.js";
import { tempRoot } from "./fixtures/helpers.js";

const MODULE = new URL("./fixtures/refusing-frames.mjs", import.meta.url).href;
const root = tempRoot("refusal-watch-flood");
afterAll(() => root.remove());

it("refusals made in the worker reach watchers by key, bounded per turn, before the flush rejects", async () => {
  const engine = openStorageEngine({ threads: 1, onError: () => {} });
  try {
    const kv = engine.kv<unknown>({ kind: "sqlite", path: root.fresh("flood.db") }, {
      name: "kv",
      debounceMs: 60_000,
      codec: { module: MODULE, export: "codec" } as unknown as Codec<unknown>,
    });
    const heard: Array<string | undefined> = [];
    const other: Array<string | undefined> = [];
    kv.watchRefusals!("k", (key) => heard.push(key));
    kv.watchRefusals!("elsewhere/", (key) => other.push(key));
    for (let i = 0; i < 100; i++) kv.save(`k${i}`, "bad");
    kv.save("good", 1);
    let heardAtSettle = -1;
    await kv.flush().then(
      () => undefined,
      () => void (heardAtSettle = heard.length),
    );
    expect(heardAtSettle).toBe(65);
    expect(heard.slice(0, 64)).toEqual(Array.from({ length: 64 }, (_, i) => `k${i}`));
    expect(heard[64]).toBeUndefined(); // the rest: keys unknown
    expect(other).toEqual([undefined]); // a watcher of another prefix hears only the notice of unknown keys
    expect(await kv.load("good")).toBe(1);
    // The next turn's refusals are heard by key again.
    kv.save("k-late", "bad");
    await kv.flush().catch(() => undefined);
    expect(heard.at(-1)).toBe("k-late");
  } finally {
    await engine.close().catch(() => undefined);
  }
});
