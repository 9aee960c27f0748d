/**
 * Two engines in one process on one store (their actors are two threads sharing the store lock), each flushing an
 * append-log together with a kv tier of the same store, so both flushes meet in the actor's flush group. On a file
 * store the group's one batch mixed the kv's puts with the log's new-segment claims and took the backend's
 * check-then-rename path, which is not exclusive against the other thread: the other engine's acknowledged segments
 * were overwritten (review r193: 35–43 of ~110 lost). A conditional batch now joins a group only on an atomic store;
 * on a file store it writes alone as claims (link(2)). SQLite, where the group's check and write are one transaction,
 * is the control.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { acknowledgedAppends, flushed, warmed } from "../support/racing-appends.js";

const dir = mkdtempSync(join(tmpdir(), "segments-mixed-group-"));
const engines: StorageEngine[] = [];
afterAll(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

it.each(["file", "sqlite"] as const)("%s store: an append-log flushed with a kv tier by two engines loses no acknowledged append", async (kind) => {
  const store = mkdtempSync(join(dir, `${kind}-`));
  const spec = kind === "file" ? { kind: "file" as const, dir: store } : { kind: "sqlite" as const, path: join(store, "s.db") };
  const pairs = [0, 1].map(() => {
    const engine = openStorageEngine({ threads: 1, onError: () => undefined });
    engines.push(engine);
    return { log: engine.appendLog<string>(spec, { name: "log", keyOf: () => "k" }), kv: engine.kv<number>(spec, { name: "kv" }) };
  });
  await warmed(pairs.map((p) => p.log));
  const N = 60;
  const acked = await acknowledgedAppends(
    pairs,
    N,
    async ({ log, kv }, entry, w, i) => {
      log.appendEntries([entry]);
      kv.save(`w${w}`, i);
      const [logFlush] = await Promise.allSettled([log.flush(), kv.flush()]);
      return logFlush.status === "fulfilled"; // a rejected one stays pending: written by the settle
    },
    ({ log }) => flushed(() => log.flush()),
  );
  const stored = (await pairs[0]!.log.loadEntries({ keyFilter: "k" })).entries.filter((e) => e !== "warm");
  expect(acked.length).toBeGreaterThan(0);
  expect(acked.filter((e) => !stored.includes(e))).toEqual([]); // before (file): dozens lost
  expect(new Set(stored).size).toBe(2 * N);
}, 120_000);
