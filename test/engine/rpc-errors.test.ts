/**
 * The actor's control calls go through comlink with our "throw" transfer handler (src/engine/rpc.ts): an error
 * thrown on one end of a port rejects the call on the other as the same typed error, code and details included
 * (comlink's own handler gives a plain Error, which is why the calls used to wrap results in an Outcome).
 */
import { MessageChannel } from "node:worker_threads";
import { expose, wrap } from "comlink";
import { afterAll, describe, expect, it } from "vitest";
import { CodecError, RestoreError, StorageError } from "../../src/errors.js";
import { portEndpoint, useTypedErrors } from "../../src/engine/rpc.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("rpc-errors");
afterAll(() => root.remove());

describe("typed errors across the actor's port", () => {
  it("a thrown StorageError, RestoreError, CodecError, TypeError arrives as itself with code and details", async () => {
    useTypedErrors();
    const { port1, port2 } = new MessageChannel();
    const thrown: Record<string, () => Error> = {
      storage: () => new StorageError("store-locked", "held by pid 42", { holder: "pid 42" }),
      restore: () => new RestoreError("wal-gap", "frame 7 missing", { graphName: "g" }),
      codec: () => new CodecError("decode-failed", "bad bytes", { key: "k" }),
      type: () => new TypeError("bad argument"),
    };
    expose({ fail: async (kind: string) => Promise.reject(thrown[kind]!()) }, portEndpoint(port2));
    const remote = wrap<{ fail(kind: string): Promise<void> }>(portEndpoint(port1));
    try {
      const got = await Promise.all(Object.keys(thrown).map((k) => remote.fail(k).catch((e: unknown) => e)));
      expect(got[0]).toBeInstanceOf(StorageError);
      expect(got[0]).toMatchObject({ code: "store-locked", message: "held by pid 42", details: { holder: "pid 42" } });
      expect(got[1]).toBeInstanceOf(RestoreError);
      expect(got[1]).toMatchObject({ code: "wal-gap", details: { graphName: "g" } });
      expect(got[2]).toBeInstanceOf(CodecError);
      expect(got[2]).toMatchObject({ code: "decode-failed", details: { key: "k" } });
      expect(got[3]).toBeInstanceOf(TypeError);
    } finally {
      port1.close();
    }
  });

  it("through the engine: a job's typed error and an open failure reach the caller typed", async () => {
    const engine = openStorageEngine({ threads: 1 });
    try {
      const store = { kind: "sqlite" as const, path: root.fresh("a.db") };
      const err = await engine.runJob(store, "compact-graph", { graphName: "absent" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RestoreError);
      expect(err).toMatchObject({ code: "baseline-missing" });
      const unknownJob = await engine.runJob(store, "no-such-job", {}).catch((e: unknown) => e);
      expect(unknownJob).toMatchObject({ code: "invalid-argument" });
      expect(unknownJob).toBeInstanceOf(StorageError);
    } finally {
      await engine.close();
    }
  });
});
