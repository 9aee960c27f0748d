/**
 * A single-producer single-consumer byte ring in a SharedArrayBuffer, for handing one event-loop turn's ops from
 * the main thread to a store actor without a MessagePort message (issue 13 item 2). A prototype measured by
 * bench/turn-ring.ts and not adopted: an unanswered message costs less (docs/design.md §3.19).
 *
 * Each record is one turn's batch, serialized with the structured-clone serializer (`v8.Serializer`, the format
 * postMessage uses), tagged with `after`: how many port messages the producer had posted before it. A message
 * in turn carries the ring position written before it was posted. The consumer applies ring records and messages
 * in exactly the order the producer issued them from those two numbers (see `TurnRingReader.next`).
 *
 * Layout: Int32 header [write, read, sleeping], then `capacity` data bytes. Positions are free-running byte
 * counters (wrapping at 2^32, compared as differences), so full and empty are told apart without a spare slot.
 * A record is [length u32][after u32][payload], 4-byte aligned, never split across the end of the buffer: a
 * length of WRAP sends the reader back to offset 0.
 */
import { Deserializer, Serializer } from "node:v8";

const WRITE = 0;
const READ = 1;
const SLEEPING = 2;
const HEADER_BYTES = 16;
const RECORD_HEADER = 8;
const WRAP = 0xffffffff;

/** `Atomics.waitAsync` (V8, Node >= 16) is missing from TypeScript's ES2022 lib. */
type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
) => { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** Ring sizes are powers of two so offsets are a mask of the free-running positions. */
export const DEFAULT_TURN_RING_BYTES = 1 << 20;

export function createTurnRing(capacity = DEFAULT_TURN_RING_BYTES): SharedArrayBuffer {
  if (!Number.isInteger(capacity) || capacity < 1024 || capacity > 1 << 30 || (capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`turn ring capacity must be a power of two between 1 KiB and 1 GiB, got ${String(capacity)}`);
  }
  return new SharedArrayBuffer(HEADER_BYTES + capacity);
}

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

function encode(value: unknown): Uint8Array {
  // One serializer per record: V8's keeps its object references across writeValue calls.
  const s = new Serializer();
  s.writeHeader();
  s.writeValue(value);
  return s.releaseBuffer();
}

function decode(bytes: Uint8Array): unknown {
  const d = new Deserializer(bytes);
  d.readHeader();
  return d.readValue();
}

/** The producer (main thread) end. */
export class TurnRingWriter extends RingView {
  /** The write position: a port message posted now carries it, so the reader applies everything before it first. */
  get position(): number {
    return Atomics.load(this.header, WRITE) >>> 0;
  }

  /**
   * Appends `value` as one record; false (nothing written) when structured clone refuses it or the ring has no
   * room: the caller sends it as a message instead. Wakes the reader if it sleeps.
   */
  tryWrite(value: unknown, after: number): boolean {
    let payload: Uint8Array;
    try {
      payload = encode(value);
    } catch {
      return false;
    }
    const size = (RECORD_HEADER + payload.byteLength + 3) & ~3;
    const write = Atomics.load(this.header, WRITE) >>> 0;
    const free = this.capacity - this.used();
    const offset = write & (this.capacity - 1);
    const tail = this.capacity - offset;
    // A record that does not fit before the end costs the tail too (it restarts at offset 0).
    const needed = size <= tail ? size : tail + size;
    if (needed > free) return false;
    let at = offset;
    if (size > tail) {
      this.words.setUint32(offset, WRAP, true);
      at = 0;
    }
    this.words.setUint32(at, payload.byteLength, true);
    this.words.setUint32(at + 4, after >>> 0, true);
    this.bytes.set(payload, at + RECORD_HEADER);
    // The release: the reader loads WRITE before reading the record, so it sees every byte written above.
    Atomics.store(this.header, WRITE, (write + needed) | 0);
    if (Atomics.load(this.header, SLEEPING) === 1) {
      Atomics.store(this.header, SLEEPING, 0);
      Atomics.notify(this.header, SLEEPING);
    }
    return true;
  }
}

export interface RingRecord {
  readonly value: unknown;
  /** Port messages the producer had posted before this record. */
  readonly after: number;
}

/** The consumer (actor) end. */
export class TurnRingReader extends RingView {
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
    // Copied out of shared memory first: the writer may reuse these bytes as soon as READ moves.
    const payload = this.bytes.slice(offset + RECORD_HEADER, offset + RECORD_HEADER + length);
    Atomics.store(this.header, READ, (read + skipped + ((RECORD_HEADER + length + 3) & ~3)) | 0);
    return { value: decode(payload), after };
  }

  /** Resolves when the writer appended something after this call (at once if something is already unread). */
  async wait(): Promise<void> {
    Atomics.store(this.header, SLEEPING, 1);
    // Checked after announcing sleep: a write that raced ahead of the store above is seen here.
    if (this.used() > 0) {
      Atomics.store(this.header, SLEEPING, 0);
      return;
    }
    const w = waitAsync(this.header, SLEEPING, 1);
    if (w.async) await w.value;
  }
}
