import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { tempRoot, turn } from "./fixtures/helpers.js";
import { RECORD_OVERHEAD } from "../../src/tier/weights.js";
import { textCodec } from "../support/text-codec.js";

const root = tempRoot("stats-pending");
afterAll(() => root.remove());

let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

describe("engine.stats() pending figures", () => {
  it("counts pending entries, and the bytes of values already encoded on the main thread, until the flush", async () => {
    engine = openStorageEngine({ threads: 1 });
    const store = { kind: "sqlite" as const, path: root.fresh("pending.db") };
    const kv = engine.kv<string>(store, { name: "kv", debounceMs: 60_000, codec: textCodec });
    kv.save("a", "12345");
    kv.save("b", "678");
    await turn();
    const [before] = await engine.stats();
    expect(before?.pendingEntries).toBe(2);
    // Each record weighs RECORD_OVERHEAD (64) + 2 per key unit + its encoded bytes (docs/design.md §3.19).
    expect(before?.pendingBytes).toBe(2 * RECORD_OVERHEAD + 2 * 1 + 5 + 2 * 1 + 3);
    expect(before?.pendingBytes).toBe(140);
    await kv.flush();
    const [after] = await engine.stats();
    expect(after?.pendingEntries).toBe(0);
    expect(after?.pendingBytes).toBe(0);
    expect(after?.bytesWritten).toBe(8);
  });
});
