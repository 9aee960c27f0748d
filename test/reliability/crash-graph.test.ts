/**
 * kill -9 of a graph writer (engine + attachSnapshotStorage) on SQLite and on the file backend, CRASH_CYCLES
 * cycles in all (default 100, half per backend; the two backends run concurrently). What each crash must satisfy
 * is listed in fixtures/graph-crash-suite.ts. 50 cycles a backend still meet each kind of cycle many times (a CI
 * run of 100 on SQLite counted 12 early kills, 16 compactions, 18 planted torn tails, each detected): the test
 * checks each kind happened; a soak sets CRASH_CYCLES higher.
 */
import { afterAll, beforeAll, describe, it } from "vitest";
import { assertBuilt, envCount, killAllChildren } from "./fixtures/crash-harness.js";
import { runGraphCrashCycles, type Kind } from "./fixtures/graph-crash-suite.js";

const PER_BACKEND = Math.ceil(envCount("CRASH_CYCLES", 100) / 2);
/** A safety net for a hung child, never the thing asserted. */
const TIMEOUT = 60_000 + PER_BACKEND * 5_000;

beforeAll(() => assertBuilt());
afterAll(() => killAllChildren());

describe("kill -9 during graph writes (engine + attach)", () => {
  const title = `%s: ${PER_BACKEND} cycles; acknowledged writes survive, restores are exact, torn tails are counted`;
  it.concurrent.for<Kind>(["sqlite", "file"])(title, { timeout: TIMEOUT }, async (kind, { expect }) => {
    const tally = await runGraphCrashCycles(kind, PER_BACKEND, expect);
    console.log(`[crash-graph ${kind}] ${PER_BACKEND} cycles:`, JSON.stringify(tally));
    // Fewer cycles must not mean a kind of crash left out: kills before the first acknowledgement, restores after a
    // compaction in the killed child, torn tails planted and skipped.
    expect(tally.earlyKills, JSON.stringify(tally)).toBeGreaterThan(0);
    expect(tally.compactions, JSON.stringify(tally)).toBeGreaterThan(0);
    expect(tally.tornDetected, JSON.stringify(tally)).toBeGreaterThan(0);
  });
});
