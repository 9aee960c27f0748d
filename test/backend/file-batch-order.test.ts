/**
 * A file store's batch is not atomic: a crash (or a reader of the directory, such as another engine of this process
 * sharing the lock) between its renames sees a prefix of it applied. 43922e2 wrote a key the batch writes twice once,
 * at its LAST op's place, so [rec=R1, f1, f2, rec=R2] (a joined flush group: a shared-WAL record, frames, the record
 * again) renamed f1 and f2 before any rec: frames with no record naming their store, a state no prefix of the batch
 * has (review r188). Every op is now renamed at its own place; a key's ops next to each other are renamed once.
 * The renames' order is what the kernel reports (inotify through fs.watch), read up to a sentinel file written after.
 */
import { mkdtempSync, rmSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import type { BatchOp } from "../../src/backend/types.js";

const root = mkdtempSync(join(tmpdir(), "grf-file-batch-order-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));
const put = (key: string, value: string): BatchOp => ({ op: "put", key, value: enc(value) });

/** The keys' files renamed into place (in kernel order) while `ops` is written as one batch, and the store's end state. */
async function renamesOf(name: string, ops: BatchOp[]): Promise<{ renamed: string[]; state: Record<string, string | undefined> }> {
  const dir = join(root, name);
  const b = fileBackend(dir);
  const renamed: string[] = [];
  let ended!: () => void;
  const end = new Promise<void>((r) => (ended = r));
  const w = watch(dir, (event, file) => {
    if (event !== "rename" || file === null || file.startsWith(".") || !file.endsWith(".bin")) return;
    if (file === "zz-end.bin") ended();
    else renamed.push(file.slice(0, -".bin".length));
  });
  try {
    b.writeBatch(ops);
    b.writeBatch([put("zz-end", "sentinel")]);
    await end;
    const state: Record<string, string | undefined> = {};
    for (const op of ops) state[op.key] = dec(b.read(op.key));
    return { renamed, state };
  } finally {
    w.close();
    b.close();
  }
}

it("a key written twice, apart: each op renamed at its own place (the record before its frames), the last value kept", async () => {
  const { renamed, state } = await renamesOf("apart", [put("rec", "R1"), put("f1", "frame 1"), put("f2", "frame 2"), put("rec", "R2")]);
  // 43922e2: f1, f2, rec (frames before any record).
  expect(renamed).toEqual(["rec", "f1", "f2", "rec"]);
  expect(state).toEqual({ rec: "R2", f1: "frame 1", f2: "frame 2" });
});

it("a key's ops next to each other: renamed once, as the last of them (each state still a prefix's)", async () => {
  const { renamed, state } = await renamesOf("run", [put("a", "1"), put("a", "2"), put("b", "3"), { op: "delete", key: "b" }, put("b", "4")]);
  expect(renamed).toEqual(["a", "b"]);
  expect(state).toEqual({ a: "2", b: "4" });
});
