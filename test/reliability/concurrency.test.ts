/**
 * Concurrency on one store.
 *
 * 1. N proxies x M concurrent tasks issuing saves, appends, flushes and rollbacks (none awaited in lockstep) on
 *    one engine store, all proxies sharing one kv key space and one append-log bucket. Expected result, exactly:
 *    replay every call in the order the main thread made it against a model where each proxy has its own pending
 *    buffer — save/append adds to it, flush commits it (kv: in save order, last write wins; log: appended to the
 *    bucket in flush order), rollback empties it. The store must equal the model: nothing lost, duplicated or
 *    reordered. Each flush, when it resolves, must have made durable what it committed when it was called. Each
 *    proxy also saves to the shared keys through a sync-through kv tier (no debounce): its writes are owed to the
 *    store at their call, as inline over SQLite, so the model stores them at once (the actor holds them to the end of
 *    its run over the queued messages, and must still land them before a later explicit flush: design §3.30).
 * 2. Two processes against one store: the second gets StorageError("store-locked") — through its engine and inline —
 *    a read-only handle reads the live store, and the first keeps writing unaffected; once it is killed -9 the lock is gone and
 *    every acknowledged write is there.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, it, type ExpectStatic } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import type { AppendLogStorageTier, KvStorageTier } from "../../src/tier/types.js";
import { assertBuilt, envCount, killAllChildren, prng, startChild, tempDir, type TempDir } from "./fixtures/crash-harness.js";
import { KEY_PREFIX, keyOf, sameValue, valueOf } from "./fixtures/kv-crash-model.mjs";

const ROUNDS = envCount("CONCURRENCY_ROUNDS", 2);
const PROXIES = 4;
const TASKS_PER_PROXY = 3;
const OPS_PER_TASK = 120;

let tmp: TempDir;
beforeAll(() => {
  assertBuilt();
  tmp = tempDir("concurrency");
});
afterAll(async () => {
  await killAllChildren();
  tmp.remove();
});


type Kind = "sqlite" | "file";
const specOf = (kind: Kind, name: string): StoreSpec =>
  kind === "sqlite" ? { kind, path: join(tmp.dir, `${name}.db`) } : { kind, dir: join(tmp.dir, name) };

/** The model: what the store must hold after the calls made so far, given each proxy's pending buffer. */
class Model {
  readonly kv = new Map<string, string>();
  readonly log: string[] = [];
  /** Writes a rollback threw away (so the test knows rollbacks really raced with pending data). */
  discarded = 0;
  private readonly pendingKv: Array<Array<[string, string]>>;
  private readonly pendingLog: string[][];

  constructor(proxies: number) {
    this.pendingKv = Array.from({ length: proxies }, () => []);
    this.pendingLog = Array.from({ length: proxies }, () => []);
  }

  save(p: number, key: string, value: string): void {
    this.pendingKv[p]!.push([key, value]);
  }

  append(p: number, entry: string): void {
    this.pendingLog[p]!.push(entry);
  }

  /** Returns what this flush makes durable: the log as it must be once the flush resolves (a prefix later). */
  flush(p: number): { log: string[]; kv: Map<string, string> } {
    for (const [k, v] of this.pendingKv[p]!) this.kv.set(k, v);
    this.log.push(...this.pendingLog[p]!);
    this.pendingKv[p] = [];
    this.pendingLog[p] = [];
    return { log: [...this.log], kv: new Map(this.kv) };
  }

  rollback(p: number): void {
    this.discarded += this.pendingKv[p]!.length + this.pendingLog[p]!.length;
    this.pendingKv[p] = [];
    this.pendingLog[p] = [];
  }
}

interface Proxies {
  kv: KvStorageTier<string>;
  /** Sync-through: each save is owed to the store at its call. */
  syncKv: KvStorageTier<string>;
  log: AppendLogStorageTier<string>;
}

