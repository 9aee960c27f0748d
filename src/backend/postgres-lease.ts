/**
 * The single-writer lease of a PostgreSQL store. Layer 1.
 *
 * A row per store names its holder, an epoch and an expiry computed on the database clock (no machine's clock is
 * trusted). Taking the lease sets a new holder and epoch + 1, and only succeeds once the previous expiry has
 * passed. The authority is the data write itself: every write transaction first updates this row where holder,
 * epoch and a live expiry all match, and changes nothing when they do not (postgres-schema.ts, `write`). A holder
 * that lost the lease therefore cannot land a write, however long it was paused.
 *
 * Around that, the holder renews in the background at an interval well below the lease time, and keeps its own
 * deadline on the monotonic clock: the send time of its last successful renewal (or write) plus the lease time,
 * which the database expiry can only exceed. Past that deadline it stops writing without asking the database.
 * Losing the lease is final for the handle: its owner must open the store again (and restore from it).
 */
import { performance } from "node:perf_hooks";
import type pg from "pg";
import { StorageError } from "../errors.js";
import { retryWhileDisconnected, SLOWEST_LINK_BYTES_PER_MS, type SerialConnection } from "./postgres-connection.js";
import type { Statements } from "./postgres-schema.js";

export interface PostgresLeaseOptions {
  /** How long a lease lasts without renewal (default 10 000 ms): a dead holder is replaced after at most this. */
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
}

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

/** How often a waiting contender looks again (it also wakes when the observed expiry passes). */
export const WAIT_POLL_MS = 250;

