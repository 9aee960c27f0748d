/**
 * A module codec's ColumnarTransport `at` runs in the store's worker, rebuilding each value of a columnar put: its
 * throw is the user codec's, and is refused as its encode's throw is: CodecError("encode-failed") naming the codec,
 * that value alone. Before (review r188 of 80db855), the throw reached the flush as a plain Error, and a bad value
 * first in its op refused the whole op: the good values saved after it in the same tick were never stored.
 * Real parts: a real SQLite store, real worker threads, the codec module loaded by the worker.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { CodecError } from "../../src/errors.js";
import { expectCoded, rejectionOf, settledBacklog, tempRoot } from "./fixtures/helpers.js";

const MODULE = new URL("./fixtures/columnar-at-throwing-codec.mjs", import.meta.url).href;
const root = tempRoot("columnar-at-throw");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

async function openKv(name: string) {
  engine = openStorageEngine({ threads: 1, onError: () => undefined });
  const kv = engine.kv<unknown>({ kind: "sqlite", path: `${root.fresh(name)}.db` }, {
    name: "kv",
    debounceMs: 60_000,
    codec: { module: MODULE, export: "codec" },
  });
  // The main thread finds the module's columns asynchronously: a first flush, so the puts below cross as columns.
  kv.save("warm", { ok: 0 });
  await kv.flush();
  return kv;
}

describe("a columnar `at` that throws in the store's worker", () => {
  it("bad value after a good one: the flush rejects with CodecError encode-failed, the good value is stored", async () => {
    const kv = await openKv("after");
    kv.save("good", { ok: 1 });
    kv.save("bad", { bad: true });
    const err = (await rejectionOf(kv.flush())) as CodecError;
    expectCoded(err, CodecError, "encode-failed");
    expect(err.message).toContain("columnar at said no");
    expect(err.details).toMatchObject({ codec: "columnar-at-throwing" });
    expect(await kv.load("good")).toEqual({ ok: 1 });
    expect(await kv.load("bad")).toBeUndefined();
    await kv.flush(); // the refusal was reported once
    expect(await settledBacklog(engine!)).toBe(0);
  });

  it("bad value first in its op: only it is refused, the good values after it are stored", async () => {
    const kv = await openKv("first");
    kv.save("bad", { bad: true });
    kv.save("good", { ok: 1 });
    kv.save("good2", { ok: 2 });
    expectCoded(await rejectionOf(kv.flush()), CodecError, "encode-failed");
    expect(await kv.load("good")).toEqual({ ok: 1 });
    expect(await kv.load("good2")).toEqual({ ok: 2 });
    expect(await kv.load("bad")).toBeUndefined();
    await kv.flush();
    expect(await settledBacklog(engine!)).toBe(0);
  });
});