/** One random round on a fresh store: concurrent tasks against the model, then the store read back in a fresh engine. */
async function runModelRound(kind: Kind, round: number, expect: ExpectStatic): Promise<void> {
  const spec = specOf(kind, `shared-${round}`);
  const model = new Model(PROXIES);
  const flushChecks: Promise<void>[] = [];
  const e = openStorageEngine({ threads: 2 });
  try {
    const rnd = prng(0xabc + round * 31 + (kind === "file" ? 7 : 0));
    const proxies: Proxies[] = Array.from({ length: PROXIES }, (_, p) => ({
      kv: e.kv<string>(spec, { name: `kv-${p}`, debounceMs: 60_000 }),
      syncKv: e.kv<string>(spec, { name: `sync-kv-${p}` }),
      // Every proxy appends to the same bucket: segment numbers must not collide.
      log: e.appendLog<string>(spec, { name: `log-${p}`, debounceMs: 60_000, keyOf: () => "shared-bucket" }),
    }));
    let counter = 0;

    const task = async (p: number, t: number): Promise<void> => {
      const { kv, log, syncKv } = proxies[p]!;
      for (let i = 0; i < OPS_PER_TASK; i++) {
        const r = rnd();
        const tag = `p${p}t${t}#${counter++}`;
        if (r < 0.1) {
          const key = `k${Math.floor(rnd() * 12)}`;
          syncKv.save(key, tag);
          model.kv.set(key, tag); // stored from its call on
        } else if (r < 0.35) {
          const key = `k${Math.floor(rnd() * 12)}`; // shared keys: proxies overwrite each other
          kv.save(key, tag);
          model.save(p, key, tag);
        } else if (r < 0.7) {
          log.appendEntries([tag]);
          model.append(p, tag);
        } else if (r < 0.9) {
          const expected = model.flush(p);
          // Both tiers of the proxy flush; neither is awaited here (M flushes stay in flight).
          flushChecks.push(
            Promise.all([kv.flush(), log.flush()]).then(async () => {
              const stored = (await log.loadEntries()).entries;
              // Durable at resolution: what the model committed at the call is a prefix of the stored log.
              expect(stored.slice(0, expected.log.length)).toEqual(expected.log);
            }),
          );
        } else {
          kv.rollback();
          log.rollback();
          model.rollback(p);
        }
        if (rnd() < 0.3) await new Promise((res) => setImmediate(res));
      }
    };

    const tasks: Promise<void>[] = [];
    for (let p = 0; p < PROXIES; p++) for (let t = 0; t < TASKS_PER_PROXY; t++) tasks.push(task(p, t));
    await Promise.all(tasks);
    for (let p = 0; p < PROXIES; p++) {
      model.flush(p);
      await Promise.all([proxies[p]!.kv.flush(), proxies[p]!.log.flush(), proxies[p]!.syncKv.flush()]);
    }
    await Promise.all(flushChecks);
  } finally {
    await e.close().catch(() => undefined);
  }
  // Read back through a fresh engine: it must equal the model.
  const fresh = openStorageEngine({ threads: 1 });
  try {
    const reader = fresh.kv<string>(spec, { name: "reader" });
    const stored = new Map<string, string>();
    for (const key of await reader.list("k")) stored.set(key, (await reader.load(key)) as string);
    expect(stored).toEqual(model.kv);
    const log = fresh.appendLog<string>(spec, { name: "reader-log", keyOf: () => "shared-bucket" });
    const entries = (await log.loadEntries({ keyFilter: "shared-bucket" })).entries;
    expect(new Set(entries).size, "duplicated entries").toBe(entries.length);
    expect(entries).toEqual(model.log);
    expect(model.discarded).toBeGreaterThan(0);
    expect(flushChecks.length).toBeGreaterThan(PROXIES * TASKS_PER_PROXY);
  } finally {
    await fresh.close();
  }
}

describe.concurrent("N proxies x M concurrent flushes and rollbacks on one store", () => {
  const title = `%s: ${ROUNDS} random rounds; the store equals the call-order model exactly`;
  it.for<Kind>(["sqlite", "file"])(title, { timeout: 120_000 }, async (kind, { expect }) => {
    for (let round = 0; round < ROUNDS; round++) await runModelRound(kind, round, expect);
  });
});

describe.concurrent("two processes, one store", () => {
  const title = "%s: a second writer gets StorageError('store-locked') everywhere, a reader reads; the first keeps writing; kill -9 frees the store";
  it.for<Kind>(["sqlite", "file"])(title, { timeout: 60_000 }, async (kind, { expect }) => {
    const store = kind === "sqlite" ? join(tmp.dir, "locked.db") : join(tmp.dir, "locked");
    const spec: StoreSpec = kind === "sqlite" ? { kind, path: store } : { kind, dir: store };
    const first = startChild("kv-crash-writer.mjs", { kind, store, acked: -1 });
    await first.waitFor("ack", 3);

    // A second process (another writer child) is refused, with the typed error, and says so.
    const second = startChild("kv-crash-writer.mjs", { kind, store, acked: -1 });
    const refused = await second.waitFor("error");
    await second.ended;
    expect(refused.code, String(refused.message)).toBe("store-locked");
    expect(second.messages.filter((m) => m.t === "ack")).toEqual([]);

    // This process: through an engine, inline, and read-only.
    const engine = openStorageEngine({ threads: 1 });
    try {
      const kv = engine.kv<unknown>(spec, { name: "intruder" });
      const viaEngine = await kv.load(keyOf(0)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(viaEngine).toBeInstanceOf(StorageError);
      expect((viaEngine as StorageError).code).toBe("store-locked");
      const inline = ((): unknown => {
        try {
          const b = kind === "sqlite" ? sqliteBackend(store) : fileBackend(store);
          b.close();
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(inline).toBeInstanceOf(StorageError);
      expect((inline as StorageError).code).toBe("store-locked");
      // A read-only handle takes no lock: it reads the live store while the first process writes.
      const reader = kind === "sqlite" ? sqliteBackend(store, { readOnly: true }) : fileBackend(store, { readOnly: true });
      try {
        const first = await kvStorage<unknown>(reader, { name: "reader" }).load(keyOf(0));
        expect(sameValue(first, valueOf(0))).toBe(true);
      } finally {
        reader.close();
      }
    } finally {
      await engine.close();
    }

    // The first process never noticed: it keeps acknowledging writes after all those attempts.
    const acksBefore = first.messages.filter((m) => m.t === "ack").length;
    await first.waitFor("ack", acksBefore + 3);
    const messages = await first.kill();
    expect(messages.find((m) => m.t === "error")).toBeUndefined();
    const acked = Math.max(...messages.filter((m) => m.t === "ack").map((m) => m.upTo as number));

    // kill -9 released the lock (the kernel drops it with the process): the store opens, everything acked is there.
    const b = kind === "sqlite" ? sqliteBackend(store) : fileBackend(store);
    try {
      const reader = kvStorage<unknown>(b, { name: "reader" });
      const keys = await reader.list(KEY_PREFIX);
      expect(keys.length).toBeGreaterThanOrEqual(acked + 1);
      for (let i = 0; i <= acked; i++) expect(sameValue(await reader.load(keyOf(i)), valueOf(i))).toBe(true);
      reader.save("after", 1);
      await reader.flush();
      expect(await reader.load("after")).toBe(1);
    } finally {
      b.close();
    }
  });
});
