/**
 * A flush waiting for its answer on a healthy store does not refuse writes under a small bound (docs/design.md §3.19,
 * "Flush calls"). 6e7204e weighed every unanswered flush() call FLUSH_CALL_WEIGHT (2 KiB), so under a bound below
 * that any flush due refused every write until answered: save, flush (not awaited), save was backpressure. A tier's
 * first flush due weighs nothing now (one per tier: bounded anyway), each further one as before. Inline over an
 * async memory backend, and through an engine's actor on a real SQLite file; outcomes only.
 */
import { afterAll, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { tempRoot } from "../engine/fixtures/helpers.js";
import { wrapBackend } from "../support/test-backend.js";

const root = tempRoot("flush-weight-small-bound");
afterAll(() => root.remove());

interface Tier {
  save(key: string, value: number): void;
  flush(): Promise<void>;
  load(key: string): Promise<unknown>;
}

/** save(a), flush() not awaited, save(b): what the second save met ("taken" or the refusal's code). */
async function saveBesideFlush(kv: Tier): Promise<string> {
  kv.save("a", 1);
  const first = kv.flush();
  let second = "taken";
  try {
    kv.save("b", 2);
  } catch (err) {
    second = `${(err as { code?: string }).code}: ${(err as Error).message}`;
  }
  await first;
  await kv.flush();
  return second;
}

it("inline, async memory backend, bound 1 KiB: a save beside a flush due is taken and stored", async () => {
  const backend = wrapBackend(memoryBackend(), { async: true });
  const kv = kvStorage<number>(backend, { name: "kv", maxPendingBytes: 1024, debounceMs: 60_000 });
  try {
    expect(await saveBesideFlush(kv)).toBe("taken");
    expect([await kv.load("a"), await kv.load("b")]).toEqual([1, 2]);
  } finally {
    await kv.close();
  }
});

it("engine, SQLite file, bound 1 KiB: a save beside a flush due is taken and stored", async () => {
  const engine = openStorageEngine({ threads: 1, maxPendingBytes: 1024, onError: () => undefined });
  try {
    const kv = engine.kv<number>({ kind: "sqlite", path: root.fresh("s.db") }, { name: "kv", debounceMs: 60_000 });
    expect(await saveBesideFlush(kv)).toBe("taken");
    expect([await kv.load("a"), await kv.load("b")]).toEqual([1, 2]);
  } finally {
    await engine.close();
  }
});
