// A tier's close over a store no actor could open (its worker lost, the reopen failing: the store moved away) closes
// the tier all the same. Writes the lost actor took unacknowledged, which no flush reported yet, were lost: the
// close must say so, not "droppedWrites: 0" alone, and onError must hear it (review r338 F2).
import { afterAll, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { settledTo } from "../support/settled.js";
import { tempRoot } from "./fixtures/helpers.js";
import { QUICK_RETRY, storeToLose } from "./fixtures/store-to-lose.js";

const root = tempRoot("tier-close-unreached-lost");
afterAll(() => root.remove());

it("a close over a store no actor could open says the lost actor's unacknowledged writes were lost", async () => {
  const { spec, engine, heard, lose } = storeToLose(root);
  try {
    const kv = engine.kv<string>(spec, { name: "t", debounceMs: 60_000, retry: QUICK_RETRY });
    kv.save("first", "stored");
    await kv.flush();
    kv.save("taken", "by the lost actor, never acknowledged");
    await new Promise((r) => setTimeout(r, 50)); // posted to the actor
    await lose(); // the reopen after the loss fails: the store is not at its path
    const err = await settledTo(kv.close());
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ details: { tier: "t", tierClosed: true, droppedWrites: 0, lostWrites: true } });
    expect((err as Error).message).toMatch(/were lost with the store's worker/);
    expect(heard).toContain(err);
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 60_000);
