/**
 * A single-producer single-consumer ring in a SharedArrayBuffer that hands one event-loop turn's writes from the
 * main thread to a store actor with no MessagePort message and no wake-up per turn (issue 13 item 2, docs/design.md
 * §3.35). One per actor epoch (connection.ts makes it with the epoch's port; ring-drain.ts drains it in the worker).
 *
 * Encoding: our own, for the two shapes a paced turn carries, written straight into shared memory: a run of kv puts
 * (`puts`: key and value per put) and a run of WAL frames as the engine's frame columns (`columns`: every slot
 * tagged; a header slot of a record's first columns op equal to the previous such op's as one byte). Values are
 * tagged: null, booleans, numbers as float64, strings as UTF-8, plain objects and arrays (JSON's shapes). Anything else (another
 * op, undefined inside a value, a bigint, a non-plain object, nesting past 64) is refused with `false` and the caller
 * posts the batch as a message instead, whose structured clone carries or refuses it as before.
 *
 * Order: each record carries `after`, the count of port messages the producer posted before it, and each message
 * the ring position written before it was posted; the consumer applies both in issue order (`TurnRingReader.next`).
 *
 * Waking: the consumer drains on its own schedule while writes flow (a short timer) and sleeps in Atomics.waitAsync
 * only after finding the ring empty for a while, raising the SLEEPING flag first; the producer notifies only when it
 * reads that flag. Both sides store then load with sequentially consistent atomics (producer: WRITE then SLEEPING;
 * consumer: SLEEPING then WRITE), so at least one of them sees the other: a write is never left asleep.
 *
 * Layout: Int32 header [write, read, sleeping, polls, sleeps, records written, records read, released] (polls to
 * records read are counts for stats and tests; released: the consumer let go, see TurnRingLedger), then `capacity` data bytes (a power of two). Positions are
 * free-running byte counters (wrapping at 2^32, compared as differences), so full and empty differ without a spare
 * slot. A record is [length u32][after u32][body], 8-byte aligned, never split across the end of the buffer: a
 * length of WRAP sends the reader back to offset 0. A record that does not fit in the free space is refused (the
 * caller falls back to a message), so memory stays bounded by the ring.
 */

const WRITE = 0;
const READ = 1;
const SLEEPING = 2;
const POLLS = 3;
const SLEEPS = 4;
const WRITTEN = 5;
const READ_RECORDS = 6;
/** Set by the consumer once it stopped for good (RingDrain.stop): the engine may hand the buffer to another store. */
const RELEASED = 7;
const HEADER_BYTES = 32;
const RECORD_HEADER = 8;
const WRAP = 0xffffffff;

/** Record body op tags; OPEN marks an op of a unit that continues in the next (the engine's `open`). */
const OP_PUTS = 1;
const OP_COLUMNS = 2;
const OP_END = 0;
const OPEN = 0x80;

/** Slot tags of the columns' generic values. */
const V_UNDEFINED = 0;
const V_NULL = 1;
const V_FALSE = 2;
const V_TRUE = 3;
const V_NUMBER = 4;
const V_STRING = 5;
const V_OBJECT = 6;
const V_ARRAY = 7;
/** Nesting deeper than this (or a cycle) is left to the message. */
const MAX_DEPTH = 64;
/** A columns header slot (count, varied, text, a shared field) equal to the same slot of the previous columns record. */
const V_SAME = 8;

/** The frame columns' header slots (src/wal/frame-columns.ts: N, VARIED, TEXT, then the shared fields). */
const HEAD_SLOTS = 14;

/** `Atomics.waitAsync` (V8, Node >= 16) is missing from TypeScript's ES2022 lib. */
type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
) => { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * A ring's size when none is given (the engine's `turnRingBytes` default): a paced turn's record is ~40–600 bytes and
 * the worker drains every millisecond while it is free, but a commit, a background fold or a compaction keeps it
 * from polling for tens to hundreds of milliseconds, and a paced graph update takes ~30 µs of wall time. 256 KiB
 * (~6,000 one-frame records) overflowed in two of three turns of a 20,000-wave paced run whose fold ran meanwhile
 * (each such turn then goes as a message), 1 MiB in 1.6 %, 4 MiB in none (design §3.35, task 198). The memory is
 * per store WRITING through it: a store takes one from its engine's ledger at its first paced write and gives it back
 * when it goes idle or its last tier closes (TurnRingLedger, design §3.35, task 209).
 */
