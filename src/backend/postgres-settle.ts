/**
 * Ends the server session of a write whose answer was lost, and waits until it is gone, so that the write's outcome
 * is settled before the write is reported in doubt. Layer 1.
 *
 * Dropping the client side of a connection does not end the server's session at once: a request still on its way
 * (held by the network, queued in a proxy) reaches it later, still matches the writer's holder and epoch, and runs.
 * Written after the in-doubt error, it overwrote a value of the same key the writer wrote and got acknowledged since,
 * and a read-back right after the error found the key absent although the write landed later (review r273). Ended
 * here (pg_terminate_backend, on another connection), its late request finds no session; once the process is gone
 * from pg_stat_activity nothing of it can commit any more (a commit under way finishes first: the process leaves the
 * view at its exit).
 */
import { performance } from "node:perf_hooks";
import type pg from "pg";
import type { SerialConnection } from "./postgres-connection.js";
import { isConnectionFailure } from "./postgres-errors.js";

/**
 * A server session: its process id, and when it started (as microseconds since the epoch, text), which tells it from
 * a later session given the same pid once it is gone.
 */
export interface ServerSession {
  readonly pid: number;
  readonly started: string;
}

/** The session start as both sides compute it (one expression, so the same session gives the same text). */
export const SESSION_STARTED_SQL = "(extract(epoch FROM backend_start) * 1000000)::bigint::text";

/**
 * Signals the session only while it waits for its client: between statements (`idle`, `idle in transaction`), in the
 * middle of receiving one (`active`, ClientRead), or sending an answer (`active`, ClientWrite); `signalled` null
 * otherwise, and the caller looks again. A statement the server is still running is left to finish: one that
 * committed locally and waits for a synchronous standby (wait_event SyncRep) would end "committed locally, but might
 * not have been replicated", and be reported settled while a failover to that standby loses it (review r286). Ended
 * while waiting for its client, nothing of the session is between the local commit and its replication: the wait for
 * the standby comes before the answer is sent.
 */
const END_SQL = `SELECT CASE WHEN state LIKE 'idle%' OR (state = 'active' AND wait_event IN ('ClientRead', 'ClientWrite'))
    THEN pg_terminate_backend(pid) END AS signalled FROM pg_stat_activity
  WHERE pid = $1 AND ${SESSION_STARTED_SQL} = $2`;

/** Each client connection's session (recorded by its setup: postgres.ts prepareSession). */
const sessions = new WeakMap<pg.ClientBase, ServerSession>();

export function recordSession(client: pg.ClientBase, session: ServerSession): void {
  sessions.set(client, session);
}

export function sessionOf(client: pg.ClientBase): ServerSession | undefined {
  return sessions.get(client);
}

/**
 * Ends `session` and waits until it is gone, asking on `asker`; true once gone. False when that could not be seen
 * within `boundMs` (the database does not answer, the role may not end it, a statement of it still runs: a commit
 * waiting for its synchronous standby, say): the outcome may still change then.
 */
export async function endSession(asker: SerialConnection, session: ServerSession, boundMs: number): Promise<boolean> {
  // Bounded as a whole: one look may wait behind a renewal, for a new connection, or for an answer that never comes
  // (the network that lost the write's answer may hold these too). A look still queued after the bound runs later,
  // harmlessly (it names this session alone).
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), boundMs);
  });
  try {
    return await Promise.race([lookUntilGone(asker, session, performance.now() + boundMs), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function lookUntilGone(asker: SerialConnection, session: ServerSession, giveUpAt: number): Promise<boolean> {
  let pauseMs = 5;
  for (;;) {
    try {
      // Signalled again at each look: harmless, and a look is one statement either way.
      const r = await asker.run((c) => c.query({ text: END_SQL, values: [session.pid, session.started] }));
      if (r.rowCount === 0) return true;
    } catch (err) {
      // A server error (no right to end it, say) stays so: no use asking again.
      if (!isConnectionFailure(err)) return false;
    }
    const left = giveUpAt - performance.now();
    if (left <= 0) return false;
    await new Promise((r) => setTimeout(r, Math.min(pauseMs, left)));
    pauseMs = Math.min(pauseMs * 2, 100);
  }
}
