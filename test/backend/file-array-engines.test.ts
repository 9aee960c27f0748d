/**
 * Task 195 (b), end to end: two engines (two store actors, two worker threads of one process, sharing the file store's
 * lock) appending to one array-layout append-log bucket at once. Each flush rewrites the bucket's array, conditional
 * on the bytes it read; the file store checked and renamed without excluding the other thread, so both rewrites
 * could apply over one read and one engine's acknowledged entries were lost (review r188: 600 acknowledged, ~330
 * stored). Every acknowledged entry must be stored. Real engines, real worker threads, real files.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { acknowledgedAppends, appendFlushed, flushed } from "../support/racing-appends.js";

const dir = mkdtempSync(join(tmpdir(), "file-array-engines-"));
const engines: Array<ReturnType<typeof openStorageEngine>> = [];
afterAll(async () => {
  for (const e of engines) await e.close();
  rmSync(dir, { recursive: true, force: true });
});

it("two engines on one file store appending to one array-layout bucket at once: every acknowledged entry is stored", async () => {
  const e1 = openStorageEngine({ threads: 1, onError: () => undefined });
  const e2 = openStorageEngine({ threads: 1, onError: () => undefined });
  engines.push(e1, e2);
  const logs = [e1, e2].map((e) => e.appendLog<string>({ kind: "file", dir }, { name: "log", keyOf: () => "k", layout: "array" }));
  // Each engine's actor opens the store when its tier is made (above), the two at once (two threads of one process
  // taking the store lock together: test/backend/lock-threads-open-race); the warm-up flushes, one after the other,
  // make both handles' first batches before the race.
  for (const log of logs) {
    log.appendEntries(["warm"]);
    await log.flush();
  }
  const N = 60;
  // A rejected flush (store-busy: the array kept changing) leaves its entry pending, written by a later flush.
  const acked = await acknowledgedAppends(logs, N, appendFlushed, (log) => flushed(() => log.flush()));
  const stored = (await logs[0]!.loadEntries({ keyFilter: "k" })).entries.filter((e) => e !== "warm");
  expect(acked.length).toBeGreaterThan(0);
  const missing = acked.filter((e) => !stored.includes(e));
  expect(missing).toEqual([]);
});
