/**
 * Task 224: a failed claim's undo (file store) looked at a key's name (its own link?) and then unlinked it; a plain
 * write, which takes no check lock, renamed onto the name between the two was unlinked: acknowledged, then lost. Now
 * the undo moves the name aside first (rename, atomic), looks at what it moved, unlinks its own link or puts another
 * writer's file back (no-replace: a still newer write wins). The plain writes run at the exact step through the
 * store's fault seam (file-faults.ts); a crash with a name moved aside is a real process killed there, and the next
 * writer's sweep puts the name back. Real files, a real second handle, a real child process.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fileBackend, type FileBackend } from "../../src/backend/file.js";
import { errnoError, setFileFaultHook } from "../../src/backend/file-faults.js";
import type { BatchOp } from "../../src/backend/types.js";
import { StorageError } from "../../src/errors.js";
import { assertBuilt } from "../reliability/fixtures/crash-harness.js";

const root = mkdtempSync(join(tmpdir(), "file-claim-undo-race-"));
let counter = 0;
const freshDir = (): string => join(root, `store-${counter++}`);
beforeAll(() => assertBuilt());
afterEach(() => setFileFaultHook(undefined));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const puts = (...keys: string[]): BatchOp[] => keys.map((key, i) => ({ op: "put", key, value: Uint8Array.of(i + 1) }));
const absent = (...keys: string[]) => keys.map((key) => ({ key, value: undefined }));
/** Every dot entry but the store lock's files: temp files, undo directories. */
const leftovers = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith(".") && !n.startsWith(".graphrefly.lock"));
const valueOf = (b: FileBackend, key: string): number[] | undefined => {
  const v = b.read(key);
  return v === undefined ? undefined : Array.from(v);
};

/** A claim of a, b, c by `b` that fails at c's link (EIO), with `during` run at each step of its undo. */
function failedClaim(b: FileBackend, during: (step: string, fileName: string) => void): StorageError {
  setFileFaultHook((step, path) => {
    if (step === "link" && basename(path) === "c.bin") throw errnoError("EIO", step, path);
    during(step, basename(path));
  });
  try {
    b.writeBatchIf(absent("a", "b", "c"), puts("a", "b", "c"));
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return err as StorageError;
  } finally {
    setFileFaultHook(undefined);
  }
  throw new Error("expected the claim to fail");
}

describe("a plain write racing a failed claim's undo of its key", () => {
  it("landing after the undo told the name held its own link, before the removal: the plain write is kept", () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    const other = fileBackend(dir); // another handle of the holder process: its plain writes take no check lock
    try {
      other.write("x", Uint8Array.of(0)); // its first write (the sweep) before the claim's, not inside it
      let wrote = false;
      const err = failedClaim(b, (step, name) => {
        if (step === "undo-own" && name === "a.bin" && !wrote) {
          wrote = true;
          other.write("a", Uint8Array.of(9));
        }
      });
      expect(wrote).toBe(true);
      expect(err.details).toMatchObject({ osCode: "EIO" });
      expect(err.details.inDoubt).toBeUndefined();
      expect(valueOf(b, "a")).toEqual([9]);
      expect(valueOf(b, "b")).toBeUndefined();
      expect(b.list()).toEqual(["a", "x"]);
      expect(leftovers(dir)).toEqual([]);
    } finally {
      other.close();
      b.close();
    }
  });

  it("a write moved aside, and a newer one landing before it is put back: the newer one is kept, nothing left aside", () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    const other = fileBackend(dir);
    try {
      other.write("x", Uint8Array.of(0));
      const steps: string[] = [];
      failedClaim(b, (step, name) => {
        if (name !== "a.bin") return;
        steps.push(step);
        if (step === "undo-unlink") other.write("a", Uint8Array.of(9)); // the undo moves this one aside
        if (step === "undo-restore") other.write("a", Uint8Array.of(10)); // lands on the empty name meanwhile
      });
      expect(steps).toEqual(["link", "undo-unlink", "same-file", "undo-restore"]);
      expect(valueOf(b, "a")).toEqual([10]);
      expect(b.list()).toEqual(["a", "x"]);
      expect(leftovers(dir)).toEqual([]);
    } finally {
      other.close();
      b.close();
    }
  });

  it("a write moved aside is put back when nothing newer landed", () => {
    const dir = freshDir();
    const b = fileBackend(dir);
    const other = fileBackend(dir);
    try {
      other.write("x", Uint8Array.of(0));
      let seenAside = false;
      failedClaim(b, (step, name) => {
        if (name !== "a.bin") return;
        if (step === "undo-unlink") other.write("a", Uint8Array.of(9));
        if (step === "undo-restore") {
          // Meanwhile the key is not at its name (a reader sees it missing), and the undo directory holds it.
          seenAside = leftovers(dir).some((n) => n.startsWith(".undo-")) && b.read("a") === undefined;
        }
      });
      expect(seenAside).toBe(true);
      expect(valueOf(b, "a")).toEqual([9]);
      expect(leftovers(dir)).toEqual([]);
    } finally {
      other.close();
      b.close();
    }
  });
});

describe("a process killed with a key's name moved aside", () => {
  const fixture = fileURLToPath(new URL("./fixtures/claim-undo-crash.mjs", import.meta.url));

  /** Runs the fixture's claim in a child process killed at `step`; returns the store's directory. */
  function killedAt(step: "undo-restore" | "undo-own"): string {
    const dir = freshDir();
    const child = spawnSync(process.execPath, [fixture, dir, step], { encoding: "utf8" });
    expect(child.signal, child.stderr).toBe("SIGKILL");
    expect(leftovers(dir).filter((n) => n.startsWith(".undo-"))).toHaveLength(1);
    return dir;
  }

  it("another writer's file moved aside: the next writer's sweep puts it back (its acknowledged write is kept)", () => {
    const dir = killedAt("undo-restore");
    const b = fileBackend(dir);
    try {
      b.write("y", Uint8Array.of(1)); // the first write sweeps
      expect(valueOf(b, "a")).toEqual([9]);
      expect(b.list()).toEqual(["a", "b", "x", "y"]); // b: the claim's own link, not undone yet when it died
      expect(leftovers(dir)).toEqual([]);
    } finally {
      b.close();
    }
  });

  it("the claim's own link moved aside: put back too (a batch cut by a crash may stay part applied)", () => {
    const dir = killedAt("undo-own");
    const b = fileBackend(dir);
    try {
      b.write("y", Uint8Array.of(1));
      expect(valueOf(b, "a")).toEqual([9]);
      expect(valueOf(b, "b")).toEqual([2]);
      expect(leftovers(dir)).toEqual([]);
    } finally {
      b.close();
    }
  });
});
