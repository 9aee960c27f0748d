/**
 * Review r204 (c8c48db): a claim's link(2) that took effect but answered an error (NFS: a retransmitted LINK answered
 * EEXIST/EIO after the first one landed; a local file system: EIO after the directory entry was made). The claim
 * undoes only the links it saw succeed (`made`), so the key whose link "failed" stays stored while the batch is
 * reported failed, certain (no inDoubt) or `false` (EEXIST: "another handle took it"). The segments-layout append-log
 * then numbers the batch again: its entries stored twice. Simulated by the store's own fault seam: the hook makes the
 * link itself, then throws as the system call would.
 */
import { linkSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { errnoError, setFileFaultHook } from "../../src/backend/file-faults.js";
import type { BatchOp } from "../../src/backend/types.js";

const root = mkdtempSync(join(tmpdir(), "r204-claim-"));
let counter = 0;
afterEach(() => setFileFaultHook(undefined));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const puts = (...keys: string[]): BatchOp[] => keys.map((key, i) => ({ op: "put", key, value: Uint8Array.of(i + 1) }));
const absent = (...keys: string[]) => keys.map((key) => ({ key, value: undefined }));

/** The link of the batch's only key lands, then link(2) answers `code`. */
function landThenFail(dir: string, code: string): void {
  setFileFaultHook((step, path) => {
    if (step !== "link") return;
    const temp = readdirSync(dir).find((n) => n.startsWith(".tmp-"))!;
    linkSync(join(dir, temp), path);
    throw errnoError(code, "link", path);
  });
}

it.each(["EIO", "EEXIST"])("a link that landed but answered %s: the batch is not reported as certainly unstored while its key is stored", (code) => {
  const dir = join(root, `s${counter++}`);
  const b = fileBackend(dir);
  try {
    landThenFail(dir, code);
    let outcome: unknown;
    try {
      outcome = b.writeBatchIf(absent("a"), puts("a"));
    } catch (err) {
      outcome = err;
    }
    setFileFaultHook(undefined);
    const stored = b.read("a") !== undefined;
    const inDoubt = (outcome as { details?: { inDoubt?: boolean } })?.details?.inDoubt === true;
    // Sound outcomes: stored and answered true, or stored and in doubt, or not stored and failed/false.
    expect({ outcome: outcome === true ? true : outcome === false ? false : "threw", inDoubt, stored }).not.toMatchObject({ stored: true, inDoubt: false, outcome: code === "EEXIST" ? false : "threw" });
  } finally {
    b.close();
  }
});
