/**
 * Whether a PostgreSQL server owes this process an answer on a connection and has said nothing since: the evidence
 * the answer watch counts a server unasked by (postgres-answer-watch.ts). Layer 1.
 *
 * "No byte arrived within a bound" alone is weak evidence when this process is the slow one: its own part of an
 * exchange (opening a connection takes several round trips, with SCRAM's computing between them) waits for turns of
 * a busy event loop, and after a long turn Node runs an expired timer before it reads the socket, so an answer
 * already in the kernel's buffer looks missing. So silence counts only while the server owes something, and only
 * from when it does: the socket still connecting, a statement sent and not answered (SerialConnection.busySince), or
 * bytes written since the last look with none read. A byte read ends it. Looks are samples taken at or after the
 * events they see, so the silence counted never starts before the true one. Where a look sees bytes both written
 * and read since the last, the server may have answered the write: nothing counts as owed (a frozen server is still
 * caught, later: the asker's own timeouts open a new connection, which owes from its connecting on). A connection
 * dropped while owed, never having heard a byte, passes its silence on to the next: a server that never answers is
 * not asked afresh each time.
 */
import type { SerialConnection } from "./postgres-connection.js";

export class ServerSilence {
  private current: object | undefined;
  private read = 0;
  private written = 0;
  /** The look that last saw a byte arrive (a statement sent before it is answered, or under way). */
  private heardAt = Number.NEGATIVE_INFINITY;
  private owedSince: number | undefined;

  constructor(private readonly conn: SerialConnection) {}

  /** The socket the last look saw (undefined: none open or being opened). */
  get socket(): object | undefined {
    return this.current;
  }

  /** Looks at the connection at `now` (performance.now()): since when the server owes an answer and said nothing. */
  look(now: number): number | undefined {
    const wire = this.conn.wire;
    if (wire?.socket !== this.current) {
      // A connection that never heard a byte and was dropped or opened again (its connect timed out against a frozen
      // host) passes its silence on. One that had heard the server may have been dropped by a timer of this process
      // that ran before its socket was read (the driver's query_timeout after a long turn): its silence is void.
      if (this.read > 0) this.owedSince = undefined;
      this.current = wire?.socket;
      this.read = 0; // a new connection starts from no byte
      this.written = 0;
    }
    if (wire === undefined) return this.owedSince;
    const heard = wire.read !== this.read;
    const wrote = wire.written !== this.written;
    this.read = wire.read;
    this.written = wire.written;
    if (heard) {
      this.heardAt = now;
      this.owedSince = undefined;
    }
    const sent = this.conn.busySince;
    if (sent !== undefined) this.owedSince = Math.max(sent, this.heardAt);
    else if (wire.connecting || (wrote && !heard)) this.owedSince ??= now;
    return this.owedSince;
  }
}
