/**
 * A baseline's timestamp_ns may be a wide integer: the Rust reference writes nanoseconds exactly
 * (`1747000000123456789`), which the reader decodes as a bigint (docs/protocol.md §2.6). restoreSnapshot read such
 * a store; the follower broke with untyped TypeErrors: followGraph rejected "Cannot convert a BigInt value to a
 * number" (its newest write time, Math.max with the frames' times) and poll() / stats() / lag() "Cannot mix BigInt
 * and other types" (review s12a F4). The follower now takes Number() of it, as of a frame's frame_t_ns, and
 * checkBaseline accepts only a non-negative integer (a number, or a bigint) there: anything else is a baseline no
 * reader uses (RestoreError `baseline-missing`, problem `invalid`), where before it was applied as if it were one.
 * Real SQLite stores.
 */
import { afterEach, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { RestoreError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { followGraph } from "../../src/persistence/follow.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { checkBaseline } from "../../src/persistence/stored-graph.js";
import { buildGraph, inlinePair, randomWave, rng, tempDir } from "../graph-compaction/fixtures.js";
import { errorOf } from "../support/wait.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A store whose baseline's timestamp_ns text is `timestamp` (frames above it or not); the writer's graph. */
async function storeWithTimestamp(timestamp: string, withFrames: boolean) {
  const tmp = tempDir("wide-timestamp");
  const path = tmp.path("store.db");
  const writer = sqliteBackend(path);
  const g = buildGraph();
  const handle = attachSnapshotStorage(g, [inlinePair(writer)], { compactEvery: Number.POSITIVE_INFINITY });
  await handle.flush();
  if (withFrames) {
    const random = rng(1);
    for (let i = 0; i < 4; i++) randomWave(g, random);
    await handle.flush();
  }
  await handle.dispose();
  const text = new TextDecoder().decode(writer.read("g"));
  const edited =
    timestamp === ""
      ? text.replace(/,"timestamp_ns":\d+|"timestamp_ns":\d+,/, "")
      : text.replace(/"timestamp_ns":\d+/, `"timestamp_ns":${timestamp}`);
  expect(edited).not.toBe(text);
  writer.write("g", new TextEncoder().encode(edited));
  const reader: StorageBackend = sqliteBackend(path, { readOnly: true });
  cleanups.push(() => {
    reader.close?.();
    writer.close();
    tmp.remove();
  });
  return { g, reader, writer };
}

describe.each([true, false])("a baseline with an exact u64 timestamp_ns (frames above it: %s)", (withFrames) => {
  it("restoreSnapshot, followGraph, poll, lag and stats work, and the follower follows on", async () => {
    const { g, reader, writer } = await storeWithTimestamp("1747000000123456789", withFrames);
    const restored = buildGraph();
    await restoreSnapshot(restored, inlinePair(reader));
    expect(restored.snapshot()).toEqual(g.snapshot());

    const replica = buildGraph();
    const errors: string[] = [];
    const follower = await followGraph(replica, inlinePair(reader), { pollMs: 3_600_000, onError: (e) => errors.push(String(e)) });
    cleanups.push(() => follower.stop());
    expect(replica.snapshot()).toEqual(g.snapshot());
    const lag = await follower.poll();
    expect(Number.isFinite(lag.ms) && lag.ms >= 0).toBe(true);
    expect(follower.stats()).toMatchObject({ state: "following", lastError: undefined });
    expect(Number.isFinite(follower.lag().ms)).toBe(true);

    // A writer that writes on over that baseline (our frames carry numbers): the follower applies them.
    const handle = attachSnapshotStorage(g, [inlinePair(writer)], { compactEvery: Number.POSITIVE_INFINITY });
    cleanups.push(() => handle.dispose());
    const random = rng(2);
    for (let i = 0; i < 3; i++) randomWave(g, random);
    await handle.flush();
    await follower.poll();
    await follower.poll();
    expect(errors).toEqual([]);
    expect(replica.snapshot()).toEqual(g.snapshot());
    expect(Number.isFinite(follower.stats().ms)).toBe(true);
  });
});

describe("a baseline whose timestamp_ns is no non-negative integer", () => {
  const BAD: Array<[string, string]> = [
    ["a string", '"1747000000123456789"'],
    ["negative", "-1"],
    ["a negative wide integer", "-17470000001234567890"],
    ["a fraction", "1.5"],
    ["null", "null"],
    ["an object", '{"n":12345678901234567890}'],
    ["missing", ""],
  ];
  it.each(BAD)("%s: restore and followGraph reject with RestoreError baseline-missing (invalid)", async (_what, timestamp) => {
    const { reader } = await storeWithTimestamp(timestamp, true);
    for (const read of [
      () => restoreSnapshot(buildGraph(), inlinePair(reader)),
      () => followGraph(buildGraph(), inlinePair(reader), { pollMs: 3_600_000 }),
    ]) {
      const err = await errorOf(read);
      expect(err).toBeInstanceOf(RestoreError);
      expect(err).toMatchObject({ code: "baseline-missing", details: { problem: "invalid" } });
      expect((err as Error).message).toMatch(/timestamp_ns must be a non-negative integer/);
    }
  });

  it("checkBaseline accepts an integer number and a non-negative bigint", () => {
    const record = (timestamp_ns: unknown) => ({
      name: "g",
      mode: "full",
      seq: 1,
      timestamp_ns,
      format_version: 1,
      snapshot: { name: "g", version: 1, nodes: {}, subgraphs: [] },
    });
    for (const ok of [0, 1_747_000_000_123_000_000, 1747000000123456789n, 0n]) expect(checkBaseline(record(ok), "g").ok, String(ok)).toBe(true);
    for (const bad of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, -1n, "1", undefined, null, [1]]) {
      expect(checkBaseline(record(bad), "g"), String(bad)).toMatchObject({ ok: false, problem: "invalid" });
    }
  });
});
