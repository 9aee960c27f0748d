/**
 * Review r374 L10: the file store's directory fsync (file.ts fsyncDir) and the OS-cause probe of a failed SQLite open
 * (os-cause.ts) opened a directory with a plain open(2), which blocks for good on a FIFO put there in its place (until
 * some process opens it for writing; root too). Both open it as a directory only, never blocking: the fsync's failure
 * is ENOTDIR naming what is there (a backend-error of the batch), the probe's cause is ENOTDIR.
 *
 * Real parts: the compiled store in a child process (a blocked open must not block the test's thread; the child is
 * killed by spawnSync's timer if it never ends), a real FIFO. Test seam: the file store's fault hook at its "fsync-dir"
 * step (file-faults.ts) swaps the store's directory for a FIFO right before the fsync; it throws nothing.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const DIST = fileURLToPath(new URL("../../dist/src/backend/", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "grf-dir-open-fifo-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs `body` (an ES module's text, `dist` and `root` in scope) in a child; what it printed, parsed, or its signal. */
function inChild(body: string): { signal: NodeJS.Signals | null; out: unknown } {
  const script = `const dist = ${JSON.stringify(DIST)}; const root = ${JSON.stringify(root)};\n${body}`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
  expect(r.stderr).toBe("");
  return { signal: r.signal, out: r.signal === null ? JSON.parse(r.stdout) : undefined };
}

describe("a FIFO in a directory's place (review r374 L10)", () => {
  it("a file store's directory fsync fails ENOTDIR naming the FIFO, and does not block", () => {
    const r = inChild(`
      const { execFileSync } = await import("node:child_process");
      const { renameSync } = await import("node:fs");
      const { fileBackend } = await import(dist + "file.js");
      const { setFileFaultHook } = await import(dist + "file-faults.js");
      const dir = root + "/store";
      const b = fileBackend(dir);
      setFileFaultHook((step) => {
        if (step !== "fsync-dir") return;
        renameSync(dir, root + "/store-aside");
        execFileSync("mkfifo", [dir]);
      });
      try { b.writeBatchIf([{ key: "a", value: undefined }], [{ op: "put", key: "a", value: Uint8Array.of(1) }]); console.log(JSON.stringify("stored")); }
      catch (e) { console.log(JSON.stringify({ code: e.code, osCode: e.details?.osCode, message: e.message })); }
      process.exit(0); // the store's lock is in the directory moved aside: its close is not this test's`);
    expect(r.signal, "the fsync's open blocked on the FIFO").toBeNull();
    const err = r.out as { code: string; osCode: string; message: string };
    expect(err.code).toBe("backend-error");
    expect(err.osCode).toBe("ENOTDIR");
    expect(err.message).toContain(`${join(root, "store")} is a FIFO, not a directory`);
  });

  it("the OS-cause probe of a store whose directory is a FIFO says ENOTDIR, and does not block", () => {
    const r = inChild(`
      const { execFileSync } = await import("node:child_process");
      const { diagnoseOsCause } = await import(dist + "os-cause.js");
      execFileSync("mkfifo", [root + "/fifo-dir"]);
      console.log(JSON.stringify(diagnoseOsCause(root + "/fifo-dir/s.db") ?? null));`);
    expect(r.signal, "the probe's open blocked on the FIFO").toBeNull();
    expect(r.out).toEqual({ osCode: "ENOTDIR", meaning: "a path component is not a directory" });
  });
});
