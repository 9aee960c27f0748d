/**
 * r232: a file store's check lock (`.graphrefly.lock-check`, taken by conditional batches) was opened by name, so a
 * symbolic link there made a conditional batch create an SQLite file at the link's target. Now refused with
 * StorageError `corrupt-store` naming the link, and nothing is created there; the batch's key is not written.
 * Real file store, real SQLite lock databases.
 */
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { storageErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-lock-symlink-check-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("a file store whose check lock is a symbolic link", () => {
  it("a conditional batch is refused (corrupt-store) and creates nothing at the link's target", () => {
    const dir = join(root, "store");
    const target = join(root, "created-through-link");
    const b = fileBackend(dir);
    try {
      rmSync(join(dir, ".graphrefly.lock-check"), { force: true });
      symlinkSync(target, join(dir, ".graphrefly.lock-check"));
      const err = storageErrorOf(() => b.writeBatchIf({ key: "k", value: undefined }, [{ op: "put", key: "k", value: Uint8Array.of(1) }]));
      expect(err).toMatchObject({ code: "corrupt-store", details: { found: "a symbolic link", reason: "lock-not-a-file" } });
      expect(err.message).toMatch(/lock-check is a symbolic link/);
      expect(existsSync(target)).toBe(false);
      expect(b.read("k")).toBeUndefined();
    } finally {
      b.close();
    }
  });
});
