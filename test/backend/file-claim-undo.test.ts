/**
 * Task 195 (a): a file store's claim (a conditional batch of new keys only: an append-log's new segments) links each
 * key to its temp file. A link failing with something other than EEXIST (EIO, ENOSPC), or the directory fsync after
 * the links failing, threw with the earlier links left in place: the batch was reported failed, yet part of it was
 * stored under the claimed keys, and the segments-layout append-log's retry found its numbers taken, numbered the
 * batch again and stored those entries a second time. Now the links made are undone (unlinked, the directory
 * fsynced) and the failure is certain: nothing stored; where the undo fails too, the error says `inDoubt: true`.
 * Failures are injected at the exact step by the store's test seam (file-faults.ts); the files are real.
 */
import { basename } from "node:path";
import { describe, expect, it } from "vitest";
import { errnoError, setFileFaultHook, type FileStep } from "../../src/backend/file-faults.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { absent, claimError, claimStores, entries, puts } from "./fixtures/file-claims.js";

const withStore = claimStores("file-claim-undo");

/** Fails `step` with `code` at its `nth` call (1-based) for this test. */
function failAt(step: FileStep, code: string, nth = 1): void {
  let seen = 0;
  setFileFaultHook((s, path) => {
    if (s === step && ++seen === nth) throw errnoError(code, s, path);
  });
}

describe("a claim that fails after some of its links", () => {
  it.each([
    ["a link fails with EIO", "link", "EIO", 3],
    ["a link fails with ENOSPC", "link", "ENOSPC", 2],
    ["the directory fsync fails", "fsync-dir", "EIO", 1],
  ] as const)("%s: fails certain, none of its keys stored, and the same claim succeeds after", (_what, step, code, nth) =>
    withStore((b, dir) => {
      failAt(step, code, nth);
      const err = claimError(b, "a", "b", "c");
      expect(err.code).toBe("backend-error");
      expect(err.details.osCode).toBe(code);
      expect(err.details.inDoubt).toBeUndefined();
      expect(b.list()).toEqual([]);
      expect(entries(dir)).toEqual([]); // no key, no temp file left
      setFileFaultHook(undefined);
      expect(b.writeBatchIf(absent("a", "b", "c"), puts("a", "b", "c"))).toBe(true);
      expect(b.list()).toEqual(["a", "b", "c"]);
    }),
  );

  it("says inDoubt when removing the links made fails too, naming the files", () =>
    withStore((b) => {
      setFileFaultHook((step, path) => {
        if ((step === "link" && basename(path) === "c.bin") || step === "undo-unlink") throw errnoError("EIO", step, path);
      });
      const err = claimError(b, "a", "b", "c");
      expect(err.code).toBe("backend-error");
      expect(err.details).toMatchObject({ inDoubt: true, osCode: "EIO", undoOsCode: "EIO", files: ["a.bin", "b.bin"] });
    }));

  it("says inDoubt when the undo's directory fsync fails", () =>
    withStore((b) => {
      setFileFaultHook((step, path) => {
        if (step === "fsync-dir" || step === "undo-fsync-dir") throw errnoError("EIO", step, path);
      });
      const err = claimError(b, "a", "b");
      expect(err.details).toMatchObject({ inDoubt: true, osCode: "EIO" });
      // The unlinks themselves were made: nothing is stored now, though a crash might bring the links back.
      expect(b.list()).toEqual([]);
    }));

  it("a claim lost to a stored key unlinks its links and answers false", () =>
    withStore((b) => {
      b.write("c", Uint8Array.of(9));
      expect(b.writeBatchIf(absent("a", "b", "c"), puts("a", "b", "c"))).toBe(false);
      expect(b.list()).toEqual(["c"]);
    }));
});

describe("a segments-layout append-log over a file store", () => {
  it("stores each entry once when a flush's claim failed after linking some of its segments", () =>
    withStore(async (b) => {
      let failAll = true;
      let secondFailed = 0;
      setFileFaultHook((step, path) => {
        if (step !== "link") return;
        if (failAll) throw errnoError("EIO", step, path);
        // Once: the link of segment 2, after segment 1's link was made in the same claim.
        if (path.endsWith("%1f00000000000000000002.bin") && secondFailed++ === 0) throw errnoError("EIO", step, path);
      });
      const log = appendLogStorage<string>(b, { name: "log", keyOf: () => "k" });
      log.appendEntries(["e1"]);
      // Nothing linked: the bucket goes back as one encoded segment (number 1, kept for the retry).
      await expect(log.flush()).rejects.toMatchObject({ code: "backend-error" });
      failAll = false;
      log.appendEntries(["e2"]); // the retry claims segments 1 and 2: 1 is linked, 2 fails once
      await log.flush().catch(() => undefined); // retried within the flush or not: the next flush settles it
      await log.flush();
      expect(secondFailed).toBeGreaterThan(0);
      expect((await log.loadEntries({ keyFilter: "k" })).entries).toEqual(["e1", "e2"]);
      await log.close();
    }));
});
