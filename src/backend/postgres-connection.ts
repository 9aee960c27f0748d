/**
 * One PostgreSQL connection that runs its work strictly in call order and reconnects after a failure. Layer 1.
 *
 * Order matters: a backend's calls may be issued without awaiting each other (a write, then a read of the same
 * key), and one connection serving them in turn keeps read-your-writes. A connection that failed (the server
 * restarted, an administrator terminated it, the network dropped) is discarded; the next call opens a new one.
 * The pg driver is imported at the first connection: a process or store worker that never opens a PostgreSQL
 * store does not pay for loading it (~60 ms of CPU at each start, measured on this machine).
 */
import type pg from "pg";
import type { ClientConfig } from "pg";
import { isConnectionFailure, isTransientOutage, UnansweredError } from "./postgres-errors.js";

/**
 * The slowest uplink a request is given time for: 256 bytes a millisecond (about 2 Mbit/s). Bytes that left this
 * process may sit in buffers on the way (the kernel's send buffer holds up to 4 MiB here; a proxy or a tunnel more),
 * out of sight, and a slow link takes them on in steps: a request is given the time its size takes at this rate to
 * arrive (postgres-answer-watch.ts). A dead link is noticed after that time: ~16 s for the
 * 4 MiB a kernel buffer takes.
 */
export const SLOWEST_LINK_BYTES_PER_MS = 256;

/**
 * Select-list items that turn off, for the session, the server settings that end a session of ours rather than fail
 * one statement, on servers that have them: set_config, not connection options, since an older server refuses to
 * start a session with a setting it does not know. idle_session_timeout (PostgreSQL 14 on): a server, role or database
 * setting ended an idle writer's data session, and a write sent as the server ended it (a process busy at that moment,
 * or a write crossing the server's close on the wire) failed in doubt with nothing stored (task 384); the lease's
 * session lost its liveness lock (review r372 F3). With `transactions`, transaction_timeout too (17 on): it ends the
 * session, not the statement, so a write it cut lost its connection, and a lease session cut in a lock wait let its
 * liveness lock go; statement_timeout and idle_in_transaction_session_timeout bound those sessions instead.
 */
export function keepSessionColumns(transactions: boolean): string {
  const version = "current_setting('server_version_num')::int";
  const idle = `CASE WHEN ${version} >= 140000 THEN set_config('idle_session_timeout', '0', false) END AS keep_idle`;
  return transactions
    ? `${idle}, CASE WHEN ${version} >= 170000 THEN set_config('transaction_timeout', '0', false) END AS keep_transaction`
    : idle;
}

/** Runs keepSessionColumns on `client` (a session with no other setup statement to carry them). */
export async function keepSession(client: pg.ClientBase, transactions: boolean): Promise<void> {
  await client.query(`SELECT ${keepSessionColumns(transactions)}`);
}

/**
 * A call whose connection was dropped (SerialConnection.reset) while part of its request still waited in this
 * process's socket buffer, which closing the socket discards: the server never got the request's end (its Sync, or
 * for a split batch anything of its COMMIT), so nothing of it was committed. Not in doubt.
 */
export class RequestNotSentError extends Error {
  constructor(readonly unsentBytes: number) {
    super(`the connection was dropped with ${unsentBytes} bytes of the request not yet sent: the server never got it whole, nothing of it was stored`);
    this.name = "RequestNotSentError";
  }
}

/**
 * Where the socket of the running call stands in sending: `moved` changes whenever bytes go on to the operating
 * system (or new ones are queued); `unsent` counts bytes still queued in this process (libuv's queue), which
 * closing the socket discards.
 */
export interface SendProgress {
  readonly moved: string;
  readonly unsent: number;
  /** Bytes of the outstanding statement's request that left this process so far (they may still be on their way). */
  readonly requestBytes: number;
  /** Bytes that arrived on the socket so far: a change means an answer is arriving. */
  readonly received: number | undefined;
}

/** A socket's traffic so far (SerialConnection.wire). */
export interface Wire {
  /** Which socket (a new connection starts from no byte). */
  readonly socket: object;
  readonly read: number;
  readonly written: number;
  /** Still being connected (DNS, TCP handshake): waiting on the far side, nothing to write yet. */
  readonly connecting: boolean;
}

interface SocketLike {
  readonly bytesRead?: unknown;
  readonly connecting?: unknown;
  readonly bytesWritten?: unknown;
  destroy?(): void;
  readonly writableLength?: unknown;
  /** libuv's count of queued bytes: it goes down within one big write, which writableLength counts until it is done. */
  readonly _handle?: { readonly writeQueueSize?: unknown } | null;
}

/** The driver's socket (pg.Client keeps it as connection.stream; a TLS socket once SSL is on). */
function socketOf(client: pg.Client | undefined): SocketLike | undefined {
  return (client as { connection?: { stream?: SocketLike } } | undefined)?.connection?.stream;
}

