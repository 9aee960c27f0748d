/**
 * An append-log call with keyOf is all or nothing: a bucket key the backend refuses (a file name too long for the
 * file backend) refuses the whole call, so no entry of it is pending and a retry of the call cannot duplicate any.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { StorageError } from "../../src/errors.js";
import { appendLogStorage } from "../../src/tier/append-log.js";

const root = mkdtempSync(join(tmpdir(), "grf-append-buckets-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("appendEntries with keyOf", () => {
  it("a bucket key the backend refuses refuses the whole call: buckets before it take nothing", async () => {
    const log = appendLogStorage<{ b: string; v: number }>(fileBackend(join(root, "s")), {
      name: "log",
      keyOf: (e) => e.b,
    });
    const tooLong = "x".repeat(400);
    let err: unknown;
    try {
      log.appendEntries([{ b: "ok", v: 1 }, { b: tooLong, v: 2 }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("invalid-key");
    log.appendEntries([{ b: "ok", v: 3 }]);
    await log.flush();
    expect((await log.loadEntries({ keyFilter: "ok" })).entries).toEqual([{ b: "ok", v: 3 }]);
    await log.close();
  });
});
