/**
 * The store actor answers a snapshot tier's loadHead (a `load` op with head: true) from a prefix of the stored
 * baseline where its backend reads prefixes: a 1 MB baseline is not read whole for its name and seq. The backend is
 * the real SQLite one; its methods are spied on, not replaced.
 */
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { StoreActor } from "../../src/engine/actor.js";
import { ActorCounters } from "../../src/engine/actor-counters.js";
import type { TierSpec } from "../../src/engine/protocol.js";
import { HEAD_PREFIX_BYTES } from "../../src/tier/snapshot.js";
import { tempRoot } from "./fixtures/helpers.js";
import { sqliteStoreWithRows } from "../support/foreign-rows.js";

const root = tempRoot("actor-head-prefix");
afterAll(() => root.remove());

describe("loadHead in the store actor", () => {
  let actor: StoreActor | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await actor?.shutdown();
    actor = undefined;
  });

  it("reads the baseline's first bytes, not the whole baseline", async () => {
    const nodes = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`n${i}`, { v: i, s: "x".repeat(20) }]));
    const baseline = Buffer.from(JSON.stringify({ name: "g", seq: 41, snapshot: { nodes }, timestamp_ns: 1 }));
    expect(baseline.byteLength).toBeGreaterThan(500_000);
    const path = sqliteStoreWithRows(root.fresh("s.db"), [["g", baseline]]);
    actor = new StoreActor({ store: { kind: "sqlite", path }, synchronous: "FULL", counters: new ActorCounters().buffer });
    await actor.ready();
    const spec: TierSpec = { kind: "snapshot", name: "g", debounceMs: undefined, compactEvery: undefined, codec: { kind: "builtin", name: "json" } };
    expect((await actor.apply([{ t: "open", tier: 1, spec, id: 1 }])).results.every((r) => r.ok)).toBe(true);
    const probe = sqliteBackend(root.fresh("probe.db"));
    const proto = Object.getPrototypeOf(probe) as { read: () => unknown; readPrefix: () => unknown };
    probe.close();
    const read = vi.spyOn(proto, "read");
    const readPrefix = vi.spyOn(proto, "readPrefix");
    const { results } = await actor.apply([{ t: "load", tier: 1, id: 2, key: "g", head: true }]);
    expect(results[0]).toMatchObject({ id: 2, ok: true, value: { name: "g", seq: 41 } });
    expect(readPrefix).toHaveBeenCalledTimes(1);
    expect((readPrefix.mock.results[0]?.value as Uint8Array).byteLength).toBe(HEAD_PREFIX_BYTES);
    expect(read).not.toHaveBeenCalled();
  });
});