export const DEFAULT_TURN_RING_BYTES = 1 << 20;

/** Whether `capacity` is a ring size the engine takes (0 turns the ring off). */
export function validTurnRingBytes(capacity: unknown): capacity is number {
  return typeof capacity === "number" && (capacity === 0 || (Number.isInteger(capacity) && capacity >= 1024 && capacity <= 1 << 30 && (capacity & (capacity - 1)) === 0));
}

export function createTurnRing(capacity = DEFAULT_TURN_RING_BYTES): SharedArrayBuffer {
  if (!validTurnRingBytes(capacity) || capacity === 0) {
    throw new RangeError(`turn ring capacity must be a power of two between 1 KiB and 1 GiB, got ${String(capacity)}`);
  }
  return new SharedArrayBuffer(HEADER_BYTES + capacity);
}

/**
 * Test-only (neither src/engine/index.ts nor src/index.ts exports it): sees each buffer a ledger makes, so a test can
 * hold a WeakRef to this thread's object and tell whether any main-thread structure still keeps a dropped ring
 * (turn-ring-ledger.test.ts; array-buffer byte counts also see a backing store an idle worker's garbage still holds).
 */
export const turnRingsMadeForTests: { watch?: (sab: SharedArrayBuffer) => void } = {};

/**
 * The engine's rings (design §3.35, task 209): a store takes one at its first paced write and gives it back when it
 * goes idle (no ring write for a sweep of the engine, RING_IDLE_MS) or its last tier closes, so the memory follows
 * the stores writing now, not every store ever opened (review r204: 1 MiB per store for the engine's life, 1,000
 * stores ~1 GiB). A ring given back is reused once its consumer marked it released (it reads it no more): a server
 * opening and closing a store per tenant cycles a few buffers instead of leaving one per tenant to the collectors of
 * two threads. Given-back rings are all kept for reuse, never dropped: a dropped one is freed only once the worker's
 * isolate collects its reference too, and an idle worker may not collect for as long as it stays idle (measured: 60
 * rings dropped by 100 idle stores stayed allocated until the engine closed). So the engine's rings never exceed
 * `maxRings` buffers (taken plus kept): past that a store's turns go as messages, as with the ring full. Only the
 * ring of an actor that was lost is dropped (`give(sab, false)`): its consumer may never say released.
 */
export class TurnRingLedger {
  /**
   * Rings given back, oldest first, each with the slot that gave it back: reused once their consumer released them.
   * An entry leaves this list when its ring is taken again, so `forget` of a slot whose actor was lost reaches only
   * the rings that slot's actor was handed back and may never release (review r214: a slot's own list of such rings
   * kept them past their reuse by another store, and forgot them when that store had given them back since).
   */
  private readonly returned: { readonly sab: SharedArrayBuffer; readonly by: object }[] = [];
  /** Rings held by stores now. */
  held = 0;
  /** Buffers made over the ledger's life (tests and stats: reuse keeps this small). */
  made = 0;

  constructor(
    readonly bytes: number,
    readonly maxRings: number,
  ) {}

  /** A ring for a store about to write one, or undefined when `maxRings` are held (its turns go as messages). */
  take(): SharedArrayBuffer | undefined {
    for (let i = 0; i < this.returned.length; i++) {
      const { sab } = this.returned[i]!;
      if (!ringReleased(sab)) continue;
      this.returned.splice(i, 1);
      new Int32Array(sab, 0, HEADER_BYTES / 4).fill(0); // positions and counts anew; the data bytes need no clearing
      this.held++;
      return sab;
    }
    // At the budget, with none released yet (their handover messages still on the way): a message this turn.
    if (this.held + this.returned.length >= this.maxRings) return undefined;
    this.held++;
    this.made++;
    const sab = createTurnRing(this.bytes);
    turnRingsMadeForTests.watch?.(sab);
    return sab;
  }

