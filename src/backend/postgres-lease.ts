/**
 * The single-writer lease of a PostgreSQL store. Layer 1.
 *
 * A row per store names its holder, an epoch and an expiry computed on the database clock (no machine's clock is
 * trusted). Taking the lease sets a new holder and epoch + 1, and only succeeds once the previous expiry has
 * passed. The authority is the data write itself: every write transaction first updates this row where holder and
 * epoch match, and changes nothing when they do not (postgres-schema.ts, `write`). A holder whose store was taken
 * over therefore cannot land a write, however long it was paused.
 *
 * The expiry decides when a contender may take over; the holder's own deadline (below) when it stops. A row that
 * lapsed while it still names this holder and epoch was held by nobody else since (every takeover raises the epoch):
 * a write that finds it so takes it back in its own conditional statement, under the row's lock, so it can never
 * take it from a writer that took over; so does a renewal within the holder's deadline or after a write of its own
 * committed. A long write lets its row lapse this way (it holds the row's lock), and a renewal could reach the server
 * before the write's own extension (task 241). A write not yet known committed earns nothing back: its transaction
 * may be the one a contender ended once the row lapsed (renewBesideWriteSql, task 268).
 *
 * Around that, the holder renews in the background at an interval well below the lease time, and keeps its own
 * deadline on the monotonic clock: the send time of its last successful renewal (or write) plus the lease time,
 * which the database expiry can only exceed. Past that deadline it stops writing without asking the database, and
 * renews only a lease still live by the database clock (a frozen process, a cut network: the lapse is its own).
 * Losing the lease is final for the handle: its owner must open the store again (and restore from it). A renewal sent
 * before that may still take its row back when it reaches the server; so a loss, and a close, end with a release of
 * the row matched on holder and epoch alone, queued behind it on the same connection (releaseOwnSql). A write sent
 * before the loss may take it back the same way on the data connection: once committed it releases it again there.
 *
 * Fast failover: a holder also holds a session advisory lock, one per store and epoch, on its lease connection (taken
 * in the statement that takes the row, again on each new lease connection, made at once when one drops); the server
 * lets it go the moment that session ends, as when the holder's process dies and its kernel closes its sockets. A
 * waiting contender that saw it held, and then gets it while the server still takes new connections (a server
 * shutting down ends the holder's session too), takes the store over at once, before the expiry (overGoneHolder). The
 * lock only decides when, like the expiry: it fences nothing (it survives a paused process and vanishes on a
 * reconnect), the epoch condition of every write does. A contender that never saw it held cannot tell a
 * dead holder from one without the lock (fast failover off, an earlier release), and waits for the expiry.
 */
import { performance } from "node:perf_hooks";
import type pg from "pg";
import { StorageError } from "../errors.js";
import { keepSession, retryWhileDisconnected, type SerialConnection } from "./postgres-connection.js";
import { isConnectionFailure, pgCodeOf } from "./postgres-errors.js";
import type { Statements } from "./postgres-schema.js";

export interface PostgresLeaseOptions {
  /**
   * How long a lease lasts without renewal (default 10 000 ms): a dead holder is replaced after at most this. Also
   * how long a statement runs before the server is asked about it (postgres-answer-watch.ts; read-only handles too).
   */
  readonly ttlMs?: number;
  /** Renewal interval (default ttlMs / 4); at most ttlMs / 2. */
  readonly renewEveryMs?: number;
  /**
   * When another holder's lease is live at open: 0 (default) fails at once with StorageError("store-locked")
   * naming the holder; a positive time waits up to that long for the lease to expire or be released, then takes over.
   */
  readonly waitMs?: number;
  /** Names this writer in errors and in the lease row (default host/pid/random). */
  readonly holder?: string;
  /**
   * Fast failover (default true): the holder keeps a session advisory lock while it holds the lease, and a waiting
   * writer that saw it held takes the store over as soon as it is free (the holder's connection closed: its process
   * died), without waiting for the expiry. Off behind a connection pooler, whose server sessions are not the
   * client's (docs/postgres.md).
   */
  readonly fastFailover?: boolean;
}

/** PostgresLeaseOptions' keys: any other is refused (docs/design.md §3.3). */
export const POSTGRES_LEASE_OPTIONS = ["ttlMs", "renewEveryMs", "waitMs", "holder", "fastFailover"] as const;

export interface LeaseState {
  readonly holder: string;
  readonly epoch: number;
  readonly remainingMs: number;
}

interface LeaseRow {
  holder: string;
  epoch: string;
  remaining_ms: number;
}

