/**
 * Compaction options are checked, not skimmed: a misspelt option (`keep` for `keepFrames`) is a TypeError naming it,
 * inline and through the engine, instead of a compaction that silently keeps nothing (issue 12 item 7).
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { RestoreError } from "../../src/errors.js";
import { compactGraph, compactGraphInEngine } from "../../src/persistence/compaction.js";
import type { CompactGraphOptions } from "../../src/persistence/compaction.js";
import { errorOf } from "../support/wait.js";

describe("compaction options", () => {
  it("inline: an unknown option is a TypeError naming it; nothing is compacted", async () => {
    const backend = memoryBackend();
    const err = await errorOf(() => compactGraph({ backend }, { graphName: "g", keep: 3 } as unknown as CompactGraphOptions));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toContain("keep");
  });

  const engine = openStorageEngine({ threads: 1 });
  afterAll(() => engine.close());

  it("compactGraphInEngine: an unknown option is a TypeError naming it", async () => {
    const store = { kind: "memory", name: `compact-options-${process.pid}` } as const;
    const err = await errorOf(() => compactGraphInEngine(engine, store, "g", { keep: 3 } as never));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toContain("keep");
  });

  it("the known options pass the check: on a store without the graph the answer is restore's, not a TypeError", async () => {
    const store = { kind: "memory", name: `compact-options-ok-${process.pid}` } as const;
    const err = await errorOf(() => compactGraphInEngine(engine, store, "g", { keepFrames: 2 }));
    expect(err).toBeInstanceOf(RestoreError);
  });
});
