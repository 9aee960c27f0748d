/**
 * Review r376 M3 (task 381): task 364 made a reader's settleBatches skip a temp file last written more than 2 s before
 * the thread its name gives started (/proc's start time and boot time). A file's time is another clock's on NFS,
 * virtiofs or 9p (the server's), and the host's clock may be stepped back: a live batch's temp file looked older than
 * its thread, and the reader read the batch part applied. The rule is gone: a live thread's temp file is waited for,
 * whatever its time. Real files named after this thread, their time set back as such a clock would.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import { afterAll, describe, expect, it } from "vitest";
import { KERNEL_THREAD_ID } from "../../src/base/kernel-thread.js";
import { fileBackend } from "../../src/backend/file.js";

const root = mkdtempSync(join(tmpdir(), "file-settle-clock-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A temp file name of this thread, as a batch of it names one. */
const ownTempName = (n: number): string =>
  `.tmp-${process.pid}-${threadId}-${n}${KERNEL_THREAD_ID === undefined ? "" : `-${KERNEL_THREAD_ID}`}`;
const AN_HOUR_S = 3600;

describe("a live batch's temp file whose time is behind its thread's start (another clock)", () => {
  it("is waited for by a reader's settleBatches until it is gone", async () => {
    const dir = join(root, "store");
    mkdirSync(dir);
    const reader = fileBackend(dir, { readOnly: true });
    try {
      const temp = join(dir, ownTempName(1));
      writeFileSync(temp, "a batch under way");
      const behind = Date.now() / 1000 - AN_HOUR_S;
      utimesSync(temp, behind, behind);
      let settled = false;
      const settling = reader.settleBatches!().then(() => (settled = true));
      await new Promise((r) => setTimeout(r, 50));
      expect(settled).toBe(false); // before: skipped as written before this thread started, the batch read part applied
      rmSync(temp);
      await settling;
      expect(settled).toBe(true);
    } finally {
      reader.close();
    }
  });
});