export class Lease {
  private epochValue = 0;
  private deadline = 0;
  private timer: NodeJS.Timeout | undefined;
  private lostError: StorageError | undefined;
  private stopped = false;
  /** Test hook: a paused holder neither renews nor checks its own deadline. */
  private paused = false;
  /**
   * Writes sent and not yet answered, and when the last was answered. A write holds the lease row's lock until it
   * commits, so a renewal sent meanwhile waits for it, and finds the row expired when the write outlasted the lease.
   */
  private writesInFlight = 0;
  private lastWriteAnsweredAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly conn: SerialConnection,
    private readonly sql: Statements,
    readonly store: string,
    readonly holder: string,
    readonly ttlMs: number,
    private readonly renewEveryMs: number,
    /** Names the store in messages (no password). */
    private readonly where: string,
  ) {}

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
   */
  async acquire(giveUpAt: number): Promise<void> {
    for (;;) {
      const current = await retryWhileDisconnected(async () => {
        const seen = await this.state();
        if (seen !== undefined && seen.remainingMs > 0) return seen;
        // Free or lapsed: try to take it; undefined when another contender took it between our look and our try.
        return (await this.tryAcquire()) ? "taken" : undefined;
      }, giveUpAt, WAIT_POLL_MS);
      if (current === "taken") return;
      if (current === undefined) continue;
      const left = giveUpAt - performance.now();
      if (left <= 0) throw this.lockedError(current);
      await new Promise((r) => setTimeout(r, Math.max(1, Math.min(current.remainingMs + 1, left, WAIT_POLL_MS))));
    }
  }

  private async tryAcquire(): Promise<boolean> {
    const sentAt = performance.now();
    const r = await this.conn.run((c) =>
      c.query<{ epoch: string }>({ name: "grf_lease_acquire", text: this.sql.acquire, values: [this.store, this.holder, this.ttlMs] }),
    );
    const row = r.rows[0];
    if (row === undefined) return false;
    this.epochValue = Number(row.epoch);
    this.deadline = sentAt + this.ttlMs;
    this.schedule();
    return true;
  }

  /** True when the lease is lost or its own deadline has passed (what assertOwned throws for). */
  get lapsed(): boolean {
    return this.lostError !== undefined || (!this.paused && performance.now() >= this.deadline);
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

  /** A write sent at `sentAt` found the lease ours and extended it. */
  extended(sentAt: number): void {
    this.deadline = Math.max(this.deadline, sentAt + this.ttlMs);
  }

  /** Brackets a write statement (or transaction), from just before it is sent until it is answered either way. */
  writeSent(): void {
    this.writesInFlight++;
  }

  writeAnswered(): void {
    this.writesInFlight--;
    this.lastWriteAnsweredAt = performance.now();
  }

  /**
   * After a write sent at `sentAt` committed: when it took a renewal interval or more, renewals may have waited on
   * its lock, and the expiry it set as it began may have passed while it ran (a big value, a slow server). Extends
   * the lease on the write's own connection, before that connection's next call, without asking for a live expiry:
   * every takeover raises the epoch, so a row still naming this holder and epoch proves nobody took the store, and
   * the lease lapsed only under this writer's own lock (or since its commit, with no contender taking over). A row
   * naming another holder means the store was taken right after the commit: the lease is lost, the write stands.
   */
  async afterWrite(client: pg.ClientBase, sentAt: number): Promise<void> {
    if (performance.now() - sentAt < this.renewEveryMs || this.lostError) return;
    const at = performance.now();
    const r = await client.query({
      name: "grf_lease_extend_after_write",
      text: this.sql.extendAfterWrite,
      values: [this.store, this.holder, this.epochValue, this.ttlMs],
    });
    if (r.rowCount === 1) this.extended(at);
    else await this.fenced();
  }

  /**
   * Between two statements of a split batch, before one of `nextBytes`. Each statement checks a live expiry, which
   * the statement before it set as it began: a statement that took the lease time or more to arrive (a big chunk, a
   * slow link) fenced its own batch, with no contender in sight. The transaction holds the lease row's lock since its
   * first statement checked holder, epoch and expiry, so nobody takes the store over meanwhile: the expiry is moved
   * on inside the transaction, conditioned on holder and epoch, by the lease time plus the time the next statement
   * takes to arrive on the slowest link given time for. Nobody else sees it; the next statement sets the expiry to
   * its own time plus the lease time, which is what commits.
   */
  async extendWithinBatch(client: pg.ClientBase, nextBytes: number): Promise<void> {
    await client.query({
      name: "grf_lease_extend_after_write",
      text: this.sql.extendAfterWrite,
      values: [this.store, this.holder, this.epochValue, this.ttlMs + Math.ceil(nextBytes / SLOWEST_LINK_BYTES_PER_MS)],
    });
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

  /** Stops renewing and lets the next contender in at once (when still ours). */
  async release(): Promise<void> {
    const lapsed = this.lapsed;
    this.stop();
    // Past its own deadline the lease is over for this writer, and the database may not answer (close() must end).
    if (lapsed || this.epochValue === 0) return;
    await this.conn
      .run((c) => c.query({ name: "grf_lease_release", text: this.sql.release, values: [this.store, this.holder, this.epochValue] }))
      .catch(() => undefined); // unreleased, it simply expires
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
    try {
      const r = await this.conn.run((c) =>
        c.query({ name: "grf_lease_renew", text: this.sql.renew, values: [this.store, this.holder, this.epochValue, this.ttlMs] }),
      );
      if (r.rowCount === 1) this.extended(sentAt);
      // Refused beside a write of ours: that write's answer (fenced, or afterWrite) decides, not a lapse it caused.
      else if (!this.stopped && this.writesInFlight === 0 && this.lastWriteAnsweredAt < sentAt) await this.fenced();
    } catch {
      // Unreachable database: try again next interval; the deadline decides when to give up.
      this.conn.reset();
    }
    this.schedule();
  }

  private lose(why: string, current: LeaseState | undefined): StorageError {
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
    return this.lostError;
  }

  private lockedError(current: LeaseState): StorageError {
    return new StorageError(
      "store-locked",
      `${this.where} is held by ${JSON.stringify(current.holder)} (epoch ${current.epoch}) for ${Math.ceil(current.remainingMs)} ms more by the database clock: one writer per store; open it read-only to read it meanwhile, or wait (lease.waitMs)`,
      { store: this.store, holder: current.holder, epoch: current.epoch, remainingMs: Math.ceil(current.remainingMs) },
    );
  }
}
