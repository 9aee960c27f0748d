/**
 * Task 210 (review r204, 1): a claim's link(2) can make the entry and still answer an error (NFS: the reply to a LINK
 * is lost and the retransmitted LINK answers EEXIST, or EIO, after the first one landed). The claim undid only the
 * links it saw succeed, so the key stayed stored while the batch was reported failed for certain (EIO, no inDoubt)
 * or `false`, "another handle took it" (EEXIST): the segments-layout append-log then numbered the batch again and
 * stored its entries twice. Its undo also unlinked by name, so a file a plain writer (no check lock) renamed onto the
 * name meanwhile was removed. Now a failed link, and each undo, looks at the name: this batch's own link (the temp
 * file's inode) is made / undone, another file is left, and where that cannot be told the batch is in doubt.
 * Failures are injected at the exact step by the store's test seam (file-faults.ts); the files and links are real.
 */
import { linkSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { errnoError, setFileFaultHook } from "../../src/backend/file-faults.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { absent, claimError, claimStores, entries, puts } from "./fixtures/file-claims.js";

const withStore = claimStores("file-claim-landed");
const temps = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith(".tmp-")).sort();

/**
 * The link of the key whose file is `fileName` lands, then link(2) answers `code` (once). The batch's temp files are
 * named in op order (one counter), so the key's temp is the `index`th of them.
 */
function landThenFail(dir: string, fileName: string, index: number, code: string): void {
  let done = false;
  setFileFaultHook((step, path) => {
    if (step !== "link" || basename(path) !== fileName || done) return;
    done = true;
    linkSync(join(dir, temps(dir)[index]!), path);
    throw errnoError(code, "link", path);
  });
}

describe("a claim whose link landed but answered an error", () => {
  it("EEXIST (a retransmitted link): the link is the batch's own, the claim succeeds with every key stored", () =>
    withStore((b, dir) => {
      landThenFail(dir, "b.bin", 1, "EEXIST");
      expect(b.writeBatchIf(absent("a", "b", "c"), puts("a", "b", "c"))).toBe(true);
      expect(["a", "b", "c"].map((k) => Array.from(b.read(k)!))).toEqual([[1], [2], [3]]);
      expect(entries(dir)).toEqual(["a.bin", "b.bin", "c.bin"]); // no temp file left
    }));

  it("EIO: fails certain, and the landed link is undone with the others (nothing stored)", () =>
    withStore((b, dir) => {
      landThenFail(dir, "b.bin", 1, "EIO");
      const err = claimError(b, "a", "b", "c");
      expect(err.code).toBe("backend-error");
      expect(err.details.osCode).toBe("EIO");
      expect(err.details.inDoubt).toBeUndefined();
      expect(entries(dir)).toEqual([]);
      setFileFaultHook(undefined);
      expect(b.writeBatchIf(absent("a", "b", "c"), puts("a", "b", "c"))).toBe(true);
    }));

  it("a failed link whose name cannot be looked at: in doubt, naming the files", () =>
    withStore((b) => {
      setFileFaultHook((step, path) => {
        if ((step === "link" || step === "same-file") && basename(path) === "b.bin") throw errnoError("EIO", step, path);
      });
      const err = claimError(b, "a", "b");
      expect(err.code).toBe("backend-error");
      expect(err.details).toMatchObject({ inDoubt: true, osCode: "EIO", files: ["a.bin", "b.bin"] });
    }));

  it("a segments-layout append-log stores the entry once when its segment's link landed and answered EEXIST", () =>
    withStore(async (b, dir) => {
      let done = false;
      setFileFaultHook((step, path) => {
        if (step !== "link" || done) return;
        done = true;
        linkSync(join(dir, temps(dir)[0]!), path);
        throw errnoError("EEXIST", "link", path);
      });
      const log = appendLogStorage<string>(b, { name: "log", keyOf: () => "k" });
      log.appendEntries(["e1"]);
      await log.flush();
      expect(done).toBe(true);
      expect((await log.loadEntries({ keyFilter: "k" })).entries).toEqual(["e1"]);
      await log.close();
    }));
});

describe("a failed claim's undo", () => {
  it("leaves a file a plain writer renamed onto a linked key's name since (only the batch's own links are removed)", () =>
    withStore((b, dir) => {
      const other = fileBackend(dir); // another handle of the holder process: its plain writes take no check lock
      try {
        // Its first write, which sweeps this thread's temp files, is made before the claim's (not inside it).
        other.write("x", Uint8Array.of(0));
        setFileFaultHook((step, path) => {
          if (step === "link" && basename(path) === "c.bin") throw errnoError("EIO", step, path);
          if (step === "undo-unlink" && basename(path) === "a.bin") other.write("a", Uint8Array.of(9));
        });
        const err = claimError(b, "a", "b", "c");
        expect(err.details).toMatchObject({ osCode: "EIO" });
        expect(err.details.inDoubt).toBeUndefined();
        setFileFaultHook(undefined);
        expect(Array.from(b.read("a")!)).toEqual([9]);
        expect(b.list()).toEqual(["a", "x"]);
      } finally {
        other.close();
      }
    }));
});