  /**
   * `sab` (taken here) is no longer written: kept for reuse once its consumer released it, or dropped when `reuse` is
   * false (its actor was lost: the consumer may never release it, and must not find it written by another store).
   * `by`: the slot giving it back (see `forget`).
   */
  give(sab: SharedArrayBuffer, reuse = true, by: object = this): void {
    this.held--;
    if (reuse) this.returned.push({ sab, by });
  }

  /**
   * Drops the rings `by` gave back that their consumer did not release: that slot's actor is gone (lost, or ended
   * before it read a handover), and an unreleased ring would hold a place in the budget for the engine's life. Rings
   * taken again since are no longer here: another store holds them, or gave them back itself.
   */
  forget(by: object): void {
    for (let i = this.returned.length - 1; i >= 0; i--) {
      const r = this.returned[i]!;
      if (r.by === by && !ringReleased(r.sab)) this.returned.splice(i, 1);
    }
  }

  /** Drops the rings kept for reuse (the engine closed: its workers are gone). */
  clear(): void {
    this.returned.length = 0;
  }

  /** Given-back rings whose consumer released them: the next `take` reuses one. */
  get reusable(): number {
    return this.returned.filter((r) => ringReleased(r.sab)).length;
  }

  /** Rings held by stores plus those kept for reuse: the buffers this ledger keeps alive. */
  get kept(): number {
    return this.held + this.returned.length;
  }
}

/**
 * One store's hold on a ring of its engine's ledger (the connection's end): none until the store's first paced write
 * takes one, given back when the store goes idle, its last tier closes or its actor is lost. Its counts add up the
 * rings the current actor used (stats and tests), from zero for each new actor.
 */
export class TurnRingSlot {
  writer: TurnRingWriter | undefined;
  private sab: SharedArrayBuffer | undefined;
  /** The ring's records written at the last idle check (`idle`). */
  private writtenAtCheck = -1;
  private past = { polls: 0, sleeps: 0, written: 0, read: 0 };

  constructor(private readonly ledger: TurnRingLedger) {}

  /** A ring from the ledger (undefined: its budget is held); the caller hands `sab` to the actor before writing. */
  take(): SharedArrayBuffer | undefined {
    const sab = this.ledger.take();
    if (sab === undefined) return undefined;
    this.sab = sab;
    this.writer = new TurnRingWriter(sab);
    this.writtenAtCheck = -1;
    return sab;
  }

  /**
   * Gives the ring back (the caller told the actor, or the actor ended); false when none was held. `reuse` false: the
   * actor was lost (see TurnRingLedger.give).
   */
  give(reuse = true): boolean {
    const sab = this.sab;
    if (sab === undefined) return false;
    const c = turnRingCounts(sab);
    // The actor applies every record before the handover message (or its loss reports them): counted as read.
    this.past = { polls: this.past.polls + c.polls, sleeps: this.past.sleeps + c.sleeps, written: this.past.written + c.written, read: this.past.read + c.written };
    this.sab = undefined;
    this.writer = undefined;
    // The ledger remembers who gave it back (not this slot: a ring outlives its give here, reused by other stores).
    this.ledger.give(sab, reuse, this);
    return true;
  }

  /**
   * Whether the ring held saw no record since the previous call and every record was read: the engine's sweep gives
   * such a ring back (an idle store holds none).
   */
  idle(): boolean {
    if (this.sab === undefined) return false;
    const c = turnRingCounts(this.sab);
    const quiet = c.written === this.writtenAtCheck && c.read === c.written;
    this.writtenAtCheck = c.written;
    return quiet;
  }

  /** A new actor: its counts start at zero (the lost actor's ring was given back). */
  restart(): void {
    this.lost();
    this.past = { polls: 0, sleeps: 0, written: 0, read: 0 };
  }

  /** The actor was lost: its ring is dropped, and so are those it was handed back and did not release. */
  lost(): void {
    this.give(false);
    this.ledger.forget(this);
  }

  /**
   * The actor shut down (its thread's task ended, after its drain released every ring it read): its ring is kept for
   * reuse, but a ring it never read is dropped: a handover posted after the actor stopped reading its port, which
   * nothing will ever release (it would hold a place in the budget for the engine's life; review r214, item 3).
   */
  ended(): void {
    this.give();
    this.ledger.forget(this);
  }

