/**
 * Ends a data statement whose answer will never come. A database host that froze or lost power after taking a
 * COMMIT, or a network that lost the answer and keeps the socket open, left the statement, the tier's flush and
 * close() waiting forever: the data connection has no client-side timeout (a big batch or read may rightly take
 * longer than any fixed bound). Layer 1.
 *
 * Once a statement has waited for its answer for the lease time (from when it was sent, each statement of a call on
 * its own: SerialConnection.busySince), each tick asks the server, on another connection (a writer's lease
 * connection; a read-only handle's own, opened at its first question), what the data connection's server process is
 * doing (pg_stat_activity), and looks at the data socket's progress.
 * - Bytes arrived since the last tick: the answer is coming; the watch starts over.
 * - Gone: the data connection is dropped.
 * - Idle since the same moment at two ticks while the client still waits: its answer was lost, unless bytes of the
 *   request left the socket meanwhile (a Bind of a prepared statement still arriving on a slow link shows idle).
 * - Waiting to read from the client (`active`, wait_event ClientRead: the server has part of the request, e.g. a
 *   Parse, and waits for the rest) at two ticks with no byte sent between them: the request is stuck on its way
 *   (a stalled network, a frozen proxy); a slow link moves bytes and is left alone.
 * - Otherwise running (executing, or waiting for a lock, which statement_timeout governs): left alone.
 * A dropped statement fails as a lost connection: in doubt when its COMMIT had been sent (postgres.ts `apply`), but
 * not when bytes of it were still queued in this process (closing discards them, so the server never got its end:
 * RequestNotSentError). When the server cannot be asked either, the statement is dropped once `giveUpUnasked` says
 * so: for a writer, once its lease has lapsed by its own clock (whatever the server did with the write is settled
 * there, and this writer writes no more); for a reader, once the server owed the question an answer and said nothing
 * for half the lease time (postgres-silence.ts: a busy process's own slowness is not the server's silence), so a
 * frozen host fails a reader's statement in ~1.5 lease times.
 */
import { SLOWEST_LINK_BYTES_PER_MS, type SerialConnection } from "./postgres-connection.js";
import { ServerSilence } from "./postgres-silence.js";

const ACTIVITY_SQL = "SELECT state, wait_event, state_change::text AS changed FROM pg_stat_activity WHERE pid = $1";

/**
 * What the server says of a session: gone, idle (any idle state, since `changed`), reading the rest of a request,
 * busy otherwise, or unknown (not asked).
 */
type Seen = { readonly is: "gone" | "reading" | "busy" | "unknown" } | { readonly is: "idle"; readonly changed: string };

/** What a question got: what the server says, and, when it said nothing, since when it owed an answer (if it did). */
interface Asked {
  readonly seen: Seen;
  readonly silentSince?: number;
}

/** How many looks at the question's connection a question's bound takes (ServerSilence samples, so finer is sooner). */
const LOOKS_PER_BOUND = 10;

export class AnswerWatch {
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  /** When the watched statement's session was last seen going idle (pg_stat_activity.state_change). */
  private idleSince: string | undefined;
  /** The data socket's sending progress at the last tick (SerialConnection.sendProgress), and since when it stands. */
  private lastMoved: string | undefined;
  private stillSince = 0;
  /** The data socket's received bytes at the last tick (SendProgress.received). */
  private lastReceived: number | undefined;
  /** Since when the server could not be asked about the watched statement (undefined: it answered last time). */
  private unaskedSince: number | undefined;
  private watched: number | undefined;
  private readonly silence: ServerSilence;