/** What a takeover returns: the new epoch, and whether it holds its liveness lock (the statements that take one). */
interface TakenRow {
  epoch: string;
  live?: boolean;
}

/**
 * How often a waiting contender looks again (it also wakes when the observed expiry passes); one that waits on a
 * holder's liveness lock is woken by the server instead.
 */
export const WAIT_POLL_MS = 250;

/** lock_not_available: a statement's lock wait outlasted the session's lock_timeout (the lease connection's). */
const LOCK_TIMEOUT = "55P03";

/**
 * The session whose open transaction holds the lease row (the row version every reader sees names it in xmax, and
 * pg_stat_activity.backend_xid names that session), only while that version's expiry has passed by the database
 * clock and names the epoch the contender saw lapse; it is ended (`ended`) when it waits for its client: in the middle
 * of receiving a statement (`active`, ClientRead) or between statements (`idle in transaction`). A statement the
 * server is still running is left to finish (statement_timeout governs it): `ended` null. $1 store, $2 epoch.
 * Our statements only lock the row exclusively (UPDATE, INSERT … ON CONFLICT DO UPDATE), so xmax is a transaction
 * id, never a multixact.
 */
function endLapsedHolderSql(leaseTable: string): string {
  return `SELECT a.pid, CASE WHEN a.state LIKE 'idle in transaction%' OR (a.state = 'active' AND a.wait_event = 'ClientRead')
      THEN pg_terminate_backend(a.pid) END AS ended
    FROM ${leaseTable} AS l JOIN pg_stat_activity AS a ON a.backend_xid = l.xmax
    WHERE l.store = $1 AND l.epoch = $2 AND l.expires_at <= clock_timestamp() AND a.pid <> pg_backend_pid()`;
}

/**
 * A renewal sent while a write of this writer's is sent and not known committed: renews a live row only, and never
 * waits for the row's lock (NOWAIT: lock_not_available at once). That write's transaction may hold the row, lapse,
 * and be ended by a contender (Lease.acquire); a renewal queued on the lock would get it as the rollback frees it,
 * ahead of the contender, and extend the row (PostgreSQL does not check an UPDATE's conditions again when the
 * transaction it waited for rolled back), and the writer would renew on for ever with its write gone: the contender
 * never got in (task 268). Without a wait, the conditions are checked on the row as it is when locked.
 * $1 store, $2 holder, $3 epoch, $4 lease ms.
 */
function renewBesideWriteSql(leaseTable: string): string {
  return `WITH own AS (
      SELECT store FROM ${leaseTable}
      WHERE store = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp() FOR UPDATE NOWAIT)
    UPDATE ${leaseTable} SET expires_at = clock_timestamp() + ($4::float8 * interval '1 millisecond')
    WHERE store IN (SELECT store FROM own) RETURNING 1`;
}

/**
 * Lets contenders in at once when the row still names this holder and epoch, live or lapsed: a renewal of this
 * writer's, sent before it gave the store up and answered after, may have taken a lapsed row back (grf_lease_renew_own).
 * Nobody else holds a row naming our epoch (every takeover raises it), so this never touches another writer's lease;
 * a lapsed expiry is left where it is. $1 store, $2 holder, $3 epoch, $4 the holder's given-up name (givenUpName).
 *
 * It also renames the holder: every statement that takes a row back (a write's fence, a renewal) matches holder and
 * epoch, so none sent before the give-up can take the row back once this ran, whichever connection it travels on and
 * however late it arrives (a write whose answer is lost, its connection cut after the commit was sent, has nothing
 * left to release the row again: task 261). A write reaching the server after it is refused, nothing of it stored;
 * one that reached it first holds the row's lock, so this waits for its end and undoes its take-back.
 */
function releaseOwnSql(leaseTable: string): string {
  return `UPDATE ${leaseTable} SET expires_at = LEAST(expires_at, clock_timestamp()), holder = $4
    WHERE store = $1 AND holder = $2 AND epoch = $3`;
}

/**
 * The holder's name in a row it gave up: any name but its own fences its late statements (the epoch alone tells rows
 * apart: a contender's takeover raises it, so a writer that happens to be named so never matches this row).
 */
function givenUpName(holder: string): string {
  return `${holder} (given up)`;
}

