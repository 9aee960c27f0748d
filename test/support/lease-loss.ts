/**
 * Making a PostgreSQL writer lose its lease (test/tier/postgres-lease-lost*): a loopback proxy to the test server
 * that, once frozen, holds every byte the client sends and never answers, as a paused server or a cut network
 * would, until the writer's own lease deadline passed; thawed, it cuts the connections it held and lets new ones
 * pass, so the writer's next attempt finds its lease taken (not-owner).
 */
import {
  attachSnapshotStorage,
  createGraph,
  kvStorage,
  postgresBackend,
  snapshotStorage,
  walFrameCodec,
  type GraphCheckpointRecord,
} from "../../src/index.js";
import { type TestDatabase } from "./postgres-db.js";
import { type Pipe, type PipeHooks } from "./postgres-pipe.js";
import { until } from "./wait.js";

/** The writers' lease in these tests: short, so a frozen write outlives it quickly. */
export const LOST_LEASE_TTL_MS = 1_000;

export const codeOf = (e: unknown): unknown => (e as { code?: unknown } | undefined)?.code;

/** Settles `p` (it must settle: a hang fails the test by its timeout) and says how. */
export const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(() => "resolved", (e: unknown) => `rejected ${String(codeOf(e))}`);

export interface Freezable {
  readonly db: TestDatabase;
  /** The proxy's URL: connect the writer here. */
  readonly url: string;
  freeze(): void;
  /** Ends the freeze (idempotent): the connections it held are cut, new ones pass. */
  thaw(): void;
}

/** A freezable proxy to the test database, from the file's `useTestDatabase()` and `usePipes()`. */
export function useFreezable(
  database: () => Promise<TestDatabase>,
  pipes: (url: string, hooks: PipeHooks) => Promise<Pipe>,
): () => Promise<Freezable> {
  return async () => {
    const db = await database();
    let frozen = false;
    const pipe = await pipes(db.url, {
      toServer: (_d, pass) => {
        if (!frozen) pass();
      },
      frozen: () => frozen,
    });
    return {
      db,
      url: pipe.url,
      freeze: () => {
        frozen = true;
      },
      thaw: () => {
        if (!frozen) return;
        frozen = false;
        pipe.cut();
      },
    };
  };
}

/**
 * A graph `g` (one state node `v`) attached to kv WAL and snapshot tiers over a PostgreSQL store reached through
 * `f`, with a short lease, a small bound and fast retries; `tierErrors` collects the tiers' error codes.
 */
export async function attachedOver(f: Freezable, store: string) {
  const backend = await postgresBackend({ url: f.url, schema: f.db.schema, store, lease: { ttlMs: LOST_LEASE_TTL_MS } });
  const tierErrors: unknown[] = [];
  const onError = (e: Error): void => void tierErrors.push(codeOf(e));
  const tierOpts = { maxPendingBytes: 64 * 1024, retry: { initialMs: 1, maxMs: 1 }, onError };
  const wal = kvStorage(backend, { ...tierOpts, name: "w", codec: walFrameCodec });
  const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { ...tierOpts, name: "s" });
  const g = createGraph("g");
  g.state("v", "");
  const handle = attachSnapshotStorage(g, [{ snapshot, wal }], { onError: () => undefined });
  return { backend, tierErrors, wal, snapshot, g, handle };
}

/**
 * Loses the lease of an attachedOver() pair: stores a first wave, freezes the server, sets waves past the tiers'
 * bound (the handle then waits for room, the first write hanging on the frozen server), runs `whileFrozen`, and
 * thaws once the frozen write failed.
 */
export async function wavesThroughFreeze(
  f: Freezable,
  { g, handle, tierErrors }: Pick<Awaited<ReturnType<typeof attachedOver>>, "g" | "handle" | "tierErrors">,
  whileFrozen?: () => void,
): Promise<void> {
  g.set("v", "start");
  await handle.flush();
  f.freeze();
  const pad = "x".repeat(1000);
  for (let i = 0; i < 100; i++) g.set("v", `${i}${pad}`);
  whileFrozen?.();
  await until(() => tierErrors.length > 0, "the frozen write failed", { timeoutMs: 30_000 });
  f.thaw();
}