export class SerialConnection {
  private client: pg.Client | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** The running call (between getting its connection and settling), undefined while none runs. */
  private call: object | undefined;
  /**
   * When the running call's statement now outstanding was sent (performance.now()); undefined while none is: the
   * call may be between statements, its process busy or awaiting something else, which is no answer of the server's.
   */
  private statementSince: number | undefined;
  /** Statements of the running call sent and not yet answered (a call may queue several on its client). */
  private outstanding = 0;
  /** The socket's bytesWritten when the outstanding statement was sent. */
  private writtenBefore = 0;
  /** The client being opened (connect and session setup), until it is the connection or dropped. */
  private opening: pg.Client | undefined;
  /** Clients dropped by reset() while bytes of their request were still queued, and how many. */
  private readonly droppedUnsent = new WeakMap<pg.Client, number>();
  /** Clients ended here (dropped, closed, or after the driver's "error"/"end"): the driver sends them nothing more. */
  private readonly ended = new WeakSet<pg.Client>();

  constructor(
    private readonly config: ClientConfig,
    /** Runs once on each new connection (session settings). */
    private readonly init: (client: pg.Client) => Promise<void> = async () => undefined,
    /** Told when the open connection is dropped (not closed): the next call opens a new one, unless one is made now. */
    private readonly dropped: () => void = () => undefined,
  ) {}