  /** The current actor's rings' counts: those given back plus the one held (asleep when none is: nothing polls). */
  counts(): TurnRingCounts {
    const p = this.past;
    if (this.sab === undefined) return { sleeping: true, ...p };
    const c = turnRingCounts(this.sab);
    return { sleeping: c.sleeping, polls: p.polls + c.polls, sleeps: p.sleeps + c.sleeps, written: p.written + c.written, read: p.read + c.read };
  }

  /** Whether a ring is held now. */
  get holding(): boolean {
    return this.sab !== undefined;
  }
}

/**
 * The rings an engine holds at most, in bytes (the budget): past it a store's turns go as messages. 64 MiB: the
 * paced stores of a busy server each keep the 1 MiB task 198 measured it needs; a thousand stores writing at once
 * share 64 rings and the rest send messages (what every store did before the ring).
 */
export const TURN_RING_BUDGET_BYTES = 64 << 20;

/** How many rings of `bytes` the budget holds (at least one). */
export function turnRingsInBudget(bytes: number): number {
  return Math.max(1, Math.floor(TURN_RING_BUDGET_BYTES / bytes));
}

/** The consumer let go of `sab` for good (RingDrain.stop). */
export function ringReleased(sab: SharedArrayBuffer): boolean {
  return Atomics.load(new Int32Array(sab, 0, HEADER_BYTES / 4), RELEASED) === 1;
}

/** A ring's counts (both ends write them; read by stats and tests). */
export interface TurnRingCounts {
  /** The consumer is asleep in Atomics.waitAsync (it polls no more until a record is written). */
  readonly sleeping: boolean;
  /** The consumer's polls (timer turns) and the times it went to sleep. */
  readonly polls: number;
  readonly sleeps: number;
  /** Records published by the producer, and applied by the consumer. */
  readonly written: number;
  readonly read: number;
}

export function turnRingCounts(sab: SharedArrayBuffer): TurnRingCounts {
  const h = new Int32Array(sab, 0, HEADER_BYTES / 4);
  return {
    sleeping: Atomics.load(h, SLEEPING) === 1,
    polls: Atomics.load(h, POLLS),
    sleeps: Atomics.load(h, SLEEPS),
    written: Atomics.load(h, WRITTEN),
    read: Atomics.load(h, READ_RECORDS),
  };
}

/** The ops a turn's batch may hold (the engine's `puts` and `columns` ops, reduced to what crosses). */
export type RingOp =
  | { readonly t: "puts"; readonly tier: number; readonly w: number; readonly n: number; readonly keys: readonly string[]; readonly values: readonly unknown[]; readonly open?: true }
  | { readonly t: "columns"; readonly tier: number; readonly w: number; readonly n: number; readonly keys: readonly string[]; readonly cols: unknown; readonly open?: true };

class RingView {
  protected readonly header: Int32Array;
  protected readonly bytes: Uint8Array;
  protected readonly words: DataView;
  protected readonly capacity: number;

  constructor(sab: SharedArrayBuffer) {
    this.header = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.capacity = sab.byteLength - HEADER_BYTES;
    this.bytes = new Uint8Array(sab, HEADER_BYTES, this.capacity);
    this.words = new DataView(sab, HEADER_BYTES, this.capacity);
  }

  /** Bytes written and not yet consumed. */
  protected used(): number {
    return (Atomics.load(this.header, WRITE) - Atomics.load(this.header, READ)) >>> 0;
  }
}

const encoder = new TextEncoder();

/**
 * Strings up to this many UTF-16 units are written by a JS loop while they are ASCII, longer ones by Buffer's native
 * UTF-8 write, whose call and well-formedness check cost more than the loop at these lengths (a flat 20-unit ASCII
 * string: 42 ns by the loop, 61 ns by utf8Write alone). At 16, a paced graph set's WAL key (26 units) and its value's
 * 20-unit string went native; at 64 its record encodes in ~455 ns instead of ~540 (design §3.38, task 217).
 */
const ASCII_LOOP = 64;

/** The own-key check of a for-in: measured ~25 ns less per 2–4-key object than Object.hasOwn (Node 20, task 217). */
const hasOwn = Object.prototype.hasOwnProperty;

