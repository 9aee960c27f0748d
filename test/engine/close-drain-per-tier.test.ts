/**
 * A tier's flush or close called while engine.close() drains its store joins the drain, and settles with the tier's
 * OWN outcome. It settled with the store's first failure, so a tier whose writes were all stored rejected with
 * another tier's refusal (review), and a caller retrying would write again what was stored.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { tempRoot, turn } from "./fixtures/helpers.js";
import { outcome } from "../support/refusals.js";

const root = tempRoot("close-drain-per-tier");
afterAll(() => root.remove());
const engines: StorageEngine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close().catch(() => undefined);
});


describe("joining engine.close()'s drain", () => {
  it("a tier whose writes were stored resolves; the tier with a refused value rejects with its refusal", async () => {
    const e = openStorageEngine({ threads: 1, onError: () => undefined });
    engines.push(e);
    const store: StoreSpec = { kind: "sqlite", path: root.fresh("s.db") };
    const a = e.kv<unknown>(store, { name: "a", debounceMs: 60_000 });
    const b = e.kv<unknown>(store, { name: "b", debounceMs: 60_000 });
    const log = e.appendLog<unknown>(store, { name: "log", debounceMs: 60_000 });
    a.save("x", 1);
    log.appendEntries([1]);
    b.save("y", { n: Number.NaN }); // refused: b's next flush or close rejects
    await turn();
    const closing = e.close();
    const joined = await Promise.all([outcome(a.flush()), outcome(b.flush()), outcome(log.close())]);
    expect(joined).toEqual(["resolved", "rejected encode-failed", "resolved"]);
    expect(await outcome(closing)).toBe("rejected encode-failed");
    const check = openStorageEngine({ threads: 1 });
    engines.push(check);
    expect(await check.kv<unknown>(store, { name: "a" }).load("x")).toBe(1);
    expect((await check.appendLog<unknown>(store, { name: "log" }).loadEntries()).entries).toEqual([1]);
  });
});
