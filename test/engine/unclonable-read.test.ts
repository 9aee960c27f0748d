/**
 * A value read in the worker that structured clone cannot carry back (a worker codec's decode result) fails that
 * read alone with CodecError("decode-failed"); the other reads of the same batch answer, and the worker lives on.
 * Before, the answer of the whole batch could not be posted: an unhandled rejection in the worker ended it.
 */
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { CodecError, StorageError } from "../../src/errors.js";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("unclonable-read");
afterAll(() => root.remove());
const CODEC = { module: pathToFileURL(join(REPO_ROOT, "test/engine/fixtures/callable-codec.mjs")).href, export: "codec" };

describe("a read the port cannot carry back", () => {
  it("rejects alone with CodecError; the batch's other reads answer and the worker keeps serving", async () => {
    const reported: Error[] = [];
    const engine = openStorageEngine({ threads: 1, onError: (err) => reported.push(err) });
    try {
      const kv = engine.kv<unknown>({ kind: "sqlite", path: root.fresh("a.db") }, { name: "kv", codec: CODEC });
      kv.save("plain", "text");
      kv.save("fn", "callable");
      await kv.flush();
      // One tick: both loads travel in one batch.
      const [fn, plain] = await Promise.allSettled([kv.load("fn"), kv.load("plain")]);
      expect(fn.status).toBe("rejected");
      const err = (fn as PromiseRejectedResult).reason as unknown;
      expect(err).toBeInstanceOf(CodecError);
      expect((err as CodecError).code).toBe("decode-failed");
      expect(plain).toEqual({ status: "fulfilled", value: "text" });
      kv.save("after", "still");
      await kv.flush();
      expect(await kv.load("after")).toBe("still");
      expect(reported.filter((e) => e instanceof StorageError && e.code === "worker-crashed")).toEqual([]);
    } finally {
      await engine.close();
    }
  });
});
