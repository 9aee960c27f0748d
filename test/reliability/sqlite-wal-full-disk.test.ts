/**
 * A SQLite store on a disk that fills takes writes again once space comes back (design §3.60, review r388 finding 1).
 * Its WAL was checkpointed by a count of frames (1000 of 8 KiB pages, 4000 under the engine's checkpointer): on a small
 * disk it filled the disk before its first checkpoint, and then no write, and no checkpoint (the database file has to
 * grow for it), could go through; space freed went to the WAL again. Real tmpfs mounts, real engine threads, and a
 * fresh process that opens the store as its writer at the end.
 */
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { sqliteKv } from "../../src/tier/factories.js";
import { kvInChild } from "../support/tier-child.js";
import { describeWithTmpfs, tmpfsRoot } from "../support/tmpfs.js";

const disks = tmpfsRoot("sqlite-wal-full");
afterAll(() => disks.remove());

const KEYS = 50;
const PAD = "w".repeat(2048);

interface Value {
  readonly round: number;
  readonly pad: string;
}

/** What the test uses of a kv tier (an engine's, or one inline): drained() resolves once all it took is stored. */
interface Kv {
  save(key: string, value: Value): void;
  flush(): Promise<void>;
  drained?: () => Promise<void>;
}

interface Opened {
  readonly kv: Kv;
  close(): Promise<void>;
}

const WHERE = {
  engine: (path: string): Opened => {
    const engine = openStorageEngine({ threads: 1, onError: () => undefined });
    return { kv: engine.kv<Value>({ kind: "sqlite", path }), close: () => engine.close() };
  },
  inline: (path: string): Opened => {
    const kv = sqliteKv<Value>(path, { onError: () => undefined });
    return { kv, close: () => kv.close() };
  },
} as const;

/** Overwrites the same KEYS keys, round after round, a flush a round; the flushes' failures, as code/osCode. */
async function overwrite(kv: Kv, from: number, rounds: number): Promise<string[]> {
  const failures: string[] = [];
  for (let round = from; round < from + rounds; round++) {
    for (let i = 0; i < KEYS; i++) kv.save(`k${i}`, { round, pad: PAD });
    await kv.flush().catch((e: unknown) => failures.push(`round ${round}: ${failure(e)}`));
  }
  return failures;
}

const failure = (e: unknown): string => (e instanceof StorageError ? `${e.code}/${String(e.details.osCode)}` : String(e));

/** Waits for everything the tier took to be stored. */
async function drain(kv: Kv): Promise<void> {
  expect(kv.drained).toBeTypeOf("function");
  await kv.drained?.();
}

/** The store as a fresh process opening it as its writer finds it: k0's round, and whether its own write went in. */
async function reopened(path: string): Promise<{ opened: boolean; round: unknown; keys: number; write: string }> {
  const r = await kvInChild("sqlite", path, "write", "k0");
  if (!r.opened) return { opened: false, round: r.error.code, keys: 0, write: r.error.message };
  return { opened: true, round: (r.value as Value | null)?.round, keys: r.keys.length, write: r.write.code };
}

describeWithTmpfs(import.meta.url, "a SQLite store on a disk that fills", () => {
  for (const where of ["engine", "inline"] as const) {
    it(`${where}: alone on a 4 MiB disk, its WAL never fills it (100 KiB of data overwritten ~20 MiB over)`, { timeout: 120_000 }, async () => {
      const disk = disks.mount(`alone-${where}`, 4096);
      const path = join(disk.dir, "s.db");
      const { kv, close } = WHERE[where](path);
      expect(await overwrite(kv, 0, 200)).toEqual([]);
      await drain(kv);
      await close();
      expect(await reopened(path)).toEqual({ opened: true, round: 199, keys: KEYS, write: "written" });
    });

    it(`${where}: filled by another file, it fails ENOSPC, then takes writes again once some space is freed, and keeps taking them`, { timeout: 120_000 }, async () => {
      // Room enough at the open that the WAL's threshold (1000 frames, ~8 MiB) is more than the space freed below.
      const disk = disks.mount(`filled-${where}`, 40 * 1024);
      const path = join(disk.dir, "s.db");
      const { kv, close } = WHERE[where](path);
      expect(await overwrite(kv, 0, 2)).toEqual([]);
      // 3 MiB the test frees later, less than the WAL's threshold; the rest of the disk stays full to the end.
      const room = join(disk.dir, "room");
      writeFileSync(room, Buffer.alloc(3 << 20));
      disk.fill();
      const failures = await overwrite(kv, 2, 60);
      expect(failures.length).toBeGreaterThan(0);
      expect(new Set(failures.map((f) => f.replace(/^round \d+: /, "")))).toEqual(new Set(["backend-error/ENOSPC"]));
      rmSync(room);
      // Before: the WAL took the 3 MiB freed, filled the disk again, and no write went through after.
      expect(await overwrite(kv, 62, 200)).toEqual([]);
      await drain(kv);
      await close();
      disk.free();
      expect(await reopened(path)).toEqual({ opened: true, round: 261, keys: KEYS, write: "written" });
    });
  }
});
