/**
 * First come, first served room under `maxPendingBytes` (docs/design.md §3.19), one rule for inline tiers and
 * engine stores. Without it a write refused for its size could wait forever: a steady stream of small writes from
 * others kept what is pending too high for it, since each small one fit beside it. Now a refused write reserves its
 * weight: later writes are taken only if they fit beside what is pending AND every reservation ahead of them, so
 * room frees up for the waiting write, and its retry (a write within a factor of two of its weight) claims it.
 * A reservation whose room stood free for RESERVATION_LAPSE_MS unclaimed lapses: a writer that gave up must not
 * hold the store back for good. A retry more than twice heavier than its reservation (a newer, larger value) claims
 * none: it may go in front of the first reservation (see `admit`), else it would wait for its own old one to lapse.
 */
/** How long a reservation whose write would now be taken waits for its retry before it lapses. */
export const RESERVATION_LAPSE_MS = 1000;

interface Reservation {
  readonly weight: number;
  /** Since when its write would be taken (ms, Date.now()); undefined while it would not. */
  readySince: number | undefined;
  /** A write went in front of it, or it went in front of one: nothing may go in front of it (again). */
  overtaken: boolean;
}

export class RoomQueue {
  private readonly queue: Reservation[] = [];
  /** The weight of the write refused last (0 once a write was taken since): what drained() without a weight waits for. */
  private lastRefused = 0;

  constructor(private readonly bound: () => number | undefined) {}

  /** The weight of the write refused last (0 once a write was taken since). */
  get refusedWeight(): number {
    return this.lastRefused;
  }

  /**
   * Takes (true) or refuses (false) a write weighing `weight` that replaces a pending one weighing `freed`, beside
   * `held` bytes pending. A refused write reserves its weight, unless a reservation it would claim is queued.
   */
  admit(held: number, weight: number, freed: number): boolean {
    const max = this.bound();
    if (max === undefined) return true;
    this.lapse(held, max);
    const i = this.indexOf(weight);
    if (this.fitsAt(held - freed, weight, i, max)) {
      if (i >= 0) this.queue.splice(i, 1);
      this.lastRefused = 0;
      return true;
    }
    this.lastRefused = weight;
    if (i >= 0) return false;
    if (this.mayOvertake(weight)) {
      // In front of the first reservation: taken if it fits beside what is held alone, else reserved there.
      const head = this.queue[0] as Reservation;
      head.overtaken = true;
      if (this.fitsAt(held - freed, weight, 0, max)) {
        this.lastRefused = 0;
        return true;
      }
      this.queue.unshift({ weight, readySince: undefined, overtaken: true });
      return false;
    }
    this.queue.push({ weight, readySince: undefined, overtaken: false });
    return false;
  }

  /**
   * Whether a write of `weight` that claims no reservation and does not fit behind them may go in front of the first
   * one: when it weighs more than twice it (so it claimed nothing) and that one's room stands free, so its writer was
   * woken and the write is most likely its retry with a newer, larger value (which otherwise queued behind its own
   * stale reservation until that lapsed, 1 s). Not while the first one still waits for room: a heavier write refused
   * then is another writer's, and goes behind it. Lighter writes never go in front (a stream of small writes must
   * not starve a big one), and a reservation is gone in front of once at most, by a write that cannot be gone in
   * front of itself, so every reservation is still taken in bounded turns.
   */
  private mayOvertake(weight: number): boolean {
    const head = this.queue[0];
    return head !== undefined && !head.overtaken && weight > 2 * head.weight && head.readySince !== undefined;
  }

  /**
   * `admit` that only takes: a write that fits by the room rule is taken (claiming its reservation); one that does
   * not is left to `admit`, with nothing changed. For a caller whose `held` may be above the true figure (an engine
   * store reads the actor's acknowledgements only when this refuses): `admit` on that figure could find a
   * reservation's room not free when it was (restarting its lapse clock, keeping a heavier retry from going in front
   * of it) and queue a reservation that the call on the exact figure then found behind the stale one.
   */
  take(held: number, weight: number, freed: number): boolean {
    const max = this.bound();
    if (max === undefined) return true;
    const i = this.indexOf(weight);
    if (!this.fitsAt(held - freed, weight, i, max)) return false;
    if (i >= 0) this.queue.splice(i, 1);
    this.lastRefused = 0;
    return true;
  }

  /**
   * Whether a write weighing `weight` (default: the write refused last) would be taken now; with no write known
   * refused, whether `held` is at most half the bound (hysteresis: not a wake-up per commit).
   */
  ready(held: number, weight?: number): boolean {
    const max = this.bound();
    if (max === undefined || (held <= 0 && this.queue.length === 0)) return true;
    this.lapse(held, max);
    const need = weight ?? this.lastRefused;
    if (need <= 0) return this.queue.length === 0 && held <= max / 2;
    return this.fitsAt(held, need, this.indexOf(need), max);
  }

  /** When the next reservation lapses if nothing changes (for a timer while someone waits), else undefined. */
  nextLapseAt(): number | undefined {
    let next: number | undefined;
    for (const r of this.queue) {
      if (r.readySince !== undefined) next = Math.min(next ?? Infinity, r.readySince + RESERVATION_LAPSE_MS);
    }
    return next;
  }

  /** Forgets every reservation (close, rollback of everything, a dead actor). */
  clear(): void {
    this.queue.length = 0;
    this.lastRefused = 0;
  }

  /**
   * The reservation a write of `weight` claims: the first within a factor of two of it. Not only an equal weight: a
   * frame attach vouched for is weighed by the store's average committed write, which moves between attempts, and a
   * retry that never matched queued a new reservation each time (attach's frames stalled until theirs lapsed). A
   * similar write of another writer may take the place; the room check still uses its own weight.
   */
  private indexOf(weight: number): number {
    for (let i = 0; i < this.queue.length; i++) {
      const reserved = (this.queue[i] as Reservation).weight;
      if (reserved <= 2 * weight && weight <= 2 * reserved) return i;
    }
    return -1;
  }

  /**
   * The room rule with reservations: the write at queue index `i` (-1: not reserved, behind every reservation)
   * fits when nothing is pending or reserved ahead of it, or when all of that plus itself stays within the bound.
   * A write larger than the bound is thus taken only alone, once those ahead of it went in.
   */
  private fitsAt(others: number, weight: number, i: number, max: number): boolean {
    const end = i < 0 ? this.queue.length : i;
    let ahead = others;
    for (let j = 0; j < end; j++) ahead += (this.queue[j] as Reservation).weight;
    return ahead <= 0 || ahead + weight <= max;
  }

  /** Marks reservations whose write would now be taken and drops those that waited unclaimed too long. */
  private lapse(held: number, max: number): void {
    if (this.queue.length === 0) return;
    const now = Date.now();
    for (let i = 0; i < this.queue.length; ) {
      const r = this.queue[i] as Reservation;
      if (!this.fitsAt(held, r.weight, i, max)) {
        r.readySince = undefined;
        i++;
      } else if (r.readySince === undefined) {
        r.readySince = now;
        i++;
      } else if (now - r.readySince >= RESERVATION_LAPSE_MS) {
        this.queue.splice(i, 1);
        if (this.lastRefused === r.weight) this.lastRefused = 0;
      } else i++;
    }
  }
}
