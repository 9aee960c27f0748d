/**
 * A tier's close over a store that stays gone (task 321): the store's SQLite directory moved away for good after its
 * worker was lost, so every reopen fails (store-moved) and the writes saved meanwhile are kept for a reopen that never
 * succeeds. The tier's close is answered by an actor that could not open the store: it rejected with why, but the
 * tier stayed open and the store stayed in the engine (its record, its kept writes, its revivals at the backoff)
 * until engine.close(). Now the close closes the tier here (its unstored writes said by the rejection), and with the
 * store's last tier closed the store is released: the engine's stats no longer list it, nothing revives it, and a
 * tier opened later on the same path (the directory moved back) opens it in a fresh actor.
 * Real parts: a SQLite store in a temp directory, engine worker threads (the fault worker's "terminate" ends the
 * store's thread from this one).
 */
import { afterAll, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { settledTo } from "../support/settled.js";
import { tempRoot } from "./fixtures/helpers.js";
import { QUICK_RETRY, STORE_MOVED, storeToLose } from "./fixtures/store-to-lose.js";

const root = tempRoot("tier-close-store-gone");
afterAll(() => root.remove());

it("the last tier's close over a store gone for good closes the tier and releases the store", async () => {
  const { spec, engine, heard, lose, back } = storeToLose(root);
  try {
    const kv = engine.kv<string>(spec, { name: "t", retry: QUICK_RETRY });
    kv.save("first", "stored");
    await kv.flush();
    await lose();
    kv.save("kept", "never stored");
    expect(await settledTo(kv.flush())).toMatchObject(STORE_MOVED); // the reopen failed; the write is kept
    expect((await engine.stats()).filter((s) => s.store.kind === "sqlite")).toHaveLength(1);
    // The close: one more reopen, which fails alike; the close says so, and the tier is closed.
    expect(await settledTo(kv.close())).toMatchObject(STORE_MOVED);
    expect(() => kv.save("after", "x")).toThrow(StorageError);
    expect(await settledTo(kv.flush())).toMatchObject({ code: "closed" });
    // Released: the engine holds the store no more (before: listed, its kept write weighed, until engine.close()).
    expect((await engine.stats()).filter((s) => s.store.kind === "sqlite")).toEqual([]);
    // Nothing revives it: a while later no further open was attempted (each failed one is told, at most every 10 s,
    // and a revival's would be a new failure after the told one's time).
    const told = heard.length;
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(heard.length).toBe(told);
    // Back at its place, a new tier opens the store in a fresh actor: what was stored is there, the dropped write not.
    back();
    const again = engine.kv<string>(spec, { name: "t" });
    expect(await again.load("first")).toBe("stored");
    expect(await again.load("kept")).toBeUndefined();
    again.save("later", "stored too");
    await again.flush();
    expect(await again.load("later")).toBe("stored too");
    const [stats] = (await engine.stats()).filter((s) => s.store.kind === "sqlite");
    expect(stats).toMatchObject({ alive: true, pendingEntries: 0 });
    await again.close();
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 60_000);

it("a tier's close over a store gone for good while another tier stays open: that tier alone closes, the store stays", async () => {
  const { spec, engine, lose, back } = storeToLose(root, "store-two");
  try {
    const a = engine.kv<string>(spec, { name: "a", retry: QUICK_RETRY });
    const b = engine.kv<string>(spec, { name: "b", retry: QUICK_RETRY });
    a.save("k", "1");
    b.save("k", "1");
    await Promise.all([a.flush(), b.flush()]);
    await lose();
    a.save("k", "2");
    b.save("k", "2");
    expect(await settledTo(a.close())).toMatchObject(STORE_MOVED);
    expect(() => a.save("k", "3")).toThrow(StorageError);
    // The store stays for b, whose write is still kept (weighed once: a's kept write went with a's close).
    const [stats] = (await engine.stats()).filter((s) => s.store.kind === "sqlite");
    expect(stats).toMatchObject({ pendingEntries: 1 });
    back();
    await b.flush(); // the store is back: b's kept write lands
    expect(await b.load("k")).toBe("2");
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 60_000);
