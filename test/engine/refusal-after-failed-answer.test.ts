/**
 * A refusal the store's actor posts after an answer carrying a failure is told after that answer (task 321). The
 * connection settles such an answer at the end of the turn (so the "error" event of a store's end, on another port,
 * is read first: final-error-first-answer), but a refusal message that came behind it on the same port was told at
 * once: its watchers heard it before the earlier failure settled, against the actor's order. Here a load that fails
 * (the worker codec cannot decode the record) is answered, then a save of the next message is refused (the codec
 * cannot encode it), both read by this thread in one turn (it is blocked while the worker posts them); or the load's
 * answer heard before the save is made (as they come: a baseline of the order, deterministic, passes before too;
 * saving while the load is answered read them in one turn or not as the machine's timing fell, task 334).
 * Real parts: a SQLite store, the engine's worker thread, a module codec run in it.
 */
import { afterAll, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { tempRoot, waitFor } from "./fixtures/helpers.js";

const MODULE = new URL("./fixtures/undecodable-refusing-codec.mjs", import.meta.url).href;
const root = tempRoot("refusal-after-failed-answer");
afterAll(() => root.remove());

/** Blocks this thread for `ms` (no message is read meanwhile: the worker's wait in their port). */
const blockThread = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

it.each(["answers and refusal read in one turn", "as they come"] as const)("a refusal posted after a failed answer is told after it (%s)", async (mode) => {
  const spec: StoreSpec = { kind: "sqlite", path: `${root.fresh("store")}.db` };
  const engine = openStorageEngine({ threads: 1, onError: () => undefined });
  try {
    const kv = engine.kv<string>(spec, { name: "t", codec: { module: MODULE, export: "codec" }, debounceMs: 0 });
    kv.save("u", "undecodable");
    await kv.flush();
    const order: string[] = [];
    const unwatch = kv.watchRefusals!("", (key) => void order.push(`refused ${key}`));
    const loaded = kv.load("u").then(
      () => void order.push("load resolved"),
      () => void order.push("load failed"),
    );
    await new Promise((resolve) => setImmediate(resolve)); // the load is posted (its send ran first)
    if (mode === "as they come") await loaded; // the answer is read before the save is made: never one turn
    // One turn: the worker decodes for 300 ms before it answers, this save's message is posted meanwhile, and the actor takes
    // it only after the load's answer is posted.
    kv.save("k", "bad");
    await new Promise((resolve) => setImmediate(resolve));
    if (mode === "answers and refusal read in one turn") blockThread(1_500);
    await loaded;
    await waitFor(() => order.length >= 2);
    expect(order).toEqual(["load failed", "refused k"]);
    unwatch();
    await kv.flush().catch(() => undefined); // reports the refusal
    await kv.close();
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 30_000);