  /**
   * Runs `fn` after every earlier call has settled, on a live connection. With `bound`, a call still running after
   * `bound.ms` has its connection dropped and fails with UnansweredError (for requests that must answer quickly, e.g.
   * the schema check at open, where no answer watch runs yet).
   */
  run<T>(fn: (client: pg.Client) => Promise<T>, bound?: { readonly ms: number; readonly what: string }): Promise<T> {
    const result = this.tail.then(async () => {
      const client = await this.connect();
      this.call = {};
      this.outstanding = 0;
      let late = false;
      const timer =
        bound &&
        setTimeout(() => {
          late = true;
          this.reset();
        }, bound.ms);
      try {
        return await fn(client);
      } catch (err) {
        // A server error (a SQLSTATE) leaves the session usable; anything else may have broken it.
        if (isConnectionFailure(err)) this.discard(client);
        const unsent = this.droppedUnsent.get(client);
        if (unsent !== undefined) throw new RequestNotSentError(unsent);
        throw late && bound ? new UnansweredError(bound.what, bound.ms) : err;
      } finally {
        clearTimeout(timer);
        this.call = undefined;
        this.statementSince = undefined;
      }
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  /**
   * Since when the running call's statement now outstanding has waited for its answer (sent, its answer not yet
   * received), or undefined (none is).
   */
  get busySince(): number | undefined {
    return this.statementSince;
  }

  /** The server process (pg_stat_activity's pid) of the current connection, or undefined (none open). */
  get backendPid(): number | undefined {
    const pid = (this.client as { processID?: unknown } | undefined)?.processID;
    return typeof pid === "number" ? pid : undefined;
  }

  /**
   * The socket of the connection open or being opened, as bytes moved on it (undefined: none, or a socket that does
   * not say): postgres-silence.ts tells from it whether the server owes an answer and says nothing.
   */
  get wire(): Wire | undefined {
    const socket = socketOf(this.client ?? this.opening);
    const read = socket?.bytesRead;
    const written = socket?.bytesWritten;
    if (socket === undefined || typeof read !== "number" || typeof written !== "number") return undefined;
    return { socket, read, written, connecting: socket.connecting === true };
  }

  /** The current socket's sending progress, or undefined (no connection, or a socket that does not say). */
  get sendProgress(): SendProgress | undefined {
    const socket = socketOf(this.client);
    const written = socket?.bytesWritten;
    const queued = socket?.writableLength;
    const inLibuv = socket?._handle?.writeQueueSize;
    if (typeof written !== "number" || typeof queued !== "number") return undefined;
    const unsent = typeof inLibuv === "number" ? inLibuv : 0;
    const read = socket?.bytesRead;
    return {
      moved: `${written}/${queued}/${unsent}`,
      unsent,
      requestBytes: Math.max(0, written - this.writtenBefore - unsent),
      received: typeof read === "number" ? read : undefined,
    };
  }

  /**
   * Counts the statements `client` is sent while a call runs (its query()), so that the watch looks at a statement
   * from when it was sent until its answer came, each on its own: not at a call's time between statements, which a
   * busy process or an await of something else may stretch. Installed after the session setup, which has its own bound.
   */
  private countStatements(client: pg.Client): void {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const call = this.call;
      const counted = this.client === client && call !== undefined;
      if (counted && this.outstanding++ === 0) this.statementSent(client);
      const result = query(...args);
      if (!counted) return result;
      const answered = (): void => {
        if (this.call !== call || this.client !== client) return; // its call is over, or the connection dropped
        // The next statement queued on the client goes out now: its wait starts now.
        if (--this.outstanding > 0) this.statementSent(client);
        else this.statementSince = undefined;
      };
      if (result instanceof Promise) result.then(answered, answered);
      else answered(); // not a promise (a callback or a submittable): not ours to follow
      return result;
    };
  }

  private statementSent(client: pg.Client): void {
    this.statementSince = performance.now();
    const written = socketOf(client)?.bytesWritten;
    this.writtenBefore = typeof written === "number" ? written : 0;
  }

  /**
   * Drops the current connection (the next call opens a new one), e.g. after a client-side query timeout. A
   * statement waiting for its answer on it fails with the driver's "Connection terminated", or with
   * RequestNotSentError when part of its request had not left this process yet (closing discards it).
   */
  reset(): void {
    if (!this.client) return;
    const unsent = this.sendProgress?.unsent ?? 0;
    if (unsent > 0) this.droppedUnsent.set(this.client, unsent);
    this.discard(this.client);
  }

  /**
   * False once `client` was ended here: a statement given to it now is refused by the driver without a byte of it
   * sent ("not queryable"). The server may have ended the session meanwhile (an idle-in-transaction timeout, a
   * contender ending a lapsed holder's transaction): the driver's "error" for it arrives with the last answer, before
   * the caller's next statement (a split batch's COMMIT, which then is certain not to have committed).
   */
  canSend(client: pg.Client): boolean {
    return !this.ended.has(client);
  }

  /** Waits for queued work, then closes (within the open bound: see end). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return this.tail.then(() => undefined);
    this.closed = true;
    await this.tail;
    const client = this.client;
    this.client = undefined;
    if (client) await this.end(client);
  }

  /** The bound of opening a connection, its session setup included, and of closing one (connectionTimeoutMillis). */
  private get boundMs(): number | undefined {
    const ms = this.config.connectionTimeoutMillis;
    return typeof ms === "number" && ms > 0 ? ms : undefined;
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const { default: driver } = await import("pg");
    const client = new driver.Client(this.config);
    // An idle connection that drops emits "error"; unheard, it would crash the process.
    client.on("error", () => this.discard(client));
    client.on("end", () => this.discard(client));
    // One bound for the whole opening: the driver's connect timeout ends at the server's first ReadyForQuery, and
    // the session setup after it is a request like any other, whose answer may never come (a frozen host, a network
    // that drops answers): unbounded, the call that needed the connection, flush() and close() waited for ever.
    const startedAt = performance.now();
    let timer: NodeJS.Timeout | undefined;
    this.opening = client;
    try {
      await client.connect();
      const bound = this.boundMs;
      const setup = this.init(client);
      await (bound === undefined
        ? setup
        : Promise.race([
            setup,
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new UnansweredError("its session setup", bound)), Math.max(1, bound - (performance.now() - startedAt)));
            }),
          ]));
    } catch (err) {
      await this.end(client);
      throw err;
    } finally {
      clearTimeout(timer);
      this.opening = undefined;
    }
    this.client = client;
    this.countStatements(client);
    return client;
  }

  /**
   * Whether the server takes a new connection now: one opened beside this one (no session setup) and ended at once;
   * false when it is refused (a server shutting down refuses one before it ends any session) or cannot be made.
   */
  async serverTakesConnections(): Promise<boolean> {
    const { default: driver } = await import("pg");
    const client = new driver.Client(this.config);
    client.on("error", () => undefined); // failed or dropped: the answer is false, or already given
    try {
      await client.connect();
      return true;
    } catch {
      return false;
    } finally {
      await this.end(client);
    }
  }

  private discard(client: pg.Client): void {
    const current = this.client === client;
    if (current) this.client = undefined;
    void this.end(client);
    if (current && !this.closed) this.dropped();
  }

  /**
   * Ends `client`: its Terminate, then the wait for the server to close its side, which a frozen host never does
   * (the driver's end() waited for ever). Past the open bound the socket is destroyed.
   */
  private async end(client: pg.Client): Promise<void> {
    this.ended.add(client);
    const ended = client.end().catch(() => undefined);
    const bound = this.boundMs;
    if (bound === undefined) return ended;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      ended,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          socketOf(client)?.destroy?.();
          resolve();
        }, bound);
      }),
    ]);
    clearTimeout(timer);
  }
}

/**
 * Runs `fn`, running it again after a lost or refused connection (the database restarting, a network cut:
 * isTransientOutage) until `giveUpAt` (a performance.now() time) has passed; then, or on any other error (a wrong
 * host or password, a refused schema), it throws at once. Polls every `pollMs`.
 */
export async function retryWhileDisconnected<T>(fn: () => Promise<T>, giveUpAt: number, pollMs: number): Promise<T> {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientOutage(err) || performance.now() >= giveUpAt) throw err;
      await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, giveUpAt - performance.now()))));
    }
  }
}
