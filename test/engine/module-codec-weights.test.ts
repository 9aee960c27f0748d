/**
 * maxPendingBytes holds for values the store's worker encodes with a module codec (docs/design.md §3.19). Such a
 * codec has no value rule on the main thread, and its values were weighed by the store's average committed write
 * (1 KiB before the first commit): 100 KiB values counted ~1 KiB, or ~100 B once small writes had committed, so a
 * store bounded at 256 KiB took hundreds of them (tens of MB held on the main thread, in the message to the actor and
 * in the actor). Real worker, real module codec (JSON in the worker); nothing commits during the bursts (a long
 * debounce), so what the store holds is every accepted value: compared with the bound by their encoded bytes.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { saveUntilRefused } from "../support/save-until-refused.js";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("module-codec-weights");
afterAll(() => root.remove());
const codec = { module: pathToFileURL(join(REPO_ROOT, "test/engine/fixtures/slow-codec.mjs")).href, export: "slowJson" };
const KiB = 1024;
const BOUND = 256 * KiB;
const record = (i: number, bytes: number) => ({ i, pad: String(i % 10).repeat(bytes) });
const encodedBytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v));
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("engine stores bound values a module codec encodes in the worker", () => {
  let engine: StorageEngine | undefined;
  afterEach(async () => {
    await engine?.close();
    engine = undefined;
  });

  it("a burst of 100 KiB kv saves in one turn, before anything committed: refused near the bound", async () => {
    engine = openStorageEngine({ maxPendingBytes: BOUND });
    const kv = engine.kv<{ i: number; pad: string }>({ kind: "sqlite", path: root.fresh("kv.db") }, { codec, debounceMs: 60_000 });
    const { accepted, refused } = saveUntilRefused((i) => kv.save(`k${i}`, record(i, 100 * KiB)), 400);
    expect((refused as StorageError).code).toBe("backpressure");
    const held = accepted * encodedBytes(record(0, 100 * KiB));
    expect(held).toBeLessThanOrEqual(BOUND); // 2 values; 255 before (each weighed 1 KiB)
    expect(accepted).toBeGreaterThanOrEqual(1);
    const [store] = await engine.stats();
    expect(store!.pendingBytes).toBeGreaterThanOrEqual(held);
    await kv.flush();
    for (let i = 0; i < accepted; i++) expect((await kv.load(`k${i}`))?.i).toBe(i);
  });

  it("100 KiB kv saves paced one a turn, after small writes taught the store a small average: refused near the bound", async () => {
    engine = openStorageEngine({ maxPendingBytes: BOUND });
    const kv = engine.kv<{ i: number; pad: string }>({ kind: "sqlite", path: root.fresh("kv.db") }, { codec, debounceMs: 60_000 });
    for (let i = 0; i < 20; i++) kv.save(`small${i}`, record(i, 10));
    await kv.flush();
    let accepted = 0;
    let refused: unknown;
    for (; accepted < 400; accepted++) {
      try {
        kv.save(`k${accepted}`, record(accepted, 100 * KiB));
      } catch (err) {
        refused = err;
        break;
      }
      await turn(); // the actor receives each one: what it holds is the same
    }
    expect((refused as StorageError).code).toBe("backpressure");
    expect(accepted * encodedBytes(record(0, 100 * KiB))).toBeLessThanOrEqual(BOUND); // 400 of 400 before (~40 MB)
    await kv.flush();
    expect((await kv.load(`k${accepted - 1}`))?.i).toBe(accepted - 1);
  });

  it("append-log calls of big entries through a module codec: refused near the bound", async () => {
    engine = openStorageEngine({ maxPendingBytes: BOUND });
    const log = engine.appendLog<{ i: number; pad: string }>({ kind: "sqlite", path: root.fresh("log.db") }, { codec, debounceMs: 60_000 });
    const { accepted, refused } = saveUntilRefused((i) => log.appendEntries([record(i, 50 * KiB), record(-i, 50 * KiB)]), 400);
    expect((refused as StorageError).code).toBe("backpressure");
    expect(accepted * 2 * encodedBytes(record(0, 50 * KiB))).toBeLessThanOrEqual(BOUND);
    await log.flush();
    expect((await log.loadEntries()).entries).toHaveLength(2 * accepted);
  });
});
