/**
 * Fast failover (lease.fastFailover, postgres-lease.ts): a holder holds a session advisory lock on its lease
 * connection, and a writer waiting for the store that saw it held takes the store over as soon as the server lets it
 * go, before the lease row's expiry. Timings are never asserted: "before the expiry" is read from the database (the
 * new holder's acquired_at against the old holder's expires_at as last seen before it died, which its real one can
 * only exceed). The epoch, not the lock, keeps an old holder from landing a write.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { postgresBackend, simulatePausedHolder, type PostgresBackend, type PostgresLeaseOptions } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";
import { killChildren } from "../support/child-processes.js";
import { leaseRow } from "../support/lease-row.js";
import { useTestDatabase, type TestDatabase } from "../support/postgres-db.js";
import { useAnswerLosingProxies } from "../support/postgres-proxy.js";
import { namedUrl, sessionName, startWriter, storedKeys, WAITING_FOR_LEASE_SQL, type Writer } from "../support/postgres-writer-child.js";
import { until } from "../support/wait.js";

const database = useTestDatabase();
const proxies = useAnswerLosingProxies();
/** The child holders' lease: long, so a takeover at its expiry could never pass for a fast one. */
const HOLDER: PostgresLeaseOptions = { ttlMs: 10_000, renewEveryMs: 1000 };
/** What a waiting contender is given. */
const WAIT: PostgresLeaseOptions = { waitMs: 30_000 };
const timeouts = { timeoutMs: 30_000, intervalMs: 10 };

const children = new Set<ChildProcess>();
const opened: PostgresBackend[] = [];
afterEach(async () => {
  await killChildren(children);
  for (const b of opened.splice(0)) await b.close().catch(() => undefined);
});

/**
 * A backend of this process on `store`, its sessions named sessionName("proc", name) and its holder `name`; `options`
 * go in its URL (server settings for its sessions, as a role's or a database's would be), `url` replaces the test
 * database's (a proxy's).
 */
async function open(
  db: TestDatabase,
  name: string,
  store: string,
  lease: PostgresLeaseOptions = {},
  { readOnly = false, options, url: through = db.url }: { readOnly?: boolean; options?: string; url?: string } = {},
): Promise<PostgresBackend> {
  const u = new URL(namedUrl(through, sessionName("proc", name, db.schema)));
  if (options !== undefined) u.searchParams.set("options", options);
  const url = u.href;
  const b = await postgresBackend({ url, schema: db.schema, store, readOnly, lease: readOnly ? {} : { holder: name, ...lease } });
  opened.push(b);
  return b;
}

let raw: ReturnType<TestDatabase["raw"]> | undefined;

/** One query on the file's raw client of the test database (ended with the others at the end). */
async function query<T extends Record<string, unknown>>(db: TestDatabase, sql: string, values: unknown[] = []): Promise<T[]> {
  raw ??= db.raw();
  return (await (await raw).query<T>(sql, values)).rows;
}

/** The store's lease expiry as the database has it now (text: exact to the microsecond). */
async function expiresAt(db: TestDatabase, store: string): Promise<{ epoch: number; expires: string }> {
  const [row] = await query<{ epoch: number; expires: string }>(
    db,
    `SELECT epoch::float8 AS epoch, expires_at::text AS expires FROM "${db.schema}".graphrefly_storage_lease WHERE store = $1`,
    [store],
  );
  return row!;
}

/** The current holder took the store before `expires` (the previous holder's expiry), by the database clock. */
async function takenBefore(db: TestDatabase, store: string, expires: string): Promise<boolean> {
  const [row] = await query<{ before: boolean }>(
    db,
    `SELECT acquired_at < $2::timestamptz AS before FROM "${db.schema}".graphrefly_storage_lease WHERE store = $1`,
    [store, expires],
  );
  return row!.before;
}

/** Modes of the advisory locks held by sessions named `app`. */
async function advisoryLocks(db: TestDatabase, app: string): Promise<string[]> {
  const rows = await query<{ mode: string }>(
    db,
    "SELECT l.mode FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1",
    [app],
  );
  return rows.map((r) => r.mode);
}