/** `String.prototype.isWellFormed` (V8, Node >= 20) is missing from TypeScript's ES2022 lib. */
const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** The producer (main thread) end. */
export class TurnRingWriter extends RingView {
  private readonly buf: Buffer & { utf8Write(s: string, offset: number): number };

  constructor(sab: SharedArrayBuffer) {
    super(sab);
    this.buf = Buffer.from(sab, HEADER_BYTES, this.capacity) as Buffer & { utf8Write(s: string, offset: number): number };
  }

  /** Where the record being written is, and the first byte it may not reach (end of buffer or of free space). */
  private at = 0;
  private limit = 0;
  /** Wake-ups sent (the consumer was asleep): for the bench's report. */
  notifies = 0;
  /**
   * The header slots of the last columns published: a paced wave's frame shares most of them with the previous one
   * (the envelope's constants; not its timestamps), and a slot that is the same is written as one byte. The reader
   * keeps the same copy; both change only when a record is published (records are read in order). `nextHead` is
   * filled while a record is written and swapped in when it is published.
   */
  private lastHead: unknown[] | undefined;
  private nextHead: unknown[] = [];
  private headWritten = false;

  /** The write position: a port message posted now carries it, so the reader applies everything before it first. */
  get position(): number {
    return Atomics.load(this.header, WRITE) >>> 0;
  }

  /**
   * Appends one turn's `ops` as one record; false (nothing published) when an op or value has no encoding here or
   * the ring has no room: the caller posts them as a message instead. Wakes the reader only if it sleeps.
   */
  tryWrite(ops: readonly RingOp[], after: number): boolean {
    const write = Atomics.load(this.header, WRITE) >>> 0;
    const free = this.capacity - ((write - (Atomics.load(this.header, READ) >>> 0)) >>> 0);
    const offset = write & (this.capacity - 1);
    const tail = this.capacity - offset;
    let start = offset;
    // First where the write position is (up to the buffer's end); a record too long for the tail restarts at 0.
    let written = this.body(ops, offset, Math.min(tail, free));
    let needed = written;
    if (written === -2 && tail < free) {
      start = 0;
      written = this.body(ops, 0, Math.min(offset, free - tail));
      needed = tail + written;
    }
    if (written < 0) {
      this.headWritten = false;
      return false;
    }
    if (this.headWritten) {
      const last = this.lastHead ?? [];
      this.lastHead = this.nextHead;
      this.nextHead = last;
      this.headWritten = false;
    }
    if (start !== offset) this.words.setUint32(offset, WRAP, true);
    this.words.setUint32(start, written - RECORD_HEADER, true);
    this.words.setUint32(start + 4, after >>> 0, true);
    // The release: the reader loads WRITE before reading the record, so it sees every byte written above.
    Atomics.store(this.header, WRITE, (write + needed) | 0);
    Atomics.add(this.header, WRITTEN, 1);
    if (Atomics.load(this.header, SLEEPING) === 1) {
      Atomics.store(this.header, SLEEPING, 0);
      Atomics.notify(this.header, SLEEPING);
      this.notifies++;
    }
    return true;
  }