export class Lease {
  private epochValue = 0;
  private deadline = 0;
  private timer: NodeJS.Timeout | undefined;
  private lostError: StorageError | undefined;
  private stopped = false;
  /** Test hook: a paused holder neither renews nor checks its own deadline. */
  private paused = false;
  /**
   * Writes sent and not yet done, each counted from just before it is sent until its answer and the extension after
   * it (afterWrite) are done. A write holds the lease row's lock until it commits, so renewals sent meanwhile wait for
   * it, and the row may lapse under that lock: a renewal sent once it committed may take the row back.
   */
  private writesInFlight = 0;
  /**
   * Of those, the ones not yet known committed (sent, no answer): such a write's transaction may hold the lease row and
   * be ended by a contender once the row lapsed, so no renewal takes the row back meanwhile (renewBesideWriteSql).
   */
  private writesUncommitted = 0;
  /**
   * The release of a row given up (releaseOwn) while one is on its way: a loss and a close share it. Forgotten when it
   * failed (a network down with the lease), so the next one is sent again: kept, a close after the network came back
   * returned the failed one, and the row kept naming this writer, for its held renewal or write to take back after
   * close() (review r286 F3).
   */
  private releasing: Promise<boolean> | undefined;
  /** A release of the row ran on the server: nothing of this writer's sent before can take the row back any more. */
  private released = false;
  /** The next try of a failed release, while the handle stays open (retryReleaseLater). */
  private releaseRetry: NodeJS.Timeout | undefined;
  /** close() asked for the release: background tries stop, close() makes its own. */
  private closing = false;
  /** A renewal is queued or running on the lease connection (close() past the deadline cuts it: see release). */
  private renewing = false;
  /** This holder's session took its liveness lock with the lease (fast failover); taken again on a new session. */
  private holdsLiveness = false;
  /** The dropped lease connection is being made again (connectionDropped). */
  private reconnecting = false;
  /**
   * An epoch whose liveness lock this contender saw held, and on which session: the client object, never the server's
   * PID, which a restarted server (a container's new PID namespace) gives out again (overGoneHolder).
   */
  private seenHeld: { readonly epoch: number; readonly session: pg.ClientBase } | undefined;
  /** The liveness lock's key text, with the epoch as the hash's seed: one lock per store and epoch. */
  private readonly liveKey: string;

  constructor(
    private readonly conn: SerialConnection,
    private readonly sql: Statements,
    readonly store: string,
    readonly holder: string,
    readonly ttlMs: number,
    private readonly renewEveryMs: number,
    /** Names the store in messages (no password). */
    private readonly where: string,
    /** The quoted lease table (endLapsedHolderSql). */
    private readonly leaseTable: string,
    /** Hold and look for the liveness lock (PostgresLeaseOptions.fastFailover). */
    private readonly fastFailover: boolean,
  ) {
    this.liveKey = `graphrefly-storage-lease:${leaseTable}:${store}`;
  }

  get epoch(): number {
    return this.epochValue;
  }

  /** Current row, read without locking it (a live holder's write may hold the row lock). */
  async state(): Promise<LeaseState | undefined> {
    const r = await this.conn.run((c) => c.query<LeaseRow>({ name: "grf_lease_state", text: this.sql.leaseState, values: [this.store] }));
    const row = r.rows[0];
    return row === undefined ? undefined : { holder: row.holder, epoch: Number(row.epoch), remainingMs: row.remaining_ms };
  }

  /**
   * Takes the lease, waiting until `giveUpAt` (a performance.now() time) for a live one to end; else
   * StorageError("store-locked"). While waiting, a lost connection (the database restarting, a network cut) is tried
   * again until the wait is over: a contender must outlast an outage the holder may not.
   *
   * The lease connection runs with a server-side lock_timeout, so a try never leaves a lock wait behind on the server.
   * A lapsed lease whose row is still locked is held by an open transaction of the lapsed holder: a split batch whose
   * writer froze, or whose network stalled, in the middle of sending a statement (the server then waits for the rest,
   * `active`, and no server timeout ends it). The lapse by the database clock entitles the contender to end that
   * session (pg_terminate_backend: its transaction rolls back, nothing of it was acknowledged); a role that may not
   * (neither the same role nor a member of pg_signal_backend, nor able to see it in pg_stat_activity) waits for the
   * holder instead, and says why in its store-locked error.
   */
  async acquire(giveUpAt: number): Promise<void> {
    let ends = 0;
    for (;;) {
      let why: string | undefined;
      const current = await retryWhileDisconnected(async () => {
        const seen = await this.state();
        if (seen !== undefined && seen.remainingMs > 0) {
          if (!this.fastFailover) return seen;
          // Live: taken over at once when its holder's session is gone (fast failover); undefined: look again.
          const over = await this.overGoneHolder(seen, giveUpAt);
          return over === "wait" ? seen : over;
        }
        // Free or lapsed: try to take it; undefined when another contender took it between our look and our try.
        const got = await this.tryAcquire();
        // Locked with no row seen: another contender is inserting the first one; look again.
        if (got === "locked") return seen === undefined ? undefined : { ...seen, locked: true as const };
        return got ? "taken" : undefined;
      }, giveUpAt, WAIT_POLL_MS);
      if (current === "taken") return;
      if (current === undefined) continue;
      if ("locked" in current) {
        const ended = await retryWhileDisconnected(() => this.endLapsedHolder(current.epoch), giveUpAt, WAIT_POLL_MS);
        if (typeof ended === "number" && ended > 0 && ends++ < 3) continue; // its rollback frees the row at once
        why = typeof ended === "string" ? ended : undefined;
      }
      const left = giveUpAt - performance.now();
      if (left <= 0) throw this.lockedError(current, why);
      await new Promise((r) => setTimeout(r, Math.max(1, Math.min(Math.max(current.remainingMs, 0) + 1, left, WAIT_POLL_MS))));
    }
  }

