/**
 * A fold's commit step trusts the baseline stored meanwhile only when a reader would accept it (docs/design.md §3.27).
 * Before, it took any decodable record's `seq`: a record above the fold's seq that was another graph's, a spec
 * projection, or a malformed snapshot behind a well-formed head (name, seq) was kept as "a newer baseline", and the
 * frames it was said to cover were deleted, leaving a graph no reader could restore. Now the step throws restore's
 * error for it (RestoreError `baseline-missing` / `codec-mismatch`) and changes nothing. Real SQLite file.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { jsonCodec } from "../../src/codec/json.js";
import { RestoreError } from "../../src/errors.js";
import { compactGraph, type CompactionContext } from "../../src/persistence/compaction.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { GRAPH, sqliteStoreWithFrames, storedFrameSeqs, tempDir } from "./fixtures.js";

const tmp = tempDir("fold-commit-foreign");
afterAll(() => tmp.remove());
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const storeWithFrames = (name: string) => sqliteStoreWithFrames(tmp.path(`${name}.db`), 12, 0x5eed, cleanups);

function ctxBefore(backend: CompactionContext["backend"], before: () => void): CompactionContext {
  return { backend, release: () => undefined, exclusive: async (step) => (before(), step()) };
}

/** Records stored under the graph's name while the fold ran, each above the fold's seq, none a usable baseline. */
const FOREIGN: ReadonlyArray<[string, (b: GraphCheckpointRecord, seq: number) => unknown, string]> = [
  ["another graph's record", (b, seq) => ({ ...b, name: "other", seq }), "baseline-missing"],
  ["a spec projection", (b, seq) => ({ ...b, lifecycle: "spec", seq }), "baseline-missing"],
  ["a well-formed head over a malformed snapshot", (b, seq) => ({ ...b, seq, snapshot: "garbage" }), "baseline-missing"],
  ["a newer format", (b, seq) => ({ ...b, seq, format_version: 2 }), "codec-mismatch"],
];

describe("a fold's commit step when the record stored meanwhile is not a usable baseline (SQLite file)", () => {
  it.each(FOREIGN)("%s: refused with restore's error, nothing changed", async (label, make, code) => {
    const { backend, seq, baseline } = await storeWithFrames(label.replace(/\W+/g, "-"));
    const before = await storedFrameSeqs(backend);
    expect(before.length).toBeGreaterThanOrEqual(12);
    let written: Uint8Array | undefined;
    const err = await compactGraph(
      ctxBefore(backend, () => {
        written = jsonCodec.encode(make(baseline(), seq + 5));
        backend.write(GRAPH, written);
      }),
      { graphName: GRAPH },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).code).toBe(code);
    expect(await storedFrameSeqs(backend)).toEqual(before); // no frame deleted
    expect(backend.read(GRAPH)).toEqual(written); // the record stays as it was written
  });
});
