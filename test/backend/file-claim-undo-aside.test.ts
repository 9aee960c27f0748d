/**
 * Review r229 (of 1c4895d, the claim undo's move aside). The undo moved each key's name into a directory of its own
 * and a later sweep put back whatever it found there, the claim's own link too: an undo cut short (a thread that
 * ended in it, or an undo that failed in doubt) brought a failed batch's value back after other handles had claimed,
 * written and deleted the key, all acknowledged. The new directory also needed an inode: on a full disk the undo
 * failed in doubt with the keys stored, where the look-then-unlink undo had failed cleanly. And settleBatches waited
 * its whole bound on every call while a live thread's undo directory stayed.
 * Now a name is moved aside to a dot file in the store directory that carries the claim's own link's inode: equal,
 * it is removed, never put back (by the undo, its retry at the handle's next operation, or a sweep). Real files, a
 * real worker thread; the disk-full and undo failures are injected at their step (src/backend/file-faults.ts).
 */
import { existsSync, readdirSync } from "node:fs";
import { basename } from "node:path";
import { Worker } from "node:worker_threads";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { fileBackend, type FileBackend } from "../../src/backend/file.js";
import { errnoError, setFileFaultHook } from "../../src/backend/file-faults.js";
import { assertBuilt } from "../reliability/fixtures/crash-harness.js";
import { claimError, claimStores, entries } from "./fixtures/file-claims.js";

const withStore = claimStores("file-claim-undo-aside");
beforeAll(() => assertBuilt());

const asides = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith(".undo-"));
const valueOf = (b: FileBackend, key: string): number[] | undefined => {
  const v = b.read(key);
  return v === undefined ? undefined : Array.from(v);
};

/**
 * A claim of a, b, c on `b` that fails at c's link (EIO) and whose undo fails at a (`undoStep` throws `code` there for
 * a.bin): the StorageError it throws.
 */
function failedUndo(b: FileBackend, undoStep: string, code = "EIO"): ReturnType<typeof claimError> {
  setFileFaultHook((step, path) => {
    const name = basename(path);
    if (step === "link" && name === "c.bin") throw errnoError("EIO", step, path);
    if (step === undoStep && name === "a.bin") throw errnoError(code, step, path);
  });
  try {
    return claimError(b, "a", "b", "c");
  } finally {
    setFileFaultHook(undefined);
  }
}

describe("an undo cut short never brings the failed claim's key back", () => {
  it("a worker thread ended mid-undo: a later handle's sweep, after an acknowledged claim and delete of the key, removes the aside", () =>
    withStore(async (main, dir) => {
      main.write("x", Uint8Array.of(0)); // its sweep now, before the worker's claim
      const worker = new Worker(new URL("./fixtures/r229-undo-exit.mjs", import.meta.url), { workerData: { dir } });
      const said: unknown[] = [];
      worker.on("message", (m) => said.push(m));
      await new Promise((r) => worker.once("exit", r));
      expect(said).toEqual(["aside"]);
      const [aside] = asides(dir);
      expect(aside).toBeDefined();
      // The sweep tells an ended thread by /proc: wait until the worker's kernel thread is gone.
      const tid = /^\.undo-\d+-\d+-\d+-(\d+)-/.exec(aside!)?.[1];
      while (tid !== undefined && existsSync(`/proc/${process.pid}/task/${tid}`)) await new Promise((r) => setTimeout(r, 5));

      expect(main.writeBatchIf({ key: "a", value: undefined }, [{ op: "put", key: "a", value: Uint8Array.of(7) }])).toBe(true);
      main.delete("a");
      const later = fileBackend(dir); // another tier, a restarted actor: its first write sweeps
      try {
        later.write("y", Uint8Array.of(1));
        expect(valueOf(later, "a")).toBeUndefined();
        expect(asides(dir)).toEqual([]);
      } finally {
        later.close();
      }
    }));

  it("an undo failed in doubt: after a write and a delete of the key, a later handle's sweep does not bring it back", () =>
    withStore((main, dir) => {
      const other = fileBackend(dir); // writes here: main's next operation would settle its aside itself
      try {
        other.write("x", Uint8Array.of(0)); // its sweep now, before the claim
        const err = failedUndo(main, "undo-own");
        expect(err.details).toMatchObject({ inDoubt: true, files: ["a.bin", "b.bin"] });
        expect(asides(dir)).toHaveLength(1);
        expect(valueOf(other, "a")).toBeUndefined();
        expect(valueOf(other, "b")).toBeUndefined(); // the undo went on past a's failure
        other.write("a", Uint8Array.of(7));
        other.delete("a");
        expect(asides(dir)).toHaveLength(1);
        const later = fileBackend(dir);
        try {
          later.write("y", Uint8Array.of(1)); // this thread's aside: its sweep settles it
          expect(valueOf(later, "a")).toBeUndefined();
          expect(entries(dir).filter((n) => n.startsWith("."))).toEqual([]);
        } finally {
          later.close();
        }
      } finally {
        other.close();
      }
    }));

  it("the handle whose undo failed settles its aside at its next operation", () =>
    withStore((b, dir) => {
      b.write("x", Uint8Array.of(0));
      failedUndo(b, "undo-own");
      expect(asides(dir)).toHaveLength(1);
      expect(valueOf(b, "a")).toBeUndefined();
      expect(asides(dir)).toEqual([]);
      expect(b.list()).toEqual(["x"]);
    }));
});

describe("settleBatches and an undo's aside", () => {
  it("does not wait for an aside a live thread's undo left in doubt (it is no batch under way)", () =>
    withStore(async (b, dir) => {
      b.write("x", Uint8Array.of(0));
      failedUndo(b, "undo-own");
      expect(asides(dir)).toHaveLength(1);
      const reader = fileBackend(dir, { readOnly: true });
      // Timers frozen: a settleBatches that waits (a 1 ms timer per round) cannot be done after the next I/O turn.
      vi.useFakeTimers({ toFake: ["setTimeout"] });
      try {
        let done = false;
        const settling = reader.settleBatches!().then(() => {
          done = true;
        });
        await new Promise((r) => setImmediate(r));
        expect(done).toBe(true);
        await settling;
      } finally {
        vi.useRealTimers();
        reader.close();
      }
    }));
});

describe("an undo on a full disk", () => {
  it("no room to move a name aside (ENOSPC): the undo looks and unlinks its own link, and the batch fails clean", () =>
    withStore((b, dir) => {
      b.write("x", Uint8Array.of(0));
      const err = failedUndo(b, "undo-unlink", "ENOSPC");
      expect(err.details).toMatchObject({ osCode: "EIO" });
      expect(err.details.inDoubt).toBeUndefined();
      expect(entries(dir)).toEqual(["x.bin"]);
    }));

  it("no room to link another writer's file back (ENOSPC): it is renamed back to its free name", () =>
    withStore((b, dir) => {
      const other = fileBackend(dir);
      try {
        other.write("x", Uint8Array.of(0));
        setFileFaultHook((step, path) => {
          const name = basename(path);
          if (step === "link" && name === "c.bin") throw errnoError("EIO", step, path);
          if (step === "undo-unlink" && name === "a.bin") other.write("a", Uint8Array.of(9)); // moved aside next
          if (step === "undo-restore" && name === "a.bin") throw errnoError("ENOSPC", "link", path);
        });
        const err = claimError(b, "a", "b", "c");
        setFileFaultHook(undefined);
        expect(err.details.inDoubt).toBeUndefined();
        expect(valueOf(b, "a")).toEqual([9]);
        expect(entries(dir)).toEqual(["a.bin", "x.bin"]);
      } finally {
        other.close();
      }
    }));
});
