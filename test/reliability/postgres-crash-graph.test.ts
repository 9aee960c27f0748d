/**
 * kill -9 of a graph writer (engine + attachSnapshotStorage) on a PostgreSQL store (issue 15: "the graph round-trip
 * and crash suites too"), PG_CRASH_CYCLES cycles (default 10). The suite of crash-graph.test.ts
 * (fixtures/graph-crash-suite.ts) with the store in the test server: each child waits for the killed one's lease
 * (fixtures: a 2 s lease), restores, sometimes compacts in its actor, then writes and reports acknowledgements until
 * it is killed. After every kill, verify and restore agree, the restored seq is at least the last acknowledged one
 * with the acknowledged state at it, the restored state is one the writer had at a wave boundary (a PostgreSQL
 * batch is one transaction: never inside a wave), no frame is skipped; at the end the store takes new writes.
 * Torn tails are not planted: a PostgreSQL write is all or nothing.
 */
import { afterAll, beforeAll, describe, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import { assertBuilt, envCount, killAllChildren } from "./fixtures/crash-harness.js";
import { runGraphCrashCycles } from "./fixtures/graph-crash-suite.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { CRASH_LEASE, writerSpec } from "../support/postgres-graph.js";

const CYCLES = envCount("PG_CRASH_CYCLES", 10);
/** A safety net for a hung child, never the thing asserted. */
const TIMEOUT = 60_000 + CYCLES * 8_000;
const database = useTestDatabase();

beforeAll(() => assertBuilt());
afterAll(() => killAllChildren());

describe("kill -9 during graph writes on a PostgreSQL store (engine + attach)", () => {
  it(`${CYCLES} cycles; acknowledged writes survive, restores are exact`, { timeout: TIMEOUT }, async ({ expect }) => {
    const db = await database();
    const store = "crash-graph";
    const tally = await runGraphCrashCycles("postgres", CYCLES, expect, undefined, {
      spec: writerSpec(db, store),
      open: (writer) =>
        postgresBackend({ url: db.url, schema: db.schema, store, ...(writer ? { lease: CRASH_LEASE } : { readOnly: true }) }),
    });
    expect(tally.midWave, "a PostgreSQL batch is one transaction").toBe(0);
    console.log(`[postgres-crash-graph] ${CYCLES} cycles:`, JSON.stringify(tally));
  });
});
