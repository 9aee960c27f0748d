/**
 * A thrown value String() cannot convert (a null-prototype object has no toString), alone or as an Error's cause,
 * must not break the error's way across a thread: serializeError (src/errors.ts) called String() on it and threw a
 * TypeError of its own. An engine kv tier whose worker codec threw such a value rejected its flush with that raw
 * TypeError ("Cannot convert object to primitive value") instead of CodecError("encode-failed"), and a typed error
 * with such a cause thrown across the engine's port became comlink's "Unserializable return value".
 *
 * Real parts: a real engine worker importing the codec module, a real SQLite store, a real MessageChannel.
 */
import { MessageChannel } from "node:worker_threads";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { expose, wrap } from "comlink";
import { afterAll, describe, expect, it } from "vitest";
import { CodecError, openStorageEngine, StorageError } from "../../src/index.js";
import { portEndpoint, useTypedErrors } from "../../src/engine/rpc.js";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";

const MODULE = pathToFileURL(join(REPO_ROOT, "test/engine/fixtures/bare-throwing-codec.mjs")).href;
const root = tempRoot("unconvertible-throw");
afterAll(() => root.remove());

/** A null-prototype object, as a codec or a callee might throw it. */
function bare(): object {
  const o = Object.create(null) as Record<string, unknown>;
  o.reason = "no room";
  return o;
}

describe("a thrown value String() cannot convert", () => {
  it("a worker codec's throw of one (or of an Error caused by one) rejects the flush as CodecError encode-failed; the good write is stored", async () => {
    const engine = openStorageEngine({ threads: 1, idleStoreCloseMs: 0, onError: () => undefined });
    try {
      for (const exportName of ["bareCodec", "bareCauseCodec"]) {
        const kv = engine.kv<string>({ kind: "sqlite", path: root.fresh(`${exportName}.db`) }, { name: "kv", codec: { module: MODULE, export: exportName } });
        kv.save("good", "fine");
        kv.save("bad", "refuse");
        const err = await kv.flush().then(() => undefined, (e: unknown) => e);
        expect({ exportName, isCodecError: err instanceof CodecError }).toEqual({ exportName, isCodecError: true });
        expect(err).toMatchObject({ code: "encode-failed" });
        expect(await kv.load("good")).toBe("fine");
        expect(await kv.load("bad")).toBeUndefined();
      }
    } finally {
      await engine.close();
    }
  });

  it("a typed error caused by one crosses the engine's port typed, its cause described", async () => {
    useTypedErrors();
    const { port1, port2 } = new MessageChannel();
    expose({ fail: async () => Promise.reject(new StorageError("backend-error", "write failed", {}, bare())) }, portEndpoint(port2));
    const remote = wrap<{ fail(): Promise<void> }>(portEndpoint(port1));
    try {
      const err = await remote.fail().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ code: "backend-error", message: "write failed", cause: { message: "[object Object]" } });
    } finally {
      port1.close();
    }
  });
});