  /**
   * Writes the record's body from `from` (after its header) before `limit`: the record's aligned length, -1 when
   * something has no encoding, -2 when it did not fit.
   */
  private body(ops: readonly RingOp[], from: number, limit: number): number {
    this.headWritten = false; // a retry after the wrap writes the header anew
    this.at = from + RECORD_HEADER;
    this.limit = from + limit;
    if (this.at > this.limit) return -2;
    // Indexed, not for-of: no iterator per record on the paced path.
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const r = op.t === "puts" ? this.puts(op) : op.t === "columns" ? this.columns(op) : -1;
      if (r < 0) return r;
    }
    if (!this.room(1)) return -2;
    this.bytes[this.at++] = OP_END;
    const length = ((this.at - from + 7) & ~7);
    return from + length > this.limit ? -2 : length;
  }

  private room(k: number): boolean {
    return this.at + k <= this.limit;
  }

  private puts(op: Extract<RingOp, { t: "puts" }>): number {
    const n = op.keys.length;
    if (op.values.length !== n) return -1;
    if (!this.room(21)) return -2;
    this.bytes[this.at] = op.open === true ? OP_PUTS | OPEN : OP_PUTS;
    this.words.setUint32(this.at + 1, op.tier, true);
    this.words.setFloat64(this.at + 5, op.w, true);
    this.words.setUint32(this.at + 13, op.n, true);
    this.words.setUint32(this.at + 17, n, true);
    this.at += 21;
    for (let i = 0; i < n; i++) {
      const key = this.string(op.keys[i]!);
      if (key < 0) return key;
      const r = this.value(op.values[i], 0);
      if (r < 0) return r;
    }
    return 0;
  }

  private columns(op: Extract<RingOp, { t: "columns" }>): number {
    // Another transport's columns (not a flat array of JSON-shaped slots) go as the message.
    const cols: unknown = op.cols;
    if (!Array.isArray(cols)) return -1;
    const keys = op.keys.length;
    const slots = cols.length;
    if (!this.room(25)) return -2;
    this.bytes[this.at] = op.open === true ? OP_COLUMNS | OPEN : OP_COLUMNS;
    this.words.setUint32(this.at + 1, op.tier, true);
    this.words.setFloat64(this.at + 5, op.w, true);
    this.words.setUint32(this.at + 13, op.n, true);
    this.words.setUint32(this.at + 17, keys, true);
    this.words.setUint32(this.at + 21, slots, true);
    this.at += 25;
    for (let i = 0; i < keys; i++) {
      const r = this.string(op.keys[i]!);
      if (r < 0) return r;
    }
    let i = 0;
    // The record's first columns op shares its header with the last record's; any further one is written whole.
    if (slots > HEAD_SLOTS && !this.headWritten) {
      const last = this.lastHead;
      const next = this.nextHead;
      for (; i < HEAD_SLOTS; i++) {
        const v = cols[i];
        next[i] = v;
        if (last !== undefined && Object.is(last[i], v) && (typeof v !== "object" || v === null)) {
          if (!this.room(1)) return -2;
          this.bytes[this.at++] = V_SAME;
        } else {
          const r = this.slot(v);
          if (r < 0) return r;
        }
      }
      this.headWritten = true;
    }
    for (; i < slots; i++) {
      const r = this.slot(cols[i]);
      if (r < 0) return r;
    }
    return 0;
  }

  /** One tagged value of the columns: undefined (an absent optional field) or a value. */
  private slot(v: unknown): number {
    if (v !== undefined) return this.value(v, 0);
    if (!this.room(1)) return -2;
    this.bytes[this.at++] = V_UNDEFINED;
    return 0;
  }

  /**
   * A value in our own tagged form: null, booleans, numbers as float64, strings as UTF-8, plain objects (own
   * enumerable keys in order) and arrays, nested up to MAX_DEPTH. -1 for anything else (undefined inside a value,
   * a bigint, a non-plain object, a function): the caller posts the batch as a message, whose structured clone
   * carries it, or refuses it, as before.
   */
  private value(v: unknown, depth: number): number {
    if (!this.room(9)) return -2;
    switch (typeof v) {
      case "boolean":
        this.bytes[this.at++] = v ? V_TRUE : V_FALSE;
        return 0;
      case "number":
        this.bytes[this.at] = V_NUMBER;
        this.words.setFloat64(this.at + 1, v, true);
        this.at += 9;
        return 0;
      case "string":
        this.bytes[this.at++] = V_STRING;
        return this.string(v);
      case "object": {
        if (v === null) {
          this.bytes[this.at++] = V_NULL;
          return 0;
        }
        if (depth >= MAX_DEPTH) return -1;
        if (Array.isArray(v)) return this.array(v, depth);
        const proto: unknown = Object.getPrototypeOf(v);
        return proto === Object.prototype || proto === null ? this.object(v as Record<string, unknown>, depth) : -1;
      }
      default:
        return -1;
    }
  }

  /** [V_OBJECT][u32 count] then key and value per own enumerable key, in the object's order. */
  private object(o: Record<string, unknown>, depth: number): number {
    const start = this.at;
    this.bytes[this.at] = V_OBJECT;
    this.at += 5;
    let count = 0;
    for (const key in o) {
      if (!hasOwn.call(o, key)) continue;
      let r = this.string(key);
      if (r >= 0) r = this.value(o[key], depth + 1);
      if (r < 0) return r;
      count++;
    }
    this.words.setUint32(start + 1, count, true);
    return 0;
  }

  /** [V_ARRAY][u32 length] then each element (a hole reads undefined: refused, as undefined is). */
  private array(a: readonly unknown[], depth: number): number {
    const n = a.length;
    this.bytes[this.at] = V_ARRAY;
    this.words.setUint32(this.at + 1, n, true);
    this.at += 5;
    for (let i = 0; i < n; i++) {
      const r = this.value(a[i], depth + 1);
      if (r < 0) return r;
    }
    return 0;
  }

  /**
   * [u32 byte length][UTF-8]: a short ASCII string byte by byte, anything else by Buffer's native UTF-8 write. A
   * string with a lone surrogate is refused (-1): UTF-8 has no form for it (it would read back as U+FFFD), and
   * structured clone keeps it.
   */
  private string(s: string): number {
    const n = s.length;
    if (n > ASCII_LOOP && this.room(4 + 3 * n)) {
      if (!wellFormed(s)) return -1;
      // Room for the longest UTF-8 of n UTF-16 units: the write cannot be cut short.
      const length = this.buf.utf8Write(s, this.at + 4);
      this.words.setUint32(this.at, length, true);
      this.at += 4 + length;
      return 0;
    }
    if (!this.room(4 + n)) return -2;
    const at = this.at + 4;
    let i = 0;
    if (n <= ASCII_LOOP) {
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        this.bytes[at + i] = c;
      }
    }
    let length = i;
    if (i < n) {
      if (!wellFormed(s)) return -1;
      const r = encoder.encodeInto(i === 0 ? s : s.slice(i), this.bytes.subarray(at + i, this.limit));
      if (r.read < n - i) return -2;
      length += r.written;
    }
    this.words.setUint32(this.at, length, true);
    this.at = at + length;
    return 0;
  }
}


