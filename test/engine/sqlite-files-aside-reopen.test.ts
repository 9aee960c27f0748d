/**
 * An engine's SQLite store whose files (s.db, -wal, -shm, -lock) are moved aside while their directory stays (a shared
 * data directory), its worker lost meanwhile: the reopen said not-owner "held-meanwhile" (final) and the pair stopped,
 * though the very files came back (review r298 F1). Now the reopen fails store-moved (may pass) while they are away
 * and opens them once back; what is written then is read back from the store. A directory removed and made again
 * stays not-owner: the lost writer's lock directory identity travels with its tenure to the reopen. Compare
 * test/engine/reopen-moved-aside (the directory itself moved aside).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StoreSpec } from "../../src/engine/index.js";
import { attachedOverFaultEngine } from "../support/fault-engine-pair.js";
import { restoredA } from "../support/restored-a.js";
import { outcome } from "../support/settled.js";
import { flushedBack, moveFiles, readBack } from "../support/store-aside.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-files-aside-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A SQLite store "s.db" in directory `dir` (made here) written through a fault engine: graph "g" with a = 1 stored. */
async function attached(dir: string) {
  mkdirSync(dir);
  const spec: StoreSpec = { kind: "sqlite", path: join(dir, "s.db") };
  return { spec, ...(await attachedOverFaultEngine(spec)) };
}

it("files moved aside (directory kept), worker lost: store-moved while away; moved back, written again", async () => {
  const dir = join(root, "data");
  const aside = join(root, "aside");
  mkdirSync(aside);
  const { spec, engine, g, h, heard, end } = await attached(dir);
  try {
    await engine.injectFault(spec, "terminate");
    const files = moveFiles(dir, aside, readdirSync(dir));
    g.set("a", 2);
    expect(await outcome(h.flush())).toBe("rejected backend-error"); // the reopen: store-moved, may pass
    expect(readdirSync(dir)).toEqual([]); // nothing made at the path
    moveFiles(aside, dir, files);
    const back = await flushedBack(() => h.flush(), 50);
    expect(heard).not.toContain("not-owner"); // before the fix: held-meanwhile, final
    if (back === "rejected write-refused") await h.rebaseline();
    g.set("a", 3);
    expect(await outcome(h.flush())).toBe("resolved");
  } finally {
    await end();
  }
  expect(await readBack(() => sqliteBackend(join(dir, "s.db"), { readOnly: true }), restoredA)).toBe(3);
}, 60_000);

it("directory removed and made again, worker lost: not-owner, nothing created there", async () => {
  const dir = join(root, "remade");
  const { spec, engine, g, h, heard, end } = await attached(dir);
  try {
    await engine.injectFault(spec, "terminate");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    g.set("a", 2);
    let res = await outcome(h.flush());
    for (let i = 0; i < 20 && res === "rejected backend-error" && !heard.includes("not-owner"); i++) res = await outcome(h.flush());
    expect(heard).toContain("not-owner");
    expect(existsSync(join(dir, "s.db"))).toBe(false);
  } finally {
    await end();
  }
}, 60_000);