  /** true: taken; false: live, or taken by another contender first; "locked": the row is locked (lock_timeout). */
  private async tryAcquire(): Promise<boolean | "locked"> {
    const sentAt = performance.now();
    let r: pg.QueryResult<TakenRow>;
    try {
      r = await this.conn.run((c) =>
        this.fastFailover
          ? c.query<TakenRow>({ name: "grf_lease_acquire_live", text: this.sql.acquireLive, values: [this.store, this.holder, this.ttlMs, this.liveKey] })
          : c.query<TakenRow>({ name: "grf_lease_acquire", text: this.sql.acquire, values: [this.store, this.holder, this.ttlMs] }),
      );
    } catch (err) {
      if (pgCodeOf(err) === LOCK_TIMEOUT) return "locked";
      throw err;
    }
    return this.took(r.rows[0], sentAt);
  }

  /** Records a takeover (row: what it returned, none when it took nothing) sent at `sentAt`. */
  private took(row: TakenRow | undefined, sentAt: number): boolean {
    if (row === undefined) return false;
    this.epochValue = Number(row.epoch);
    this.holdsLiveness = row.live === true;
    this.deadline = sentAt + this.ttlMs;
    this.schedule();
    return true;
  }

  /**
   * Fast failover, on another holder's live row: the first look at its epoch (in this session) asks whether its
   * liveness lock is held, holding nothing after. Not held, the holder is none of ours to judge (it runs without fast
   * failover, or an earlier release, or it released the lock with the row, or died before this contender looked):
   * "wait", as for any live lease. Seen held, the contender waits on it in shared mode, beside any other contender,
   * until the row's expiry, the end of its own wait or a renewal interval, whichever comes first (the server wakes it
   * the moment the holder's session ends: no fast polling, two statements per renewal interval), then looks at the
   * row again (undefined). Granted, the holder's session is gone: its process died (its kernel closed its sockets), or
   * its lease connection dropped (it then finds the lock taken and gives the store up), unless the server is shutting
   * down (a new connection refused after the grant: no takeover, the holder is back with the server); it takes the
   * store over at once, if the row still has that epoch (one contender does: the row's lock orders them), and lets the
   * shared lock go. The write's epoch condition, not this lock, keeps the old holder from landing anything after that.
   */
  private async overGoneHolder(seen: LeaseState, giveUpAt: number): Promise<"taken" | "wait" | undefined> {
    const values = [this.liveKey, String(seen.epoch)];
    return this.conn.run(async (c) => {
      // No time left to wait in (lease.waitMs 0): nothing to look at.
      const ms = Math.floor(Math.min(giveUpAt - performance.now(), seen.remainingMs + 1, this.renewEveryMs));
      if (ms < 1) return "wait";
      // What this session saw: a contender's new connection looks again (after a server restart the holder takes the
      // lock again on its own new connection, made once the server takes connections; a contender that went by what it
      // saw before would take a live holder's store).
      if (this.seenHeld?.epoch !== seen.epoch || this.seenHeld.session !== c) {
        const r = await c.query<{ free: boolean }>({ name: "grf_lease_probe_liveness", text: this.sql.probeLiveness, values });
        if (r.rows[0]?.free !== false) return "wait";
        this.seenHeld = { epoch: seen.epoch, session: c };
      }
      try {
        await c.query({ name: "grf_lease_await_liveness", text: this.sql.awaitLiveness, values: [...values, ms] });
      } catch (err) {
        if (pgCodeOf(err) === LOCK_TIMEOUT) return undefined;
        throw err;
      }
      // A grant proves the holder's session ended, not that its process died: a server shutting down ends every
      // session, the holder's may end first, and this one may get the grant and commit a takeover before its own end
      // (a live holder, back once the server is, lost its store: task 391). Such a server refuses new connections
      // before it ends any session, and never takes one again, so one made now (after the grant) shows the holder's
      // session ended while the server ran on. Refused: looked at again later (this session is ending, or the server
      // takes no more connections: too many clients, say), and the lock let go.
      try {
        if (!(await this.conn.serverTakesConnections())) return "wait";
        const sentAt = performance.now();
        const r = await c.query<TakenRow>({
          name: "grf_lease_take_over_live",
          text: this.sql.takeOverLive,
          values: [this.store, this.holder, this.ttlMs, this.liveKey, String(seen.epoch)],
        });
        return this.took(r.rows[0], sentAt) ? "taken" : undefined;
      } catch (err) {
        // The row locked by a transaction of the old holder's (lock_timeout): looked at again.
        if (pgCodeOf(err) === LOCK_TIMEOUT) return undefined;
        throw err;
      } finally {
        await c.query({ name: "grf_lease_let_go_liveness", text: this.sql.letGoLiveness, values }).catch(() => undefined);
      }
    });
  }