/** The session named `app` holding its liveness lock (a holder's lease session), with the lock's 64-bit key. */
async function livenessSession(db: TestDatabase, app: string): Promise<{ pid: number; key: string } | undefined> {
  const [row] = await query<{ pid: number; key: string }>(
    db,
    `SELECT l.pid, ((l.classid::int8 << 32) | l.objid::int8)::text AS key FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.mode = 'ExclusiveLock' AND l.granted AND a.application_name = $1`,
    [app],
  );
  return row;
}

/** Waits until every session named in `apps` waits for an advisory lock (a contender on a holder's liveness lock). */
async function waitingOnLock(db: TestDatabase, apps: string[]): Promise<void> {
  await until(
    async () => {
      const rows = await query(db, "SELECT 1 FROM pg_stat_activity WHERE application_name = ANY($1) AND wait_event_type = 'Lock' AND wait_event = 'advisory'", [apps]);
      return rows.length === apps.length;
    },
    `${apps.join(", ")} wait on an advisory lock`,
    timeouts,
  );
}

/** Waits until a child writer acknowledged `n` writes. */
async function acked(w: Writer, n: number): Promise<void> {
  await until(() => w.acked().length >= n || w.error() !== undefined, `the writer acknowledges ${n} writes`, timeouts);
  expect(w.error()).toBeUndefined();
}

async function kill(w: Writer): Promise<void> {
  const closed = once(w.child, "close"); // after its last output was read
  w.child.kill("SIGKILL");
  await closed;
}

/** Every write the child acknowledged is stored. */
async function expectAcknowledgedStored(db: TestDatabase, store: string, w: Writer, prefix: string): Promise<void> {
  const stored = await storedKeys(db, store, prefix);
  for (const n of w.acked()) expect(stored.get(`${prefix}${n}`)).toBe(String(n));
}

/**
 * A process that takes an advisory lock in shared mode, as a contender does when it finds a holder's liveness lock
 * free, and says "held" (then holds it until killed). argv: url, key (bigint as text).
 */
const LOCKER = `
const pg = (await import("pg")).default;
const [url, key] = process.argv.slice(1);
const c = new pg.Client({ connectionString: url });
await c.connect();
await c.query("SELECT pg_advisory_lock_shared($1::int8)", [key]);
process.stdout.write("held\\n");
setInterval(() => undefined, 1 << 30);
`;

function startLocker(db: TestDatabase, key: string): { child: ChildProcess; held: () => boolean } {
  const child = spawn(process.execPath, ["--input-type=module", "-e", LOCKER, namedUrl(db.url, sessionName("locker", "C", db.schema)), key], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.add(child);
  let out = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => (out += chunk));
  return { child, held: () => out.includes("held\n") };
}

/** A holder that takes the store, says "acquired <epoch>" and writes nothing: its lease row changes at its renewals only. */
const IDLE_HOLDER = `
const { postgresBackend } = await import(process.argv[1]);
const [url, schema, store, holder, , lease] = process.argv.slice(2);
const b = await postgresBackend({ url, schema, store, lease: { holder, ...JSON.parse(lease) } });
process.stdout.write("acquired " + b.lease.epoch + "\\n");
setInterval(() => undefined, 1 << 30);
`;

