/**
 * An append-log flush encodes each bucket's entries once. Before, it encoded them twice (once to find entries the
 * codec refuses, once to write), so a large batch was held encoded twice while its flush (or each retry of it) ran:
 * transiently more than maxPendingBytes (docs/design.md §3.19).
 */
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { jsonCodec } from "../../src/codec/json.js";
import type { Codec } from "../../src/codec/types.js";
import { appendLogStorage } from "../../src/tier/append-log.js";

describe("append-log flush encodes once", () => {
  it("one encode per bucket per flush, and the entries read back", async () => {
    let encodes = 0;
    const counting: Codec<readonly number[]> = {
      name: "counting-json",
      version: 1,
      encode: (v) => {
        encodes++;
        return jsonCodec.encode(v);
      },
      decode: (b) => jsonCodec.decode(b) as number[],
    };
    const log = appendLogStorage<number>(memoryBackend(), { debounceMs: 60_000, codec: counting, keyOf: (n) => (n % 2 ? "odd" : "even") });
    log.appendEntries([1, 2, 3]);
    log.appendEntries([4, 5]);
    await log.flush();
    expect(encodes).toBe(2); // two buckets, one encode each
    const { entries } = await log.loadEntries();
    expect([...entries].sort()).toEqual([1, 2, 3, 4, 5]);
    await log.close();
  });
});
