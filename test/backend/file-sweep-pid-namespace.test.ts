/**
 * Task 210 (review r204, 2): temp file names end in the writing thread's kernel thread id, read from
 * /proc/thread-self, and a sweep takes a thread as ended when /proc/<process.pid>/task/<tid> is gone. In a PID
 * namespace whose /proc is another namespace's (`unshare --pid --fork` without --mount-proc, some sandboxes),
 * process.pid and /proc/thread-self's pid differ: every other thread of the process looked ended, so a handle's
 * first write removed a live thread's in-flight temp file (whose rename then failed ENOENT). Now the kernel id is
 * used only when /proc/thread-self's pid is process.pid; otherwise live threads' temp files are kept, as without
 * procfs. The child process (real threads, real files, the real /proc) only gives process.pid the namespace's value.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";

const CHILD = new URL("./fixtures/file-sweep-pid-namespace.mjs", import.meta.url);
const root = mkdtempSync(join(tmpdir(), "file-sweep-pidns-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it("a process whose pid is not /proc's: a first write keeps another live thread's temp file, whose batch then succeeds", async () => {
  const dir = join(root, "store");
  const { stdout } = await promisify(execFile)(process.execPath, [CHILD.pathname, dir]);
  const out = JSON.parse(stdout.trim()) as { staged: string[]; kept: string[]; worker: { ok: boolean; code?: string } };
  expect(out.staged).toHaveLength(1);
  expect(out.kept).toEqual(out.staged);
  expect(out.worker).toEqual({ ok: true });
  const b = fileBackend(dir, { readOnly: true });
  try {
    expect(Array.from(b.read("k")!)).toEqual([7]);
  } finally {
    b.close();
  }
});
