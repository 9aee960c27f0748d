/**
 * Stores whose next write of one key fails once, in each kind the tier tests cover: memory behind the fault wrapper
 * (answering on a later macrotask, as PostgreSQL does, and synchronously), a real SQLite file whose row a trigger of
 * another connection refuses, and a file store behind the fault wrapper. The setup of the stale-retry tests
 * (cross-tier-stale-retry, cross-tier-stale-retry-jobs).
 */
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { acceptRows, rejectRow } from "../engine/fixtures/refused-rows.js";
import { faultyBackend } from "./faulty-backend.js";

export interface FailOnceStore {
  readonly backend: StorageBackend;
  /** The next write of key `k` (exactly) fails, once; over SQLite every row whose key starts with `k` until heal(). */
  failOnce(k: string): void;
  /** Drops the SQLite trigger (and, with `healWrapper`, the fault wrapper's injections not used yet). */
  heal(): void;
  /** What a fresh tier reads for `k` (after the others closed). */
  stored(k: string): Promise<unknown>;
  close(): void;
}

/**
 * The four kinds, named, each made when called; `path(name)` places the SQLite file and the file store. The fault
 * wrapper fails a key's next write and its next batch once each: by default heal() leaves the one not used armed
 * (the write lane's tests), with `healWrapper` it drops it.
 */
export function failOnceStores(path: (name: string) => string, opts: { healWrapper?: boolean } = {}): Array<[string, () => FailOnceStore]> {
  const faulty = (inner: StorageBackend, async: boolean): FailOnceStore => {
    const fb = faultyBackend(inner, [], { async });
    return {
      backend: fb,
      failOnce(k) {
        const key = new RegExp(`^${k}$`);
        fb.inject({ op: "writeBatch", errno: "EIO", times: 1, key });
        fb.inject({ op: "write", errno: "EIO", times: 1, key });
      },
      heal: () => void (opts.healWrapper === true && fb.heal()),
      stored: async (k) => kvStorage<unknown>(fb, { name: "reader" }).load(k),
      close: () => undefined,
    };
  };
  const sqlite = (): FailOnceStore => {
    const file = path("store.db");
    const b = sqliteBackend(file);
    let armed = false;
    return {
      backend: b,
      failOnce(k) {
        rejectRow(file, k);
        armed = true;
      },
      heal() {
        if (armed) acceptRows(file);
        armed = false;
      },
      stored: async (k) => kvStorage<unknown>(b, { name: "reader" }).load(k),
      close: () => b.close(),
    };
  };
  return [
    ["memory, async (PostgreSQL-like)", () => faulty(memoryBackend(), true)],
    ["memory, sync", () => faulty(memoryBackend(), false)],
    ["SQLite file", sqlite],
    ["file store", () => faulty(fileBackend(path("files")), false)],
  ];
}
