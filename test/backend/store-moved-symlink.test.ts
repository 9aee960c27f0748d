/**
 * A SQLite store opened through a symbolic link (review r178 of d33cbae): SQLite puts the -wal beside the link's
 * target, and the store-moved check looked for it beside the link, where nothing is ever found, so removing the real
 * -wal went unseen and later flushes were acknowledged into an unlinked file. Now the check looks where SQLite writes:
 * the flush rejects StorageError("backend-error"), details.reason "store-moved", file "wal", inline and through an
 * engine. Real files and a real worker.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { sqliteKv } from "../../src/tier/factories.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { assertBuilt } from "../reliability/fixtures/crash-harness.js";

let root: string;
let n = 0;
beforeAll(() => {
  assertBuilt();
  root = mkdtempSync(join(tmpdir(), "grf-sqlite-moved-link-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A store whose database lives in `real/` and is opened through a link in `links/`. */
function linkedStore(): { real: string; link: string } {
  const dir = join(root, `s${++n}`);
  mkdirSync(join(dir, "real"), { recursive: true });
  mkdirSync(join(dir, "links"));
  const real = join(dir, "real", "app.db");
  const link = join(dir, "links", "app.db");
  symlinkSync(real, link);
  return { real, link };
}

async function removedWalRefused(kv: KvStorageTier<number>, real: string): Promise<void> {
  kv.save("a", 1);
  await kv.flush();
  expect(existsSync(`${real}-wal`)).toBe(true); // SQLite's -wal sits beside the link's target
  unlinkSync(`${real}-wal`);
  kv.save("b", 2);
  const err = await kv.flush().then(
    () => new Error("flush resolved: a write into an unlinked -wal was acknowledged"),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  expect(err).toMatchObject({ code: "backend-error", details: { reason: "store-moved", file: "wal" } });
}

describe("a SQLite store opened through a symbolic link, its -wal removed", () => {
  it("inline: the flush rejects store-moved naming the -wal", async () => {
    const { real, link } = linkedStore();
    const kv = sqliteKv<number>(link);
    try {
      await removedWalRefused(kv, real);
    } finally {
      await kv.close().catch(() => undefined);
    }
  });

  it("through an engine: the flush rejects store-moved naming the -wal", async () => {
    const { real, link } = linkedStore();
    const engine = openStorageEngine({ threads: 1 });
    try {
      await removedWalRefused(engine.kv<number>({ kind: "sqlite", path: link }), real);
    } finally {
      await engine.close().catch(() => undefined);
    }
  });
});
