/**
 * Issue 11 item 8 / issue 14 item 4, engine: a store whose open failed for a transient reason does not poison the
 * tiers created before: their next operation opens it again, and while it fails the error names the OS cause.
 * Real file systems: a small tmpfs filled to the last block (ENOSPC) and one mounted read-only (EROFS, the
 * "permission" a root process can still be refused), each fixed later while the same tier is kept.
 */
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { describeWithTmpfs, tmpfsRoot } from "../support/tmpfs.js";
import { assertBuilt } from "./fixtures/crash-harness.js";

const disks = tmpfsRoot("worker-open-retry");
beforeAll(() => assertBuilt());
afterAll(() => disks.remove());

async function rejection(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

describeWithTmpfs(import.meta.url, "an engine store whose open failed opens again at the next operation", () => {
  it.for([
    ["a full disk, freed later", "ENOSPC"],
    ["a read-only mount, remounted read-write", "EROFS"],
  ] as const)("%s: the same tier works once the cause is gone", { timeout: 60_000 }, async ([, osCode], { expect }) => {
    const disk = osCode === "ENOSPC" ? disks.mount("full", 256) : disks.mount("ro", 256, { readOnly: true });
    if (osCode === "ENOSPC") disk.fill();
    const dir = disk.dir;
    const heard: Error[] = [];
    const engine = openStorageEngine({ threads: 1, onError: (err) => heard.push(err) });
    try {
      const spec: StoreSpec = { kind: "sqlite", path: join(dir, "s.db") };
      const kv = engine.kv<number>(spec, { name: "kv" });
      kv.save("early", 1);
      // Every try fails while the cause lasts, naming it (the first flush, and the next operation's new open).
      for (let i = 0; i < 2; i++) {
        const err = await rejection(kv.flush());
        expect(err.details.osCode, err.message).toBe(osCode);
      }
      expect(heard.some((e) => (e as StorageError).details?.osCode === osCode)).toBe(true);

      if (osCode === "ENOSPC") disk.free();
      else disk.remountWritable();

      kv.save("later", 2);
      await kv.flush();
      expect(await kv.load("later")).toBe(2);
      expect(await kv.load("early")).toBeUndefined(); // refused while the store could not open, and reported so
    } finally {
      await engine.close().catch(() => undefined);
    }
  });
});
