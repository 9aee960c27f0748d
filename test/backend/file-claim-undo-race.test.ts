/**
 * Task 224: a failed claim's undo (file store) looked at a key's name (its own link?) and then unlinked it; a plain
 * write, which takes no check lock, renamed onto the name between the two was unlinked: acknowledged, then lost. Now
 * the undo moves the name aside first (rename, atomic), looks at what it moved, unlinks its own link or puts another
 * writer's file back (no-replace: a still newer write wins). The plain writes run at the exact step through the
 * store's fault seam (file-faults.ts); a crash with a name moved aside is a real process killed there, and the next
 * writer's sweep settles it: another writer's file is put back, the claim's own link removed (review r229: putting it
 * back too brought a failed batch's key back). Real files, a real second handle, a real child process.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileBackend, type FileBackend } from "../../src/backend/file.js";
import { errnoError, setFileFaultHook } from "../../src/backend/file-faults.js";
import { assertBuilt } from "../reliability/fixtures/crash-harness.js";
import { claimError, claimStores } from "./fixtures/file-claims.js";

const withStore = claimStores("file-claim-undo-race");
beforeAll(() => assertBuilt());

/** Every dot entry but the store lock's files: temp files, an undo's asides. */
const leftovers = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith(".") && !n.startsWith(".graphrefly.lock"));
const valueOf = (b: FileBackend, key: string): number[] | undefined => {
  const v = b.read(key);
  return v === undefined ? undefined : Array.from(v);
};

/**
 * A claim of a, b, c on `b` that fails at c's link (EIO), with `during(step, fileName, other)` run at each step:
 * `other` is a second handle of the store in this thread (its plain writes take no check lock), whose first write
 * (its sweep) was made before the claim, not inside it. Then `check(b, dir)`, the hook cleared.
 */
function racedUndo(during: (step: string, fileName: string, other: FileBackend) => void, check: (b: FileBackend, dir: string) => void): Promise<void> {
  return withStore((b, dir) => {
    const other = fileBackend(dir);
    try {
      other.write("x", Uint8Array.of(0));
      setFileFaultHook((step, path) => {
        if (step === "link" && basename(path) === "c.bin") throw errnoError("EIO", step, path);
        during(step, basename(path), other);
      });
      const err = claimError(b, "a", "b", "c");
      setFileFaultHook(undefined);
      expect(err.details).toMatchObject({ osCode: "EIO" });
      expect(err.details.inDoubt).toBeUndefined();
      check(b, dir);
      expect(leftovers(dir)).toEqual([]);
    } finally {
      other.close();
    }
  });
}

describe("a plain write racing a failed claim's undo of its key", () => {
  it("landing after the undo told the name held its own link, before the removal: the plain write is kept", async () => {
    let wrote = false;
    await racedUndo(
      (step, name, other) => {
        if (step !== "undo-own" || name !== "a.bin" || wrote) return;
        wrote = true;
        other.write("a", Uint8Array.of(9));
      },
      (b) => {
        expect(wrote).toBe(true);
        expect(valueOf(b, "a")).toEqual([9]);
        expect(valueOf(b, "b")).toBeUndefined();
        expect(b.list()).toEqual(["a", "x"]);
      },
    );
  });

  it("a write moved aside, and a newer one landing before it is put back: the newer one is kept, nothing left aside", async () => {
    const steps: string[] = [];
    await racedUndo(
      (step, name, other) => {
        if (name !== "a.bin") return;
        steps.push(step);
        if (step === "undo-unlink") other.write("a", Uint8Array.of(9)); // the undo moves this one aside
        if (step === "undo-restore") other.write("a", Uint8Array.of(10)); // lands on the empty name meanwhile
      },
      (b) => {
        expect(steps).toEqual(["link", "undo-unlink", "same-file", "undo-restore"]);
        expect(valueOf(b, "a")).toEqual([10]);
        expect(b.list()).toEqual(["a", "x"]);
      },
    );
  });

  it("a write moved aside is put back when nothing newer landed", async () => {
    let seenAside = false;
    await racedUndo(
      (step, name, other) => {
        if (name !== "a.bin") return;
        if (step === "undo-unlink") other.write("a", Uint8Array.of(9));
        // Meanwhile the key is not at its name (a reader sees it missing), and an aside holds it.
        if (step === "undo-restore") seenAside = other.read("a") === undefined && readdirSync(other.dir).some((n) => n.startsWith(".undo-"));
      },
      (b) => {
        expect(seenAside).toBe(true);
        expect(valueOf(b, "a")).toEqual([9]);
      },
    );
  });
});

const crashRoot = mkdtempSync(join(tmpdir(), "file-claim-undo-crash-"));
let crashes = 0;
afterAll(() => rmSync(crashRoot, { recursive: true, force: true }));

describe("a process killed with a key's name moved aside", () => {
  const fixture = fileURLToPath(new URL("./fixtures/claim-undo-crash.mjs", import.meta.url));

  /**
   * Runs the fixture's claim in a child process killed at `step` (one aside left), then opens the store,
   * writes once (the first write sweeps) and runs `check` on it; nothing is left aside after.
   */
  function recoveredAfterKill(step: "undo-restore" | "undo-own", check: (b: FileBackend) => void): void {
    const dir = join(crashRoot, `store-${crashes++}`);
    const child = spawnSync(process.execPath, [fixture, dir, step], { encoding: "utf8" });
    expect(child.signal, child.stderr).toBe("SIGKILL");
    expect(leftovers(dir).filter((n) => n.startsWith(".undo-"))).toHaveLength(1);
    const b = fileBackend(dir);
    try {
      b.write("y", Uint8Array.of(1));
      check(b);
      expect(leftovers(dir)).toEqual([]);
    } finally {
      b.close();
    }
  }

  it("another writer's file moved aside: the next writer's sweep puts it back (its acknowledged write is kept)", () => {
    recoveredAfterKill("undo-restore", (b) => {
      expect(valueOf(b, "a")).toEqual([9]);
      expect(b.list()).toEqual(["a", "b", "x", "y"]); // b: the claim's own link, not undone yet when it died
    });
  });

  it("the claim's own link moved aside: removed by the next writer's sweep, never put back", () => {
    recoveredAfterKill("undo-own", (b) => {
      expect(valueOf(b, "a")).toEqual([9]);
      expect(valueOf(b, "b")).toBeUndefined();
    });
  });
});
