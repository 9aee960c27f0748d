/**
 * Review r359 L3 (task 364): a reader's settleBatches waited its whole bound (5 s), at every call, for a leftover temp
 * file named after a live process that is no writer of this store (a crash's leftover whose pid a later process took).
 * Now a temp file written before the thread (or process) its name gives started is no batch under way: that thread
 * cannot have written it. Real files, this process's own /proc entries (its start time, a file's time set back).
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { afterAll, describe, expect, it } from "vitest";
import { KERNEL_THREAD_ID } from "../../src/base/kernel-thread.js";
import { fileBackend, startedSince } from "../../src/backend/file.js";

const root = mkdtempSync(join(tmpdir(), "file-settle-started-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let stores = 0;
const freshDir = (): string => {
  const dir = join(root, `store-${stores++}`);
  mkdirSync(dir);
  return dir;
};

const tid = KERNEL_THREAD_ID === undefined ? undefined : String(KERNEL_THREAD_ID);
/** A temp file name of this thread, as a batch of it names one. */
const ownTempName = (n: number): string => `.tmp-${process.pid}-${threadId}-${n}${tid === undefined ? "" : `-${tid}`}`;
const A_YEAR_AGO_S = Date.now() / 1000 - 365 * 24 * 3600;

describe("a temp file written before the thread its name gives started", () => {
  it("is not that thread's; one written since is", () => {
    const dir = freshDir();
    const old = join(dir, ownTempName(1));
    writeFileSync(old, "left by a process that had this pid before");
    utimesSync(old, A_YEAR_AGO_S, A_YEAR_AGO_S);
    const fresh = join(dir, ownTempName(2));
    writeFileSync(fresh, "a batch under way");
    expect({ old: startedSince(old, process.pid, tid), fresh: startedSince(fresh, process.pid, tid) }).toEqual({ old: true, fresh: false });
    expect(startedSince(join(dir, ownTempName(3)), process.pid, tid)).toBe(false); // gone: cannot tell
  });

  it("a reader's settleBatches does not wait for it, and still waits for a live batch's temp file until it is gone", async () => {
    const dir = freshDir();
    const old = join(dir, ownTempName(1));
    writeFileSync(old, "leftover");
    utimesSync(old, A_YEAR_AGO_S, A_YEAR_AGO_S);
    const reader = fileBackend(dir, { readOnly: true });
    try {
      const fresh = join(dir, ownTempName(2));
      writeFileSync(fresh, "a batch under way");
      let settled = false;
      const settling = reader.settleBatches!().then(() => (settled = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(settled).toBe(false); // the live batch's temp file is waited for
      rmSync(fresh);
      await settling; // before: went on waiting for the leftover until its 5 s bound
      expect(settled).toBe(true);
    } finally {
      reader.close();
    }
  });
});
