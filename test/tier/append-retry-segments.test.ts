/**
 * A failed append-log flush keeps the segment numbers it reserved for its retry. Chunks appended before the retry
 * must take fresh numbers: reusing numbers past the reserved range let a later flush overwrite acknowledged entries.
 * Real failure: the store directory is swapped for a regular file (ENOTDIR, even for root), then restored.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { jsonCodec } from "../../src/codec/json.js";
import type { Codec } from "../../src/codec/types.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { AppendLogCore } from "../../src/tier/append-log.js";
import { breakableDir, tempRoot } from "../engine/fixtures/helpers.js";

const root = tempRoot("append-retry");
afterAll(() => root.remove());

/** No automatic retry within the test: each flush is the test's own. */
const noAutoRetry = { debounceMs: 60_000, retry: { initialMs: 1e6, maxMs: 1e6 } };
const enc = (entries: string[]): Uint8Array => new TextEncoder().encode(JSON.stringify(entries));
const dec = (b: Uint8Array): string[] => JSON.parse(new TextDecoder().decode(b)) as string[];

/**
 * A first flush that succeeds: the tier then knows its next segment number, so the failing flush fails at its
 * write (having reserved numbers), not at listing the bucket.
 */
async function first(core: AppendLogCore<string>): Promise<void> {
  core.appendEncoded("log", enc(["0"]), 1);
  await core.flush();
}

describe("append-log retry after a failed flush (core)", () => {
  it("pre-encoded chunks appended before the retry do not reuse segment numbers", async () => {
    const target = breakableDir(root);
    const backend = fileBackend(target.dir);
    // As the actor drives it for an engine tier whose codec runs on the main thread: one segment per chunk.
    const core = new AppendLogCore<string>(backend, undefined, { name: "log", ...noAutoRetry });
    await first(core);
    core.appendEncoded("log", enc(["a"]), 1);
    target.breakIt();
    await expect(core.flush()).rejects.toMatchObject({ code: "backend-error" });
    target.repair();
    core.appendEncoded("log", enc(["b"]), 1);
    await core.flush(); // a and b acknowledged
    core.appendEncoded("log", enc(["c"]), 1);
    await core.flush();
    expect((await core.loadSegments()).segments.flatMap(dec)).toEqual(["0", "a", "b", "c"]);
    await core.close();
    await backend.close?.();
  });

  it("a retry that fails again keeps every number it reserved", async () => {
    const target = breakableDir(root);
    const backend = fileBackend(target.dir);
    const core = new AppendLogCore<string>(backend, undefined, { name: "log", ...noAutoRetry });
    await first(core);
    core.appendEncoded("log", enc(["a"]), 1);
    target.breakIt();
    await expect(core.flush()).rejects.toMatchObject({ code: "backend-error" });
    core.appendEncoded("log", enc(["b"]), 1);
    await expect(core.flush()).rejects.toMatchObject({ code: "backend-error" });
    core.appendEncoded("log", enc(["c"]), 1);
    target.repair();
    await core.flush();
    core.appendEncoded("log", enc(["d"]), 1);
    await core.flush();
    expect((await core.loadSegments()).segments.flatMap(dec)).toEqual(["0", "a", "b", "c", "d"]);
    await core.close();
    await backend.close?.();
  });

  it("inline (codec in the core): the retry writes the whole bucket as one segment in its reserved number", async () => {
    const target = breakableDir(root);
    const backend = fileBackend(target.dir);
    const core = new AppendLogCore<string>(backend, jsonCodec as Codec<readonly string[]>, { name: "log", ...noAutoRetry });
    core.append("log", ["0"]);
    await core.flush();
    core.append("log", ["a"]);
    target.breakIt();
    await expect(core.flush()).rejects.toMatchObject({ code: "backend-error" });
    target.repair();
    core.append("log", ["b"]);
    await core.flush();
    core.append("log", ["c"]);
    await core.flush();
    expect((await core.loadEntries()).entries).toEqual(["0", "a", "b", "c"]);
    await core.close();
    await backend.close?.();
  });
});

describe("append-log retry after a failed flush (engine, main-thread codec)", () => {
  let engine: StorageEngine | undefined;
  afterEach(async () => {
    await engine?.close().catch(() => undefined);
    engine = undefined;
  });

  it("entries acknowledged by the retry survive the next flush", async () => {
    engine = openStorageEngine({ threads: 1, onError: () => undefined });
    const target = breakableDir(root);
    // Not a built-in codec object: it runs on the main thread and the actor gets pre-encoded chunks.
    const codec: Codec<readonly string[]> = { name: "main-json", version: 1, encode: enc as Codec<readonly string[]>["encode"], decode: dec };
    const log = engine.appendLog<string>({ kind: "file", dir: target.dir }, { name: "log", codec, ...noAutoRetry });
    log.appendEntries(["0"]);
    await log.flush();
    log.appendEntries(["a"]);
    target.breakIt();
    await expect(log.flush()).rejects.toMatchObject({ code: "backend-error" });
    target.repair();
    log.appendEntries(["b"]);
    await log.flush();
    log.appendEntries(["c"]);
    await log.flush();
    expect((await log.loadEntries()).entries).toEqual(["0", "a", "b", "c"]);
  });
});