  /**
   * Runs first on each new lease connection. The session turns idle_session_timeout and transaction_timeout off for
   * itself (keepSession): a server, role or database setting below the renewal interval ended an idle holder's session
   * between renewals, and with it its liveness lock, handing the store to a waiting writer every interval (review r372
   * F3); transaction_timeout ended a session waiting for a lock. Its statement_timeout (the lease time) bounds it.
   *
   * Then a holder whose lease connection dropped takes its liveness lock again before anything else runs there,
   * waiting up to the session's lock_timeout (a contender's look at it holds it for a moment). Unable to, a contender
   * found it free and holds it to take the store over at once: the store is lost.
   */
  async sessionStarted(c: pg.ClientBase): Promise<void> {
    await keepSession(c, true);
    if (!this.holdsLiveness || this.lostError !== undefined || this.stopped) return;
    try {
      await c.query({ text: this.sql.holdLiveness, values: [this.liveKey, String(this.epochValue)] });
    } catch (err) {
      if (pgCodeOf(err) !== LOCK_TIMEOUT) throw err;
      this.holdsLiveness = false;
      this.lose(
        "its lease connection was cut, and a writer waiting for the store found it gone and may take the store over at once (lease.fastFailover)",
        undefined,
      );
    }
  }

  /**
   * The lease connection dropped (an administrator ended its session, a network fault reset it, the server restarted):
   * a holder's liveness lock went with the session. The connection is made again at once, taking the lock again before
   * anything else runs on it (sessionStarted), not at the next call on it (the next renewal): a holder that died in
   * between left no lock held for a waiting writer to see let go, and that writer waited for the whole lease (task
   * 384). While the database cannot be reached it is tried again every WAIT_POLL_MS, until it is made or this holder's
   * own deadline passed (its renewals go on trying, at their interval, as before).
   */
  connectionDropped(): void {
    if (this.reconnecting || !this.mayRetakeLiveness()) return;
    this.reconnecting = true;
    void this.retakeLiveness().finally(() => (this.reconnecting = false));
  }

  /** Holding the store with its liveness lock, running (a paused holder stands for a frozen process). */
  private mayRetakeLiveness(): boolean {
    return this.holdsLiveness && !this.stopped && !this.paused && !this.lapsed;
  }

