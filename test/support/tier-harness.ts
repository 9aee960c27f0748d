/**
 * Tier harnesses for the conformance suite: one fresh store per `open()`, tiers created inline (over a
 * counting/flaky wrapper of the real backend) or through a storage engine (worker-hosted actors).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileBackend } from "../../src/backend/file.js";
import { WRITE_FAULT_ENV } from "../../src/backend/file-faults.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { postgresBackend } from "../../src/backend/postgres.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { BackendSupports, StorageBackend } from "../../src/backend/types.js";
import type { Codec } from "../../src/codec/types.js";
import { openStorageEngine, storeKey, type StorageEngine } from "../../src/engine/index.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type {
  AppendLogStorageOptions,
  AppendLogStorageTier,
  BaseStorageTier,
  KvStorageOptions,
  KvStorageTier,
  SnapshotStorageOptions,
  SnapshotStorageTier,
} from "../../src/tier/types.js";
import type { TestDatabase } from "./postgres-db.js";
import { wrapBackend, type TestBackend } from "./test-backend.js";

export type BackendKind = "memory" | "file" | "sqlite" | "postgres";

/** The test file's PostgreSQL database (useTestDatabase()), needed by "postgres" factories: stores are named in it. */
export type PostgresTarget = () => Promise<TestDatabase>;
export type HarnessMode = "inline" | "worker";

/** Options both inline tiers and engine proxies accept (errors are collected by the harness). */
export type SnapshotOpts<T> = Omit<SnapshotStorageOptions<T>, "onError">;
export type AppendLogOpts<T> = Omit<AppendLogStorageOptions<T>, "onError">;
export type KvOpts<T> = Omit<KvStorageOptions<T>, "onError">;

/** Byte-level access to the store, bypassing the tiers under test. */
export interface RawStore {
  read(key: string): Promise<Uint8Array | undefined>;
  write(key: string, bytes: Uint8Array): Promise<void>;
  list(prefix?: string): Promise<string[]>;
}

/** Makes the store's writes fail from outside the tiers, until `heal()`. */
export interface WriteFaults {
  failWrites(): Promise<void>;
  heal(): Promise<void>;
}

/** What an inline harness additionally exposes for inline-only cases. */
export interface InlineParts {
  /** The real backend the tiers' data lives in. */
  readonly backend: StorageBackend;
  /** The wrapper the harness's tiers write through (counts, injected failures). */
  readonly probe: TestBackend;
}

/** Where a file or SQLite store lives, for other handles and processes to open it. */
export interface StoreLocation {
  readonly kind: "file" | "sqlite";
  readonly path: string;
}

export interface TierHarness {
  readonly mode: HarnessMode;
  readonly kind: BackendKind;
  /** File and SQLite stores only. */
  readonly location: StoreLocation | undefined;
  /**
   * File and SQLite stores only: a second harness on the same store, open beside this one in this process (inline:
   * another backend object; worker: another engine). Closing it leaves this one working.
   */
  share(): Promise<TierHarness>;
  /** The backend's manifest (persistent, list, ...). */
  readonly supports: BackendSupports;
  snapshot<T>(o?: SnapshotOpts<T>): SnapshotStorageTier<T>;
  appendLog<T>(o?: AppendLogOpts<T>): AppendLogStorageTier<T>;
  kv<T>(o?: KvOpts<T>): KvStorageTier<T>;
  readonly raw: RawStore;
  /** Failures reported to onError (inline: tier opts.onError; worker: engine opts.onError for this store). */
  readonly errors: Error[];
  /** Bytes and backend writes so far (inline: counted by the wrapper; worker: engine.stats()). */
  written(): Promise<{ bytes: number; writes: number }>;
  /** Commits so far (inline: the backend's successful write/writeBatch/delete calls; worker: the store's flushes). */
  commits(): Promise<number>;
  /** Present when this harness can make writes fail (inline always; worker for file and postgres stores). */
  readonly faults: WriteFaults | undefined;
  /** Present in inline mode only. */
  readonly inline: InlineParts | undefined;
  /**
   * Closes every tier of this harness and returns a fresh tier set over the same store: for persistent
   * backends through a new backend object (inline) or a new engine (worker), i.e. as a fresh process would.
   */
  reopen(): Promise<TierHarness>;
  /** Stops tracking a tier that is broken on purpose, so teardown does not close it. */
  untrack(tier: BaseStorageTier): void;
  close(): Promise<void>;
}

