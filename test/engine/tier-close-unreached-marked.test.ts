/**
 * A tier's close answered by an actor that could not open the store (its directory moved away after the worker was
 * lost) closes the tier for good and drops the writes kept for it (task 321). Its rejection was the open's failure
 * as it was: a caller could not tell it from a close that failed with the tier kept open, and onError heard nothing
 * of the dropped writes (review r329 F4, task 334). Now the rejection says the tier is closed (details.tierClosed)
 * and how many writes it dropped (details.droppedWrites), and onError hears it when it dropped any.
 * Real parts: a SQLite store in a temp directory, engine worker threads (the fault worker's "terminate").
 */
import { afterAll, expect, it } from "vitest";
import { settledTo } from "../support/settled.js";
import { tempRoot } from "./fixtures/helpers.js";
import { QUICK_RETRY, storeToLose } from "./fixtures/store-to-lose.js";

const root = tempRoot("tier-close-unreached-marked");
afterAll(() => root.remove());

it("a close over a store no actor could open says the tier is closed and the writes it dropped, and onError hears it", async () => {
  const { spec, engine, heard, lose } = storeToLose(root);
  try {
    const kv = engine.kv<string>(spec, { name: "t", retry: QUICK_RETRY });
    kv.save("first", "stored");
    await kv.flush();
    await lose();
    kv.save("kept", "never stored");
    kv.save("kept too", "never stored");
    expect(await settledTo(kv.flush())).toMatchObject({ details: { reason: "store-moved" } }); // kept for a reopen
    const err = (await settledTo(kv.close())) as Error;
    expect(err).toMatchObject({
      code: "backend-error",
      details: { reason: "store-moved", tier: "t", tierClosed: true, droppedWrites: 2 },
    });
    expect(err.message).toMatch(/storage tier "t" is closed all the same, dropping 2 writes no actor stored/);
    expect(heard).toContain(err);
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 60_000);