  private async retakeLiveness(): Promise<void> {
    while (this.mayRetakeLiveness()) {
      // Queued behind any call on the connection: the first of them to run makes it (and takes the lock).
      if (await this.conn.run(async () => true).catch(() => false)) return;
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS).unref()); // a lease alone keeps no process alive
    }
  }

  /** After a release of the row: lets waiting contenders in at once (the liveness lock is the session's only one). */
  private async letGoOwnLiveness(c: pg.ClientBase): Promise<void> {
    if (!this.holdsLiveness) return;
    this.holdsLiveness = false;
    await c.query("SELECT pg_advisory_unlock_all()").catch(() => undefined); // a failed connection let it go anyway
  }

  /**
   * Ends the session holding the lapsed lease row of `epoch` when it waits for its client (see acquire): how many it
   * ended (0: none found, the row was released meanwhile), or why it did not (still running a statement, not
   * visible to this role, or this role may not end it).
   */
  private async endLapsedHolder(epoch: number): Promise<number | string> {
    const locked = "a transaction of the lapsed holder still holds the lease row";
    try {
      const r = await this.conn.run((c) =>
        c.query<{ ended: boolean | null }>({ text: endLapsedHolderSql(this.leaseTable), values: [this.store, String(epoch)] }),
      );
      if (r.rows.length === 0) {
        return `${locked}, and this role cannot see its session (pg_stat_activity) to end it: use the same role as the writers, or grant pg_read_all_stats and pg_signal_backend`;
      }
      // Signalled (false: it was ending already); null: a statement still running, left to finish.
      if (r.rows.some((row) => row.ended === null)) return `${locked}: a statement of it is still running on the server`;
      return r.rows.length;
    } catch (err) {
      if (pgCodeOf(err) === "42501") {
        return `${locked}, and this role may not end its session (pg_terminate_backend): use the same role as the writers, or grant pg_signal_backend`;
      }
      if (isConnectionFailure(err)) throw err; // retried while the wait lasts
      return `${locked}, and ending its session failed: ${(err as Error).message}`;
    }
  }

  /** True when the lease is lost or its own deadline has passed (what assertOwned throws for). */
  get lapsed(): boolean {
    return this.lostError !== undefined || (!this.paused && performance.now() >= this.deadline);
  }

  /**
   * The handle's not-owner error once the lease is lost (a write or renewal was fenced, or a write found its own
   * deadline passed): final, every later write throws it (StorageBackend.finalError). Undefined while owned, and
   * while only the deadline passed unchecked: a renewal in flight may still extend it.
   */
  get finalError(): StorageError | undefined {
    return this.lostError;
  }

  /** Throws the handle's not-owner error when the lease is lost or its own deadline has passed. */
  assertOwned(): void {
    if (this.lostError) throw this.lostError;
    if (!this.paused && performance.now() >= this.deadline) {
      throw this.lose(
        `its lease ran out (${this.ttlMs} ms) before it could renew it; another writer may take the store over`,
        undefined,
      );
    }
  }

  /** Brackets a write, from just before it is sent until it and its afterWrite are done, either way. */
  writeSent(): void {
    this.writesInFlight++;
    this.writesUncommitted++;
  }

  /** The write sent last committed (its answer said so): its transaction holds the lease row no more. */
  writeCommitted(): void {
    this.writesUncommitted--;
  }

  /** `committed`: writeCommitted() was called for it. */
  writeDone(committed: boolean): void {
    this.writesInFlight--;
    if (!committed) this.writesUncommitted--;
  }

  /** A write sent at `sentAt` found the lease ours and extended it. */
  extended(sentAt: number): void {
    this.deadline = Math.max(this.deadline, sentAt + this.ttlMs);
  }

  /**
   * After a write sent at `sentAt` committed: when it took a renewal interval or more, renewals may have waited on
   * its lock, and the expiry it set as it began may have passed while it ran (a big value, a slow server), and with it
   * this writer's own deadline. Extends the lease on the write's own connection, before that connection's next call,
   * without asking for a live expiry: a row still naming this holder and epoch proves nobody took the store (a
   * renewal sent meanwhile may take it back first, the write still counting as in flight). A row naming another
   * holder means the store was taken right after the commit: the lease is lost, the write stands.
   *
   * Lost meanwhile (a deadline check or a refused renewal said not-owner while this write was on its way): the write's
   * fenced statement took the row back when it reached the server, maybe after the release queued on the lease
   * connection (releaseOwn). Releases again here, on the write's own connection, which runs it after the write: the
   * row is not left live for a whole lease after this writer said not-owner. Bounded by the statement timeout.
   */
  async afterWrite(client: pg.ClientBase, sentAt: number): Promise<void> {
    if (this.lostError) {
      await client.query({ text: releaseOwnSql(this.leaseTable), values: this.releaseOwnValues() });
      return;
    }
    if (performance.now() - sentAt < this.renewEveryMs) return;
    const at = performance.now();
    const r = await client.query({
      name: "grf_lease_extend_after_write",
      text: this.sql.extendAfterWrite,
      values: [this.store, this.holder, this.epochValue, this.ttlMs],
    });
    if (r.rowCount === 1) this.extended(at);
    else await this.fenced();
  }

  /** The row still names this holder and epoch (live or lapsed); false too when it cannot be read. */
  private async namesUs(): Promise<boolean> {
    const now = await this.state().catch(() => undefined);
    return now !== undefined && now.holder === this.holder && now.epoch === this.epochValue;
  }

  /** A write found the lease not ours: records why (naming the holder now) and returns the error to throw. */
  async fenced(): Promise<StorageError> {
    if (this.lostError) return this.lostError;
    let current: LeaseState | undefined;
    try {
      current = await this.state();
    } catch {
      current = undefined; // the error is about the lease; the holder's name is a courtesy
    }
    return this.lose("its lease was taken over or expired; nothing of the refused write was stored", current);
  }

  /**
   * Gives the store up before the lease ran out (the handle cannot go on writing: see PostgresStore.settleFirst): a
   * loss like any other, final for the handle, whose release renames the row's holder, so nothing this writer sent
   * before takes the row back. Returns the handle's not-owner error.
   */
  giveUp(why: string): StorageError {
    return this.lose(why, undefined);
  }

  /**
   * Stops renewing and lets the next contender in at once (when still ours). A release that fails is sent again until
   * `retryForMs` passed (close() asks for that when something of this writer's may still take the row back); true
   * once a release ran, or there was nothing to release.
   */
  async release(retryForMs = 0): Promise<boolean> {
    const lapsed = this.lapsed;
    const giveUpAt = performance.now() + retryForMs;
    this.stop();
    this.closing = true;
    if (this.releaseRetry) clearTimeout(this.releaseRetry);
    this.releaseRetry = undefined;
    if (this.epochValue === 0) return true;
    // Past its own deadline (or lost) the lease is over for this writer, but a renewal it sent before may still take
    // the row back when it reaches the server: release the row if it names us, live or lapsed, renaming its holder so
    // that renewal can no longer take it back. It need not wait for that renewal, which may wait for its answer up to
    // the lease connection's query timeout (the lease time) with a database that does not answer: the connection is
    // cut, and the release goes on a new one (connectTimeoutMs), within the renewal interval.
    if (lapsed) {
      if (this.renewing) this.conn.reset();
      return this.releaseUntil(giveUpAt);
    }
    if (this.released) return true;
    // Renamed as a given-up release does: this handle writes nothing after close(), and a write of its sent before
    // (its answer lost, its request still on its way) would otherwise take the row back for a whole lease when it
    // reached the server after this release, and store its data after close() resolved.
    const ok = await this.conn
      .run(async (c) => {
        await c.query({ name: "grf_lease_release", text: releaseOwnSql(this.leaseTable), values: this.releaseOwnValues() });
        await this.letGoOwnLiveness(c);
      })
      .then(
        () => true,
        () => false, // unreleased, it expires (unless a statement of ours still takes it back: tried again below)
      );
    if (ok) this.released = true;
    return ok || this.releaseUntil(giveUpAt);
  }

  /** Sends the release (releaseOwn) until one ran or `giveUpAt` (a performance.now() time) passed. */
  private async releaseUntil(giveUpAt: number): Promise<boolean> {
    for (;;) {
      if (await this.releaseOwn()) return true;
      const left = giveUpAt - performance.now();
      if (left <= 0) return false;
      await new Promise((r) => setTimeout(r, Math.min(left, WAIT_POLL_MS)));
    }
  }

  /**
   * One try at a time (true once one ran; a failed one is tried again): queued on the lease connection behind any
   * renewal in flight (the connection is serial). It renames the holder (releaseOwnSql), so no statement of this writer's sent before, a renewal or a write on the data
   * connection, takes the row back once it ran; one that ran before it is undone by it. Bounded, as close() waits for
   * it: the renewal before it by the connection's query timeout (the lease time; close() cuts it instead), a
   * reconnect by connectTimeoutMs, this statement by the renewal interval; the database may not answer at all.
   */
  private releaseOwn(): Promise<boolean> {
    if (this.released) return Promise.resolve(true);
    this.releasing ??= this.conn
      .run(
        async (c) => {
          await c.query({ text: releaseOwnSql(this.leaseTable), values: this.releaseOwnValues() });
          await this.letGoOwnLiveness(c);
        },
        { ms: this.renewEveryMs, what: "the release of a lease given up" },
      )
      .then(
        () => {
          this.released = true;
          return true;
        },
        () => {
          // Unreleased, the row expires, but a renewal or write of this writer's still on its way may take it back
          // (and a held write store its data): sent again, in the background while the handle stays open.
          this.releasing = undefined;
          this.retryReleaseLater();
          return false;
        },
      );
    return this.releasing;
  }

  /** Tries a failed release again after a renewal interval, until one runs or close() takes over (unref'd). */
  private retryReleaseLater(): void {
    if (this.closing || this.releaseRetry !== undefined) return;
    this.releaseRetry = setTimeout(() => {
      this.releaseRetry = undefined;
      if (!this.closing) void this.releaseOwn();
    }, this.renewEveryMs);
    this.releaseRetry.unref();
  }

  private releaseOwnValues(): unknown[] {
    return [this.store, this.holder, this.epochValue, givenUpName(this.holder)];
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Test hook: behave like a process frozen between its deadline check and its write. */
  pauseForTesting(): void {
    this.paused = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped || this.paused || this.lostError) return;
    this.timer = setTimeout(() => void this.renew(), this.renewEveryMs);
    // A lease alone must not keep a process alive; if the process exits the lease simply expires.
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    this.timer = undefined;
    if (this.stopped || this.paused || this.lostError) return;
    const sentAt = performance.now();
    this.renewing = true;
    try {
      let besideWrite = false;
      const r = await this.conn.run(async (c) => {
        // Stopped while it waited for a connection (close() past the deadline): its answer would not matter, and
        // close()'s release waits behind it, up to the query timeout (the lease time) with a database that does not
        // answer.
        if (this.stopped) return undefined;
        const values = [this.store, this.holder, this.epochValue, this.ttlMs];
        // Beside a write sent and not known committed: a live row only, without waiting for its lock (see
        // renewBesideWriteSql); the write's own statement and its extension after the commit take a lapsed row back.
        besideWrite = this.writesUncommitted > 0;
        if (besideWrite) return c.query({ name: "grf_lease_renew_beside_write", text: renewBesideWriteSql(this.leaseTable), values });
        // Within its own deadline, or after a write of its own committed (whose lock the row may have lapsed under,
        // and whose extension may reach the server after this), the renewal takes back a lapsed row still naming this
        // holder and epoch: nobody took the store since (task 241). Past its deadline with nothing of its own holding
        // the row (a frozen process, a cut network), only a live lease is renewed: a lapse is then the writer's own,
        // and final as its deadline is for writes.
        const mayTakeBack = this.writesInFlight > 0 || performance.now() < this.deadline;
        return mayTakeBack
          ? c.query({ name: "grf_lease_renew_own", text: this.sql.extendAfterWrite, values })
          : c.query({ name: "grf_lease_renew", text: this.sql.renew, values });
      });
      this.renewing = false;
      if (r === undefined) return;
      if (r.rowCount === 1) this.extended(sentAt);
      // Refused beside a write of its own on a row still naming it, lapsed: not a loss yet. That write decides: it
      // takes the row back once committed (afterWrite), or fails (its session ended by a contender, say), and the
      // deadline then settles it.
      else if (!this.stopped && !(besideWrite && (await this.namesUs()))) await this.fenced();
    } catch (err) {
      this.renewing = false;
      // Unreachable database: try again next interval; the deadline decides when to give up. A server error (the row
      // locked past lock_timeout, e.g. by this writer's own long batch) leaves the connection usable.
      // Stopped: close() cut the connection under it, and its release may be on a new one already.
      if (isConnectionFailure(err) && !this.stopped) this.conn.reset();
    }
    this.schedule();
  }

  private lose(why: string, current: LeaseState | undefined): StorageError {
    // The first loss recorded is the handle's final error: a write may have been refused with it already, and callers
    // (the tier, the engine's actor) compare the error they got with finalError (a refused renewal's fenced() may find
    // the loss again after its state read).
    if (this.lostError) return this.lostError;
    this.stop();
    const now =
      current === undefined
        ? ""
        : current.holder === this.holder && current.epoch === this.epochValue
          ? " (the lease row still names it, expired)"
          : `; it is now held by ${JSON.stringify(current.holder)} (epoch ${current.epoch})`;
    this.lostError = new StorageError(
      "not-owner",
      `${this.where}: this writer (${JSON.stringify(this.holder)}, epoch ${this.epochValue}) no longer owns the store: ${why}${now}. It writes no more; open the store again to continue`,
      {
        store: this.store,
        ownHolder: this.holder,
        ownEpoch: this.epochValue,
        ...(current ? { holder: current.holder, epoch: current.epoch } : {}),
      },
    );
    void this.releaseOwn();
    return this.lostError;
  }

  private lockedError(current: LeaseState, why: string | undefined): StorageError {
    const held =
      why === undefined
        ? `for ${Math.ceil(current.remainingMs)} ms more by the database clock`
        : `whose lease has lapsed by the database clock, but ${why}`;
    return new StorageError(
      "store-locked",
      `${this.where} is held by ${JSON.stringify(current.holder)} (epoch ${current.epoch}) ${held}: one writer per store; open it read-only to read it meanwhile, or wait (lease.waitMs)`,
      {
        store: this.store,
        holder: current.holder,
        epoch: current.epoch,
        remainingMs: Math.max(0, Math.ceil(current.remainingMs)),
        ...(why === undefined ? {} : { reason: why }),
      },
    );
  }
}