export interface HarnessFactory {
  readonly name: string;
  readonly mode: HarnessMode;
  readonly kind: BackendKind;
  /** Whether harnesses expose `faults` (known before any harness exists, so cases register statically). */
  readonly faults: boolean;
  /** Whether harnesses have a `location` and `share()` (file and SQLite stores). */
  readonly sharedStores: boolean;
  open(): Promise<TierHarness>;
  cleanup(): Promise<void>;
}

/** Identity codec: a kv proxy with it moves raw bytes between the main thread and the actor. */
export const rawBytesCodec: Codec<Uint8Array> = {
  name: "raw-bytes",
  version: 1,
  encode: (v) => v,
  decode: (b) => b,
};

/** `location`: a path, or for postgres the store's name in the test database. */
async function openReal(kind: BackendKind, location: string, pg: PostgresTarget | undefined): Promise<StorageBackend> {
  switch (kind) {
    case "memory":
      return memoryBackend();
    case "file":
      return fileBackend(location);
    case "sqlite":
      return sqliteBackend(location);
    case "postgres": {
      const db = await postgresTarget(pg)();
      return postgresBackend({ url: db.url, schema: db.schema, store: location });
    }
  }
}

function locationOf(kind: BackendKind, path: string): StoreLocation | undefined {
  return kind === "file" || kind === "sqlite" ? { kind, path } : undefined;
}

function noSharing(): Promise<TierHarness> {
  return Promise.reject(new Error("harness bug: share() needs a file or SQLite store"));
}

function postgresTarget(pg: PostgresTarget | undefined): PostgresTarget {
  if (!pg) throw new Error("harness bug: a postgres factory needs the test database (useTestDatabase())");
  return pg;
}

async function supportsOf(kind: BackendKind, root: string, pg: PostgresTarget | undefined): Promise<BackendSupports> {
  const b = await openReal(kind, kind === "postgres" ? "manifest" : join(root, `manifest-${kind}${kind === "sqlite" ? ".db" : ""}`), pg);
  const s = b.supports;
  await b.close?.();
  return s;
}

