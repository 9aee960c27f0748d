/**
 * Property: any sequence of appends, flushes, injected write failures, rollbacks, compactions and
 * fresh tiers over a real backend (memory, SQLite; sync or async wrapper) leaves the log equal to a
 * simple model: a pending list and a committed list.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { StorageError } from "../../src/errors.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import type { AppendLogStorageTier } from "../../src/tier/types.js";
import { wrapBackend, type TestBackend } from "../support/test-backend.js";
import { errorOf } from "../support/wait.js";

type Cmd =
  | { t: "append"; count: number; bucket: number }
  | { t: "flush" }
  | { t: "failedFlush" }
  | { t: "rollback" }
  | { t: "compact" }
  | { t: "freshTier" };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant("append" as const), count: fc.integer({ min: 0, max: 4 }), bucket: fc.integer({ min: 0, max: 2 }) }), weight: 5 },
  { arbitrary: fc.constant({ t: "flush" as const }), weight: 3 },
  { arbitrary: fc.constant({ t: "failedFlush" as const }), weight: 2 },
  { arbitrary: fc.constant({ t: "rollback" as const }), weight: 2 },
  { arbitrary: fc.constant({ t: "compact" as const }), weight: 1 },
  { arbitrary: fc.constant({ t: "freshTier" as const }), weight: 1 },
);

interface Entry {
  b: string;
  n: number;
}

const root = mkdtempSync(join(tmpdir(), "grf-append-prop-"));
let dbCounter = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

const backends: Record<string, () => StorageBackend> = {
  memory: () => memoryBackend(),
  sqlite: () => sqliteBackend(join(root, `p-${dbCounter++}.db`)),
};

/** Entries of one bucket in the order they were committed. */
function byBucket(entries: readonly Entry[], bucket: string): Entry[] {
  return entries.filter((e) => e.b === bucket);
}

async function runModel(makeBackend: () => StorageBackend, commands: Cmd[], useAsync: boolean, mode: "one" | "keyed"): Promise<void> {
  const inner = makeBackend();
  const buckets = mode === "one" ? ["log"] : ["log/a", "log/b", "log/c"];
  let probe: TestBackend = wrapBackend(inner, { async: useAsync });
  const open = (): AppendLogStorageTier<Entry> =>
    appendLogStorage<Entry>(probe, {
      name: "log",
      debounceMs: 60_000,
      ...(mode === "keyed" ? { keyOf: (e: Entry) => e.b } : {}),
    });
  let log = open();
  let pending: Entry[] = [];
  let committed: Entry[] = [];
  let next = 0;
  const check = async (when: string): Promise<void> => {
    const all = (await log.loadEntries({ keyFilter: "log" })).entries;
    // Buckets read in key order; within a bucket, commit order.
    expect(all, when).toEqual(buckets.flatMap((b) => byBucket(committed, b)));
  };
  try {
    for (const [i, c] of commands.entries()) {
      const when = `step ${i}: ${JSON.stringify(c)}`;
      switch (c.t) {
        case "append": {
          const b = buckets[c.bucket % buckets.length]!;
          const entries = Array.from({ length: c.count }, () => ({ b, n: next++ }));
          log.appendEntries(entries);
          pending.push(...entries);
          break;
        }
        case "flush":
          await log.flush();
          committed.push(...pending);
          pending = [];
          break;
        case "failedFlush": {
          probe.failAll();
          const err = await errorOf(() => log.flush());
          probe.heal();
          if (pending.length > 0) {
            expect(err, when).toBeInstanceOf(StorageError);
            expect((err as StorageError).code).toBe("backend-error");
          } else expect(err, when).toBeUndefined();
          break;
        }
        case "rollback":
          log.rollback();
          pending = [];
          break;
        case "compact":
          await log.compact();
          committed.push(...pending);
          pending = [];
          break;
        case "freshTier":
          await log.close(); // flushes
          committed.push(...pending);
          pending = [];
          probe = wrapBackend(inner, { async: useAsync }); // a new backend object: nothing cached
          log = open();
          break;
      }
      await check(when);
    }
    await log.flush();
    committed.push(...pending);
    pending = [];
    await check("final flush");
    // Paging through the whole log in pages of 2 gives the same sequence.
    const paged: Entry[] = [];
    let cursor: { position: number } | undefined;
    do {
      const page = await log.loadEntries({ keyFilter: "log", pageSize: 2, ...(cursor ? { cursor } : {}) });
      paged.push(...page.entries);
      cursor = page.cursor;
    } while (cursor);
    expect(paged).toEqual(buckets.flatMap((b) => byBucket(committed, b)));
  } finally {
    await log.close().catch(() => undefined);
    await inner.close?.();
  }
}

describe("append-log model property", () => {
  for (const [name, make] of Object.entries(backends)) {
    it(`matches the pending/committed model over ${name} (flaky wrapper, sync or async)`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(cmd, { maxLength: 25 }), fc.boolean(), fc.constantFrom("one" as const, "keyed" as const), (commands, useAsync, mode) =>
          runModel(make, commands, useAsync, mode),
        ),
        { numRuns: 100 },
      );
    });
  }
});