export interface RingRecord {
  readonly ops: RingOp[];
  /** Port messages the producer had posted before this record. */
  readonly after: number;
}

/** The consumer (actor) end. */
export class TurnRingReader extends RingView {
  private readonly text: Buffer;
  private at = 0;
  /** The header slots of the last columns record read (the writer's `lastHead`). */
  private lastHead: unknown[] = [];

  constructor(sab: SharedArrayBuffer) {
    super(sab);
    this.text = Buffer.from(sab, HEADER_BYTES, this.capacity);
  }

  /**
   * The next record if one is ready and may be applied now: it must wait while fewer than `record.after` port
   * messages have been applied (an earlier message is still on its way), and must not pass `until` (the
   * position a message being applied was posted at).
   */
  next(messagesApplied: number, until?: number): RingRecord | undefined {
    const read = Atomics.load(this.header, READ) >>> 0;
    const limit = until ?? Atomics.load(this.header, WRITE) >>> 0;
    if (((limit - read) | 0) <= 0) return undefined;
    let offset = read & (this.capacity - 1);
    let skipped = 0;
    let length = this.words.getUint32(offset, true);
    if (length === WRAP) {
      skipped = this.capacity - offset;
      offset = 0;
      length = this.words.getUint32(0, true);
    }
    const after = this.words.getUint32(offset + 4, true);
    if (((after - messagesApplied) | 0) > 0) return undefined;
    // Decoded before READ moves: the writer may reuse these bytes as soon as it does.
    const ops = this.decode(offset + RECORD_HEADER);
    Atomics.store(this.header, READ, (read + skipped + ((RECORD_HEADER + length + 7) & ~7)) | 0);
    Atomics.add(this.header, READ_RECORDS, 1);
    return { ops, after };
  }