async function closeAll(tiers: BaseStorageTier[]): Promise<void> {
  const errors: unknown[] = [];
  for (const t of tiers.splice(0)) {
    try {
      await t.close();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
}

function untrackFrom(tiers: BaseStorageTier[], tier: BaseStorageTier): void {
  const i = tiers.indexOf(tier);
  if (i >= 0) tiers.splice(i, 1);
}

/**
 * Makes the server refuse every row change of one store (a trigger raising an error) until healed: the actor's writes
 * fail as they would on a database that refuses them, with the real backend in between.
 */
function postgresFaults(pg: PostgresTarget, store: string): WriteFaults {
  let trigger: string | undefined;
  const run = async (sql: string): Promise<void> => {
    const db = await pg();
    const c = await db.raw();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  return {
    async failWrites() {
      if (trigger !== undefined) return;
      const db = await pg();
      const name = `fail_${Buffer.from(store).toString("hex")}`;
      await run(`
        CREATE OR REPLACE FUNCTION "${db.schema}".grf_fail_writes() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF COALESCE(NEW.store, OLD.store) = TG_ARGV[0] THEN RAISE EXCEPTION 'injected write failure'; END IF;
          RETURN COALESCE(NEW, OLD);
        END $$;
        CREATE TRIGGER "${name}" BEFORE INSERT OR UPDATE OR DELETE ON "${db.schema}".graphrefly_storage
          FOR EACH ROW EXECUTE FUNCTION "${db.schema}".grf_fail_writes('${store.replace(/'/g, "''")}');`);
      trigger = name;
    },
    async heal() {
      if (trigger === undefined) return;
      const db = await pg();
      await run(`DROP TRIGGER "${trigger}" ON "${db.schema}".graphrefly_storage`);
      trigger = undefined;
    },
  };
}

/** The suffix of the marker beside a file store's directory that fails its writes in an engine's worker. */
const WRITE_FAULT_SUFFIX = ".fail-writes";

/**
 * Makes a file store's writes in an engine's worker fail with EIO (a passing failure: the store's directory and lock
 * stay as they are) while a marker file sits beside its directory (src/backend/file-faults.ts, WRITE_FAULT_ENV).
 * Moving the directory aside would read as a removed store, whose writes end for good (task 272), so heal() could
 * not bring them back.
 */
function markerFaults(dir: string): WriteFaults {
  const marker = `${dir}${WRITE_FAULT_SUFFIX}`;
  return {
    async failWrites() {
      writeFileSync(marker, "");
    },
    async heal() {
      rmSync(marker, { force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------- inline

export function inlineFactory(kind: BackendKind, pg?: PostgresTarget): HarnessFactory {
  const root = mkdtempSync(join(tmpdir(), `grf-tier-inline-${kind}-`));
  let n = 0;
  return {
    name: `${kind} inline`,
    mode: "inline",
    kind,
    faults: true,
    sharedStores: locationOf(kind, "") !== undefined,
    async open() {
      const location = kind === "postgres" ? `store-${n++}` : join(root, `store-${n++}${kind === "sqlite" ? ".db" : ""}`);
      const backend = await openReal(kind, location, pg);
      return inlineHarness(kind, backend, backend.supports, () => openReal(kind, location, pg), locationOf(kind, location));
    },
    async cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

function inlineHarness(
  kind: BackendKind,
  backend: StorageBackend,
  supports: BackendSupports,
  reopenBackend: () => Promise<StorageBackend>,
  location: StoreLocation | undefined,
): TierHarness {
  const probe = wrapBackend(backend, { sizes: true });
  const tiers: BaseStorageTier[] = [];
  const errors: Error[] = [];
  const onError = (e: Error): void => {
    errors.push(e);
  };
  const track = <Tier extends BaseStorageTier>(t: Tier): Tier => {
    tiers.push(t);
    return t;
  };
  let open = true;
  const h: TierHarness = {
    mode: "inline",
    kind,
    location,
    share: location ? async () => inlineHarness(kind, await reopenBackend(), supports, reopenBackend, location) : noSharing,
    supports,
    snapshot: (o) => track(snapshotStorage(probe, { ...o, onError })),
    appendLog: (o) => track(appendLogStorage(probe, { ...o, onError })),
    kv: (o) => track(kvStorage(probe, { ...o, onError })),
    raw: {
      read: async (key) => backend.read(key),
      write: async (key, bytes) => backend.write(key, bytes),
      list: async (prefix) => [...((await backend.list?.(prefix)) ?? [])],
    },
    errors,
    written: async () => ({ bytes: probe.counts.bytes, writes: probe.counts.puts }),
    commits: async () => probe.counts.calls,
    faults: {
      failWrites: async () => probe.failAll(),
      heal: async () => probe.heal(),
    },
    inline: { backend, probe },
    async reopen() {
      await closeAll(tiers);
      open = false;
      if (!supports.persistent) return inlineHarness(kind, backend, supports, reopenBackend, location);
      await backend.close?.();
      return inlineHarness(kind, await reopenBackend(), supports, reopenBackend, location);
    },
    untrack: (tier) => untrackFrom(tiers, tier),
    async close() {
      try {
        await closeAll(tiers);
      } finally {
        if (open) await backend.close?.();
        open = false;
      }
    },
  };
  return h;
}

// ---------------------------------------------------------------------------------------------- worker

/** One engine shared by a describe block; replaced when a harness needs a fresh process for a persistent store. */
class EngineHolder {
  engine: StorageEngine;
  private readonly errors = new Map<string, Error[]>();

  constructor() {
    this.engine = this.start();
  }

  private start(): StorageEngine {
    return openStorageEngine({
      threads: 1,
      onError: (err, ctx) => {
        const key = storeKey(ctx.store);
        const list = this.errors.get(key);
        if (list) list.push(err);
        else this.errors.set(key, [err]);
      },
    });
  }

  errorsOf(store: StoreSpec): Error[] {
    const key = storeKey(store);
    let list = this.errors.get(key);
    if (!list) this.errors.set(key, (list = []));
    return list;
  }

  async renew(): Promise<void> {
    await this.engine.close();
    this.engine = this.start();
  }

  async close(): Promise<void> {
    await this.engine.close();
  }
}

export function workerFactory(kind: BackendKind, pg?: PostgresTarget): HarnessFactory {
  const root = mkdtempSync(join(tmpdir(), `grf-tier-worker-${kind}-`));
  // Before any engine starts: its workers copy process.env when they are made, and read the switch once each. Left
  // set for the file's process (a worker made again later needs it too); a store without a marker never fails by it.
  if (kind === "file") process.env[WRITE_FAULT_ENV] = WRITE_FAULT_SUFFIX;
  let supports: BackendSupports | undefined;
  let holder: EngineHolder | undefined;
  let n = 0;
  return {
    name: `${kind} worker`,
    mode: "worker",
    kind,
    faults: kind === "file" || kind === "postgres",
    sharedStores: locationOf(kind, "") !== undefined,
    async open() {
      supports ??= await supportsOf(kind, root, pg);
      holder ??= new EngineHolder();
      const id = `store-${n++}`;
      let store: StoreSpec;
      let faults: WriteFaults | undefined;
      if (kind === "memory") store = { kind: "memory", name: `${id}-${process.pid}` };
      else if (kind === "file") {
        store = { kind: "file", dir: join(root, id) };
        faults = markerFaults(store.dir);
      } else if (kind === "sqlite") store = { kind: "sqlite", path: join(root, `${id}.db`) };
      else {
        const target = postgresTarget(pg);
        const db = await target();
        store = { kind: "postgres", url: db.url, schema: db.schema, store: id };
        faults = postgresFaults(target, id);
      }
      return workerHarness(kind, store, holder, supports, faults);
    },
    async cleanup() {
      try {
        await holder?.close();
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}

function workerHarness(
  kind: BackendKind,
  store: StoreSpec,
  holder: EngineHolder,
  supports: BackendSupports,
  faults: WriteFaults | undefined,
): TierHarness {
  const engine = holder.engine;
  const tiers: BaseStorageTier[] = [];
  const errors = holder.errorsOf(store);
  const track = <Tier extends BaseStorageTier>(t: Tier): Tier => {
    tiers.push(t);
    return t;
  };
  let rawKv: KvStorageTier<Uint8Array> | undefined;
  const raw = (): KvStorageTier<Uint8Array> =>
    (rawKv ??= track(engine.kv<Uint8Array>(store, { name: "raw-access", codec: rawBytesCodec })));
  const path = store.kind === "file" ? store.dir : store.kind === "sqlite" ? store.path : "";
  const location = locationOf(kind, path);
  const h: TierHarness = {
    mode: "worker",
    kind,
    location,
    share: location
      ? async () => {
          // Another engine: its own worker thread and actor on the same store.
          const other = new EngineHolder();
          const shared = workerHarness(kind, store, other, supports, faults);
          return {
            ...shared,
            async close() {
              try {
                await shared.close();
              } finally {
                await other.close();
              }
            },
          };
        }
      : noSharing,
    supports,
    snapshot: (o) => track(engine.snapshot(store, o)),
    appendLog: (o) => track(engine.appendLog(store, o)),
    kv: (o) => track(engine.kv(store, o)),
    raw: {
      read: (key) => raw().load(key),
      async write(key, bytes) {
        const kv = raw();
        kv.save(key, bytes.slice()); // a copy: main-thread bytes are transferred to the worker
        await kv.flush();
      },
      list: (prefix) => raw().list(prefix),
    },
    errors,
    async written() {
      const key = storeKey(store);
      const s = (await engine.stats()).find((x) => storeKey(x.store) === key);
      return { bytes: s?.bytesWritten ?? 0, writes: s?.frames ?? 0 };
    },
    async commits() {
      const key = storeKey(store);
      return (await engine.stats()).find((x) => storeKey(x.store) === key)?.flushes ?? 0;
    },
    faults,
    inline: undefined,
    async reopen() {
      await closeAll(tiers);
      if (supports.persistent) await holder.renew();
      return workerHarness(kind, store, holder, supports, faults);
    },
    untrack: (tier) => untrackFrom(tiers, tier),
    close: () => closeAll(tiers),
  };
  return h;
}