  constructor(
    private readonly data: SerialConnection,
    /** The connection the server is asked on. */
    private readonly asker: SerialConnection,
    /** Whether to drop a statement the server could not be asked about for `unaskedForMs`. */
    private readonly giveUpUnasked: (unaskedForMs: number) => boolean,
    /** How long a statement runs before the server is asked about it. */
    private readonly patienceMs: number,
    tickMs: number,
    /**
     * How long the server may owe a question its answer, saying nothing, before the question counts as unanswered
     * (default: the patience). A question is given up on after the patience in any case, as unknown but not silent.
     */
    private readonly askBoundMs: number = patienceMs,
  ) {
    this.silence = new ServerSilence(asker);
    this.timer = setInterval(() => void this.tick(), tickMs);
    this.timer.unref(); // a watch alone never keeps a process alive
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    const since = this.data.busySince;
    if (this.probing || since === undefined || performance.now() - since < this.patienceMs) return;
    if (this.watched !== since) {
      this.watched = since;
      this.idleSince = undefined;
      this.lastMoved = undefined;
      this.lastReceived = undefined;
      this.unaskedSince = undefined;
      this.stillSince = performance.now();
    }
    const pid = this.data.backendPid;
    this.probing = true;
    const askedAt = performance.now();
    let asked: Asked;
    try {
      // No server process to ask about (none known): nothing the server could answer; counted from now.
      asked = pid === undefined ? { seen: { is: "unknown" }, silentSince: this.unaskedSince ?? askedAt } : await this.ask(pid);
    } finally {
      this.probing = false;
    }
    const seen = asked.seen;
    if (this.data.busySince !== since) return; // answered meanwhile
    const now = performance.now();
    const progress = this.data.sendProgress;
    // Bytes arrived since the last tick: the answer is coming, however slowly this process takes it in (a busy event
    // loop drains a big answer's tail from the socket's buffers while the server already shows idle, and the question
    // itself may not be answered within the patience). The watch starts over from here.
    const received = progress?.received;
    const receiving = received !== undefined && this.lastReceived !== undefined && received !== this.lastReceived;
    this.lastReceived = received;
    if (receiving) {
      this.idleSince = undefined;
      this.unaskedSince = undefined;
      this.stillSince = now;
      this.lastMoved = progress?.moved;
      return;
    }
    // Bytes of the request left the socket since the last tick: it is still arriving. A socket that does not say
    // counts as still (a lost answer must not wait forever).
    const moved = progress?.moved;
    const sending = moved !== undefined && this.lastMoved !== undefined && moved !== this.lastMoved;
    if (sending) this.stillSince = now;
    this.lastMoved = moved;
    // Idle once may be a batch between two of its statements; idle since the same moment a tick later is not.
    const idleBefore = this.idleSince;
    this.idleSince = seen.is === "idle" ? seen.changed : undefined;
    // Unasked only while the server owed the question an answer and said nothing: from when it owed it (a question
    // that got no answer because this process was slow to send or to read is no evidence against the server).
    this.unaskedSince = seen.is === "unknown" ? asked.silentSince : undefined;
    const hung =
      seen.is === "gone" ||
      (seen.is === "idle" && seen.changed === idleBefore && !sending) ||
      // A slow link moves bytes in steps (the kernel takes more once its buffer has drained a good part), or out of
      // sight once they left this process: stuck only once nothing moved here for the time the request's size
      // takes on the slowest link given time for.
      (seen.is === "reading" &&
        now - this.stillSince >= Math.max(this.patienceMs, (progress?.requestBytes ?? 0) / SLOWEST_LINK_BYTES_PER_MS)) ||
      (seen.is === "unknown" && this.giveUpUnasked(now - (this.unaskedSince ?? now)));
    if (hung) this.data.reset();
  }

  /**
   * Asks the server. Unknown and silent once the server owed the question an answer for `askBoundMs` and said nothing
   * (ServerSilence); unknown but not silent after the patience (this process slow to open the connection or to send,
   * a server answering slowly: asked again at a later tick).
   */
  private async ask(pid: number): Promise<Asked> {
    let looks: NodeJS.Timeout | undefined;
    let timer: NodeJS.Timeout | undefined;
    const unanswered = new Promise<Asked>((resolve) => {
      const silentSince = (): number | undefined => {
        const now = performance.now();
        const since = this.silence.look(now);
        return since !== undefined && now - since >= this.askBoundMs ? since : undefined;
      };
      const look = (): void => {
        if (silentSince() === undefined) return;
        const socket = this.silence.socket;
        // After a long turn a timer runs before the socket is read: the check phase after this turn's poll has read
        // what had arrived by then, so silence still seen there, on the same socket, is the server's.
        setImmediate(() => {
          const since = silentSince();
          if (since !== undefined && this.silence.socket === socket) resolve({ seen: { is: "unknown" }, silentSince: since });
        });
      };
      this.silence.look(performance.now());
      looks = setInterval(look, Math.max(1, Math.floor(this.askBoundMs / LOOKS_PER_BOUND)));
      // Its answer may be in the socket's buffer, unread after a long turn: one I/O turn first, as above.
      timer = setTimeout(() => setImmediate(() => resolve({ seen: { is: "unknown" } })), this.patienceMs);
    });
    try {
      // Unknown from the question itself (its connection failed): no answer, not yet the server's silence.
      return await Promise.race([this.askNow(pid).then((seen) => (seen.is === "unknown" ? unanswered : { seen })), unanswered]);
    } finally {
      clearInterval(looks);
      clearTimeout(timer);
    }
  }

  private async askNow(pid: number): Promise<Seen> {
    try {
      const r = await this.asker.run((c) =>
        c.query<{ state: string | null; wait_event: string | null; changed: string | null }>({ text: ACTIVITY_SQL, values: [pid] }),
      );
      const row = r.rows[0];
      if (row === undefined) return { is: "gone" };
      // NULL: a session this role may not see (it is its own, so this should not happen): nothing to go by.
      if (row.state === null || row.changed === null) return { is: "unknown" };
      if (row.state.startsWith("idle")) return { is: "idle", changed: row.changed };
      return row.state === "active" && row.wait_event === "ClientRead" ? { is: "reading" } : { is: "busy" };
    } catch {
      // A lost connection is dropped (SerialConnection.run) and opened again at the next question.
      return { is: "unknown" };
    }
  }
}