describe("postgresBackend fast failover", () => {
  it("kill -9 of the holder: a writer waiting on its liveness lock takes over before the lease expires, with every acknowledged write", async () => {
    const db = await database();
    const store = "kill";
    const a = startWriter(children, db, store, "A", "a", HOLDER);
    await acked(a, 20);
    const opening = open(db, "B", store, WAIT);
    await waitingOnLock(db, [sessionName("proc", "B", db.schema)]);
    // A keeps writing, each write extending its lease: its expiry at the kill is this one or later.
    const before = await expiresAt(db, store);
    const killedAt = performance.now();
    await kill(a);
    const b = await opening;
    console.log(`[postgres-fast-failover] kill -9 -> B took over ${(performance.now() - killedAt).toFixed(0)} ms (lease ${HOLDER.ttlMs} ms)`);
    expect(b.lease?.epoch).toBe(a.epoch()! + 1);
    expect(before.epoch).toBe(a.epoch());
    expect(await takenBefore(db, store, before.expires)).toBe(true);
    await expectAcknowledgedStored(db, store, a, "a");
    await b.write("b", Uint8Array.of(1));
  });

  it("the holder's lease connection cut while its data connection still writes: taken over at once, and the epoch refuses the holder's write", async () => {
    const db = await database();
    const store = "cut";
    const a = await open(db, "A", store, { ttlMs: 20_000 });
    await a.write("before", Uint8Array.of(1));
    const opening = open(db, "B", store, WAIT);
    await waitingOnLock(db, [sessionName("proc", "B", db.schema)]);
    const before = await expiresAt(db, store);
    // A renews no more and checks no deadline (a process frozen right after its check): its next write goes to the
    // database on its data connection, which nothing cut, whatever happened to its lease.
    simulatePausedHolder(a);
    const lease = await livenessSession(db, sessionName("proc", "A", db.schema));
    expect(lease).toBeDefined();
    await query(db, "SELECT pg_terminate_backend($1)", [lease!.pid]);
    const b = await opening;
    expect(b.lease?.epoch).toBe(a.lease!.epoch + 1);
    expect(await takenBefore(db, store, before.expires)).toBe(true);
    const refused = await a.write("after", Uint8Array.of(2)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(StorageError);
    expect((refused as StorageError).code).toBe("not-owner");
    expect((refused as StorageError).details).toMatchObject({ holder: "B", epoch: b.lease!.epoch });
    expect(await b.read("after")).toBeUndefined();
    expect(await b.read("before")).toEqual(Uint8Array.of(1));
  });

  describe("the holder takes its liveness lock again on a new lease connection", () => {
    /** A holder whose lease session is cut while a locker (a contender taking the store over) waits for its lock. */
    async function cutWithLockerWaiting(db: TestDatabase, store: string) {
      const a = await open(db, "A", store, { ttlMs: 20_000 });
      await a.write("k", Uint8Array.of(1));
      const app = sessionName("proc", "A", db.schema);
      const lease = await livenessSession(db, app);
      expect(lease).toBeDefined();
      const locker = startLocker(db, lease!.key);
      await waitingOnLock(db, [sessionName("locker", "C", db.schema)]);
      await query(db, "SELECT pg_terminate_backend($1)", [lease!.pid]);
      await until(locker.held, "the locker holds the lock", timeouts);
      return { a, app, locker };
    }

    it("unable to (a contender holds it): the holder has lost the store, and releases it", async () => {
      const db = await database();
      const store = "retake-lost";
      const { a } = await cutWithLockerWaiting(db, store);
      // Its next renewal opens a new lease connection and waits for the lock up to its lock_timeout.
      await until(() => a.finalError !== undefined, "A gives the store up", timeouts);
      expect(a.finalError).toBeInstanceOf(StorageError);
      expect((a.finalError as StorageError).code).toBe("not-owner");
      expect(a.finalError?.message).toContain("lease.fastFailover");
      const refused = await a.write("k", Uint8Array.of(2)).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect((refused as StorageError).code).toBe("not-owner");
      await until(async () => (await leaseRow(db, store)).lapsed, "A's release lets contenders in", timeouts);
      expect(await leaseRow(db, store)).toMatchObject({ holder: "A (given up)", epoch: a.lease!.epoch });
    });

    it("the contender holding it dies first: the holder takes it again and keeps the store", async () => {
      const db = await database();
      const store = "retake-kept";
      const { a, app, locker } = await cutWithLockerWaiting(db, store);
      const gone = once(locker.child, "exit");
      locker.child.kill("SIGKILL");
      await gone;
      await until(async () => (await livenessSession(db, app)) !== undefined, "A holds its liveness lock again", timeouts);
      await a.write("k", Uint8Array.of(3));
      expect(a.finalError).toBeUndefined();
      const refused = await open(db, "D", store).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect((refused as StorageError).code).toBe("store-locked");
      expect((await leaseRow(db, store)).holder).toBe("A");
    });
  });

  it("the holder's lease connection cut, then the holder killed before its next renewal: a writer waiting on the lock it took again on its new lease connection takes over before the expiry (task 384)", async () => {
    const db = await database();
    const store = "cut-then-kill";
    // Its first renewal comes long after this test is done with it (before the fix it was what took the lock again).
    const a = startWriter(children, db, store, "A", "a", { ttlMs: 30_000, renewEveryMs: 15_000 }, { script: IDLE_HOLDER });
    await until(() => a.epoch() !== undefined, "A takes the store", timeouts);
    const app = sessionName("writer", "A", db.schema);
    const cut = await livenessSession(db, app);
    expect(cut).toBeDefined();
    const before = await expiresAt(db, store);
    await query(db, "SELECT pg_terminate_backend($1)", [cut!.pid]);
    await until(
      async () => ((await livenessSession(db, app))?.pid ?? cut!.pid) !== cut!.pid,
      "A holds its liveness lock again, on a new lease connection",
      timeouts,
    );
    const opening = open(db, "B", store, WAIT);
    await waitingOnLock(db, [sessionName("proc", "B", db.schema)]);
    // A has not renewed since the cut (a renewal moves the expiry): what took its lock again was the new connection.
    expect(await expiresAt(db, store)).toEqual(before);
    await kill(a);
    const b = await opening;
    expect(b.lease?.epoch).toBe(a.epoch()! + 1);
    expect(await takenBefore(db, store, before.expires)).toBe(true);
  });

  it("two contenders: one takes the store over at once, the other waits for the new holder", async () => {
    const db = await database();
    const store = "two";
    const a = startWriter(children, db, store, "A", "a", HOLDER);
    await acked(a, 5);
    const settled: string[] = [];
    const contenders = new Map(
      ["B", "C"].map((name) => {
        const p = open(db, name, store, WAIT);
        p.then(
          () => settled.push(name),
          () => settled.push(name),
        );
        return [name, p] as const;
      }),
    );
    await waitingOnLock(db, ["B", "C"].map((n) => sessionName("proc", n, db.schema)));
    const before = await expiresAt(db, store);
    await kill(a);
    await until(() => settled.length > 0, "a contender takes the store", timeouts);
    const [first] = settled;
    const winner = await contenders.get(first!)!;
    const other = first === "B" ? "C" : "B";
    expect(winner.lease?.epoch).toBe(a.epoch()! + 1);
    expect(await takenBefore(db, store, before.expires)).toBe(true);
    await expectAcknowledgedStored(db, store, a, "a");
    await winner.write("w", Uint8Array.of(1));
    expect(settled).toEqual([first]); // the other waits: the winner's lease is live and its lock held
    expect((await leaseRow(db, store)).epoch).toBe(winner.lease!.epoch);
    await winner.close();
    const next = await contenders.get(other)!;
    expect(next.lease?.epoch).toBe(winner.lease!.epoch + 1);
    expect(await next.read("w")).toEqual(Uint8Array.of(1));
  });

  /** How `opening` ended, in words (undefined while it runs): the epoch it took, or its error. */
  function outcomeOf(opening: Promise<PostgresBackend>): { readonly settled: () => string | undefined } {
    let outcome: string | undefined;
    void opening.then(
      (b) => (outcome = `took the store, epoch ${b.lease?.epoch}`),
      (err: unknown) => (outcome = `failed: ${String(err)}`),
    );
    return { settled: () => outcome };
  }

  // transaction_timeout (PostgreSQL 17 on) ended the waiter's session, not just its statement (task 384).
  it.each([
    ["statement_timeout", "review r372 F2"],
    ["transaction_timeout", "task 384"],
  ])("a %s below the wait on the liveness lock (the waiter's URL) cuts no wait short: it takes the store when the holder closes (%s)", async (setting) => {
    const db = await database();
    const store = setting.replace("_", "-");
    const a = await open(db, "A", store, { ttlMs: 10_000 });
    await a.write("k", Uint8Array.of(1));
    const app = sessionName("proc", "B", db.schema);
    const opening = open(db, "B", store, WAIT, { options: `-c ${setting}=300` });
    const b = outcomeOf(opening);
    // One wait of B's on A's liveness lock outlasts the setting twice over (or B's open ended).
    await until(
      async () =>
        b.settled() !== undefined ||
        (await query(db, "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'advisory' AND clock_timestamp() - query_start > interval '600 ms'", [app]))
          .length > 0,
      `B waits on A's liveness lock past its ${setting}`,
      timeouts,
    );
    expect(b.settled()).toBeUndefined();
    await a.close();
    expect((await opening).lease?.epoch).toBe(a.lease!.epoch + 1);
  });

  it("idle_session_timeout below the renewal interval (the holder's URL) ends no lease session: the holder keeps the store (review r372 F3)", async () => {
    const db = await database();
    const store = "idle-session-timeout";
    const a = await open(db, "A", store, { ttlMs: 10_000, renewEveryMs: 1000 }, { options: "-c idle_session_timeout=200" });
    await a.write("k", Uint8Array.of(1));
    const opening = open(db, "B", store, WAIT);
    const b = outcomeOf(opening);
    await waitingOnLock(db, [sessionName("proc", "B", db.schema)]);
    // Two renewals of A's (each after an idle renewal interval, five idle timeouts long), or B took the store.
    const expiries = new Set([(await expiresAt(db, store)).expires]);
    await until(
      async () => {
        expiries.add((await expiresAt(db, store)).expires);
        return b.settled() !== undefined || expiries.size > 2;
      },
      "A renews twice while B waits",
      timeouts,
    );
    expect(b.settled()).toBeUndefined();
    await a.write("still", Uint8Array.of(2));
    expect((await expiresAt(db, store)).epoch).toBe(a.lease!.epoch);
    await a.close();
    expect((await opening).lease?.epoch).toBe(a.lease!.epoch + 1);
  });

  it("an open that may not wait (waitMs 0) fails store-locked without a look at the liveness lock (review r372 F4)", async () => {
    const db = await database();
    const store = "no-wait";
    const a = await open(db, "A", store);
    await a.write("k", Uint8Array.of(1));
    // A look would get no answer: B's open would fail otherwise (its lease connection's query timeout, B's ttlMs).
    const proxy = await proxies(db.url);
    proxy.loseAnswersAfter("grf_lease_probe_liveness");
    const refused = await open(db, "B", store, { ttlMs: 1000 }, { url: proxy.url }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(StorageError);
    expect((refused as StorageError).code).toBe("store-locked");
  });

  it("read-only handles take no lock", async () => {
    const db = await database();
    const store = "readers";
    const a = startWriter(children, db, store, "A", "a", HOLDER);
    await acked(a, 5);
    const r = await open(db, "R", store, {}, { readOnly: true });
    expect(Buffer.from((await r.read("a0"))!).toString()).toBe("0");
    expect(await advisoryLocks(db, sessionName("proc", "R", db.schema))).toEqual([]);
    expect(await advisoryLocks(db, sessionName("writer", "A", db.schema))).toEqual(["ExclusiveLock"]);
  });

  describe("lease.fastFailover false", () => {
    /** Kills the holder `a` once `contender` waits, and checks the contender took over only at the lease's expiry. */
    async function takenAtExpiry(db: TestDatabase, store: string, a: Writer, contender: Promise<PostgresBackend>, name: string): Promise<void> {
      const app = sessionName("proc", name, db.schema);
      await until(async () => (await query(db, WAITING_FOR_LEASE_SQL, [[app]])).length > 0, `${name} waits for the lease`, timeouts);
      await kill(a);
      // Read after the kill: A renews no more, so this is its expiry; the contender cannot have taken the store yet.
      const at = await expiresAt(db, store);
      expect(at.epoch).toBe(a.epoch());
      const b = await contender;
      expect(b.lease?.epoch).toBe(a.epoch()! + 1);
      expect(await takenBefore(db, store, at.expires)).toBe(false);
      await expectAcknowledgedStored(db, store, a, "a");
    }

    const SHORT: PostgresLeaseOptions = { ttlMs: 3000, renewEveryMs: 300 };

    it("a holder without it holds no lock: a contender neither takes its live store nor fails it over before the expiry", async () => {
      const db = await database();
      const store = "holder-off";
      const a = startWriter(children, db, store, "A", "a", { ...SHORT, fastFailover: false });
      await acked(a, 5);
      expect(await advisoryLocks(db, sessionName("writer", "A", db.schema))).toEqual([]);
      const refused = await open(db, "B", store).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect((refused as StorageError).code).toBe("store-locked");
      await takenAtExpiry(db, store, a, open(db, "C", store, WAIT), "C");
    });

    it("a contender without it waits for the expiry", async () => {
      const db = await database();
      const store = "contender-off";
      const a = startWriter(children, db, store, "A", "a", { ...SHORT, fastFailover: true });
      await acked(a, 5);
      await takenAtExpiry(db, store, a, open(db, "B", store, { ...WAIT, fastFailover: false }), "B");
    });

    it("must be a boolean", async () => {
      const db = await database();
      const err = await postgresBackend({ url: db.url, schema: db.schema, store: "x", lease: { fastFailover: "yes" as unknown as boolean } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toContain("lease.fastFailover");
    });
  });
});
