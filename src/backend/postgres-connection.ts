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
import { isConnectionFailure, isTransientOutage } from "./postgres-errors.js";

export class SerialConnection {
  private client: pg.Client | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** When the call running now got its connection (performance.now()); undefined while none runs. */
  private runningSince: number | undefined;

  constructor(
    private readonly config: ClientConfig,
    /** Runs once on each new connection (session settings). */
    private readonly init: (client: pg.Client) => Promise<void> = async () => undefined,
  ) {}

  /** Runs `fn` after every earlier call has settled, on a live connection. */
  run<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const result = this.tail.then(async () => {
      const client = await this.connect();
      this.runningSince = performance.now();
      try {
        return await fn(client);
      } catch (err) {
        // A server error (a SQLSTATE) leaves the session usable; anything else may have broken it.
        if (isConnectionFailure(err)) this.discard(client);
        throw err;
      } finally {
        this.runningSince = undefined;
      }
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Since when the call running now has been running on its connection, or undefined (none runs). */
  get busySince(): number | undefined {
    return this.runningSince;
  }

  /** The server process (pg_stat_activity's pid) of the current connection, or undefined (none open). */
  get backendPid(): number | undefined {
    const pid = (this.client as { processID?: unknown } | undefined)?.processID;
    return typeof pid === "number" ? pid : undefined;
  }

  /**
   * Drops the current connection (the next call opens a new one), e.g. after a client-side query timeout. A
   * statement waiting for its answer on it fails with the driver's "Connection terminated".
   */
  reset(): void {
    if (this.client) this.discard(this.client);
  }

  /** Waits for queued work, then closes. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return this.tail.then(() => undefined);
    this.closed = true;
    await this.tail;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const { default: driver } = await import("pg");
    const client = new driver.Client(this.config);
    // An idle connection that drops emits "error"; unheard, it would crash the process.
    client.on("error", () => this.discard(client));
    client.on("end", () => this.discard(client));
    try {
      await client.connect();
      await this.init(client);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    this.client = client;
    return client;
  }

  private discard(client: pg.Client): void {
    if (this.client === client) this.client = undefined;
    client.end().catch(() => undefined);
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
