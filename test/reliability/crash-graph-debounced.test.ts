/**
 * kill -9 of a graph writer whose snapshot tier is debounced (60 s) beside a WAL flushed per save, with a
 * baseline every 5 persisted waves: the WAL runs ahead of the baselines, so most kills leave baselines that never
 * landed. After every kill `verify` must say what restore does, restore must succeed, and acknowledged writes must
 * survive (fixtures/graph-crash-suite.ts lists every check). CRASH_CYCLES cycles in all (default 60, half per
 * backend).
 */
import { afterAll, beforeAll, describe, it } from "vitest";
import { assertBuilt, envCount, killAllChildren } from "./fixtures/crash-harness.js";
import { runGraphCrashCycles, type Kind } from "./fixtures/graph-crash-suite.js";

const PER_BACKEND = Math.ceil(envCount("CRASH_CYCLES", 60) / 2);
/** A safety net for a hung child, never the thing asserted. */
const TIMEOUT = 60_000 + PER_BACKEND * 10_000;

beforeAll(() => assertBuilt());
afterAll(() => killAllChildren());

describe("kill -9 during graph writes with a debounced snapshot tier (engine + attach)", () => {
  const title = `%s: ${PER_BACKEND} cycles; verify agrees with restore, restores are exact, acknowledged writes survive`;
  it.concurrent.for<Kind>(["sqlite", "file"])(title, { timeout: TIMEOUT }, async (kind, { expect }) => {
    const tally = await runGraphCrashCycles(kind, PER_BACKEND, expect, { compactEvery: 5, snapshotDebounceMs: 60_000 });
    console.log(`[crash-graph-debounced ${kind}] ${PER_BACKEND} cycles:`, JSON.stringify(tally));
    expect(tally.verifiedStores).toBeGreaterThan(0);
  });
});
