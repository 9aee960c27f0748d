// A tier's close over a store no actor could open (its worker lost, the reopen failing: the store moved away) closes
// the tier all the same. Writes the lost actor took unacknowledged, which no flush reported yet, were lost: the
// close must say so, not "droppedWrites: 0" alone, and onError must hear it (review r338 F2).
import { mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import type { StoreSpec } from "../../src/engine/index.js";
import { openFaultEngine } from "../support/faults.js";
import { settledTo } from "../support/settled.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("tier-close-unreached-lost");
afterAll(() => root.remove());

it("a close over a store no actor could open says the lost actor's unacknowledged writes were lost", async () => {
  const dir = root.fresh("store");
  mkdirSync(dir);
  const spec: StoreSpec = { kind: "sqlite", path: join(dir, "s.db") };
  const heard: Error[] = [];
  const engine = openFaultEngine({ threads: 1, onError: (err) => void heard.push(err) });
  try {
    const kv = engine.kv<string>(spec, { name: "t", debounceMs: 60_000, retry: { initialMs: 5, maxMs: 20 } });
    kv.save("first", "stored");
    await kv.flush();
    kv.save("taken", "by the lost actor, never acknowledged");
    await new Promise((r) => setTimeout(r, 50)); // posted to the actor
    renameSync(dir, `${dir}.gone`); // the reopen after the loss fails: the store is not at its path
    await engine.injectFault(spec, "terminate");
    const err = await settledTo(kv.close());
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ details: { tier: "t", tierClosed: true, droppedWrites: 0, lostWrites: true } });
    expect((err as Error).message).toMatch(/were lost with the store's worker/);
    expect(heard).toContain(err);
  } finally {
    await engine.close().catch(() => undefined);
  }
}, 60_000);