  private decode(from: number): RingOp[] {
    this.at = from;
    let headRead = false;
    const ops: RingOp[] = [];
    for (;;) {
      const byte = this.bytes[this.at]!;
      if (byte === OP_END) return ops;
      const tag = byte & ~OPEN;
      const open = (byte & OPEN) !== 0 ? { open: true as const } : {};
      const tier = this.words.getUint32(this.at + 1, true);
      const w = this.words.getFloat64(this.at + 5, true);
      const n = this.words.getUint32(this.at + 13, true);
      if (tag === OP_PUTS) {
        const count = this.words.getUint32(this.at + 17, true);
        this.at += 21;
        const keys: string[] = [];
        const values: unknown[] = [];
        for (let i = 0; i < count; i++) {
          keys.push(this.string());
          values.push(this.slot());
        }
        ops.push({ t: "puts", tier, w, n, keys, values, ...open });
      } else if (tag === OP_COLUMNS) {
        const count = this.words.getUint32(this.at + 17, true);
        const slots = this.words.getUint32(this.at + 21, true);
        this.at += 25;
        const keys: string[] = [];
        for (let i = 0; i < count; i++) keys.push(this.string());
        const cols: unknown[] = [];
        const head = slots > HEAD_SLOTS && !headRead;
        for (let i = 0; i < slots; i++) {
          if (head && i < HEAD_SLOTS && this.bytes[this.at] === V_SAME) {
            this.at++;
            cols.push(this.lastHead[i]);
          } else cols.push(this.slot());
        }
        if (head) {
          this.lastHead = cols.slice(0, HEAD_SLOTS);
          headRead = true;
        }
        ops.push({ t: "columns", tier, w, n, keys, cols, ...open });
      } else throw new Error(`turn ring: unknown op tag ${String(tag)} at ${this.at}`);
    }
  }

  private slot(): unknown {
    const tag = this.bytes[this.at++];
    switch (tag) {
      case V_UNDEFINED:
        return undefined;
      case V_NULL:
        return null;
      case V_FALSE:
        return false;
      case V_TRUE:
        return true;
      case V_NUMBER: {
        const v = this.words.getFloat64(this.at, true);
        this.at += 8;
        return v;
      }
      case V_STRING:
        return this.string();
      case V_OBJECT: {
        const count = this.words.getUint32(this.at, true);
        this.at += 4;
        const o: Record<string, unknown> = {};
        for (let i = 0; i < count; i++) {
          const key = this.string();
          // An own "__proto__" key, as JSON.parse and structured clone make it (assignment would set the prototype).
          if (key === "__proto__") Object.defineProperty(o, key, { value: this.slot(), enumerable: true, writable: true, configurable: true });
          else o[key] = this.slot();
        }
        return o;
      }
      case V_ARRAY: {
        const n = this.words.getUint32(this.at, true);
        this.at += 4;
        const a: unknown[] = [];
        for (let i = 0; i < n; i++) a.push(this.slot());
        return a;
      }
      default:
        throw new Error(`turn ring: unknown value tag ${String(tag)}`);
    }
  }

  private string(): string {
    const length = this.words.getUint32(this.at, true);
    const start = this.at + 4;
    this.at = start + length;
    return this.text.toString("utf8", start, start + length);
  }

  /** Whether records are unread (ready, or waiting for an earlier message). */
  unread(): boolean {
    return this.used() > 0;
  }

  /**
   * Resolves when the writer appended something after this call (at once if something is already unread). The
   * caller calls it only after finding the ring empty for a while: while writes flow it drains on a timer instead.
   * Never while records wait for an earlier message (`unread` with nothing to apply): this resolves at once then,
   * and a loop awaiting only it would starve the port's message event of the turn it needs.
   */
  async sleep(): Promise<void> {
    Atomics.store(this.header, SLEEPING, 1);
    Atomics.add(this.header, SLEEPS, 1);
    // Checked after announcing sleep: a write that raced ahead of the store above is seen here.
    if (this.used() > 0) {
      Atomics.store(this.header, SLEEPING, 0);
      return;
    }
    const w = waitAsync(this.header, SLEEPING, 1);
    if (w.async) await w.value;
  }

  /** Counts one poll (a timer turn of the consumer). */
  polled(): void {
    Atomics.add(this.header, POLLS, 1);
  }

  /** Ends a sleep (`sleep`) from the consumer's own thread: the actor closed, nothing will write again. */
  wake(): void {
    Atomics.store(this.header, SLEEPING, 0);
    Atomics.notify(this.header, SLEEPING);
  }

  /** Says the consumer reads this buffer no more (after its last read and wake): the engine may reuse it. */
  release(): void {
    Atomics.store(this.header, RELEASED, 1);
  }
}
