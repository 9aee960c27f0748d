/** A small store of every tier's shape, for the tests that open one again read-only (engine and inline). */
import { fileAppendLog, fileKv, fileSnapshot, sqliteAppendLog, sqliteKv, sqliteSnapshot } from "../../src/tier/index.js";

/** Writes a snapshot { name: "g", v: 1 }, kv records k/1 = 1 and k/2 = 2 and an append log "log" of [1, 2, 3] at `path`, inline, and closes them. */
export async function seedEveryTier(kind: "sqlite" | "file", path: string): Promise<void> {
  const snap = kind === "sqlite" ? sqliteSnapshot<{ name: string; v: number }>(path) : fileSnapshot<{ name: string; v: number }>(path);
  const kv = kind === "sqlite" ? sqliteKv<number>(path) : fileKv<number>(path);
  const log = kind === "sqlite" ? sqliteAppendLog<number>(path, { name: "log" }) : fileAppendLog<number>(path, { name: "log" });
  snap.save({ name: "g", v: 1 });
  kv.save("k/1", 1);
  kv.save("k/2", 2);
  log.appendEntries([1, 2, 3]);
  await Promise.all([snap.close(), kv.close(), log.close()]);
}
