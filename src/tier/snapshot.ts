/** Snapshot tier: one pending record per key (a newer save of a key replaces it), written under a key derived from the record. */
import type { Codec } from "../codec/types.js";
import { decodeWith, encodeWith } from "../codec/user-codec.js";
import type { StorageBackend } from "../backend/types.js";
import { TierCore, handled, isPermanent } from "./core.js";
import type { Step } from "./maybe.js";
import { readValue } from "./read.js";
import { snapshotSaveKey } from "./arguments.js";
import { inlineCore, inlineSurface } from "./inline-surface.js";
import type { SnapshotStorageOptions, SnapshotStorageTier, TierCommonOptions } from "./types.js";
import type { StaleHolder, StoredBytes, Supersedes } from "./write-lane.js";
import { MORE, canonicalJsonHead, canonicalJsonHeadOfPrefix, headOf, writesCanonicalJson, type SnapshotHead } from "./json-head.js";

/**
 * loadHead first reads this many bytes where the backend reads prefixes: a baseline's name and seq sort before its
 * snapshot, so they come within the first few dozen bytes of a baseline of any size; a longer head reads the rest.
 */
export const HEAD_PREFIX_BYTES = 4096;

interface PendingSnapshot<T> {
  key: string;
  value: T;
  /**
   * What accepting it weighed, held until it is written, replaced or dropped (settled at once when a newer record
   * replaces it untaken, or a failed write does not put it back). In the engine's actor: the main thread's figure for
   * it (its share of the op's weight), when the op gave one (`put`'s `weighed`); else 0.
   */
  weight: number;
  /**
   * 1: `weight` is this record's own account of one entry (inline tiers; the actor's records it weighed). 0: an
   * actor's record whose op weighed the tier as a whole (a resent op, weighing nothing): nothing of it settles alone.
   */
  entries: 0 | 1;
  /**
   * The number of the oldest save this record replaced since a flush last took one (or its own): a flush called
   * after that save answers for the record's state, so its refusal fails that flush (core.ts `refuse`).
   */
  since: number;
  /**
   * Its encoding, kept from a failed write for the retries: a record does not change once saved (docs/api.md), so
   * the codec's bytes for it cannot either, and a retried baseline is not encoded (megabytes, CPU) again.
   */
  bytes?: Uint8Array;
  /**
   * Its landing number (write-lane.ts `landing`), set when a flush first took it: a retry keeps the place on the lane
   * where it was taken, and another tier's later landing of its key makes it stale (`landedOver`). `stale`: so found
   * while it waited on the lane; it writes nothing.
   */
  at?: number;
  stale?: boolean;
}

/**
 * What a flush takes: the unwritten records, one per key, oldest save first (one record in the common case of a tier
 * saving one key, graph attach's baselines).
 */
type SnapshotBatch<T> = readonly PendingSnapshot<T>[];

/** Accepts already-filtered, already-keyed snapshots; the actor in a worker drives it directly. */
export class SnapshotCore<T> extends TierCore<SnapshotBatch<T>> implements StaleHolder {
  /** The latest record saved and not yet taken by a flush: the one slot of a tier saving one key. */
  private pending: PendingSnapshot<T> | undefined;
  /**
   * Unwritten records of other keys, saved before `pending` or put back by a failed write, oldest first, one per
   * key: a save of another key never drops one (review r264 F5: it replaced a put-back baseline of another graph
   * sharing the tier, and the flushes after resolved though that record was never written). Undefined while at
   * most one record is pending (the fast path).
   */
  private earlier: Map<string, PendingSnapshot<T>> | undefined;
  /** Records a failed write put back, pending or retaken and waiting on the lane, by key (review s15r2 D2). */
  private held: Map<string, PendingSnapshot<T>> | undefined;
  private lastSavedKey: string | undefined;
  /**
   * Keys discarded (`discard`) while a taken batch holding them was not settled, each with the landing number taken
   * at the call: a record of the key taken before it (waiting on the lane, joined, in flight) writes nothing, and is
   * not put back when its write fails. An entry goes once no taken batch holds its key (`settledBatch`): only such a
   * record consults it (one put back before the call was marked stale by it). It kept one number per key ever
   * discarded, a session per key grew it for good (review r287 F3).
   */
  private discarded: Map<string, number> | undefined;
  /**
   * The batches taken (`takePending`) and not yet settled (written, dropped, put back or failed with an earlier one,
   * see `settledBatch`), and how many of them hold each key: what `discarded` needs to keep.
   */
  private readonly outstanding = new Set<SnapshotBatch<T>>();
  private readonly outstandingKeys = new Map<string, number>();

  constructor(
    backend: StorageBackend,
    private readonly codec: Codec<T>,
    opts: TierCommonOptions,
  ) {
    super(backend, opts, "snapshot");
  }

  /**
   * `weighed`: in the engine's actor, the main thread's figure for this record (its share of the op's weight, one
   * entry): the record holds it as an inline tier's record holds its own, so it settles when the record is written,
   * replaced or dropped, not with the next batch taken (task 283). Returns false when the value was refused (and
   * reported): nothing was taken or weighed.
   */
  put(key: string, value: T, weighed?: number): boolean {
    // A newer record of the same key replaces its pending one: only the difference needs room. Under another key it
    // needs room of its own, as through the engine (whose actor may write the older record first, `displacing`).
    const same = this.pendingOf(key);
    const freed = this.selfWeighing && same !== undefined ? same.weight : 0;
    const weight = this.acceptable(key, value, freed);
    if (weight === false) return false;
    // Another key: the older record stays pending beside it (the core may owe its write first, see `displacing`).
    if (this.pending !== undefined && this.pending.key !== key) this.displacing();
    const replaced = this.pendingOf(key);
    const p = this.pending;
    if (p !== undefined && p !== replaced) (this.earlier ??= new Map()).set(p.key, p);
    if (replaced !== undefined) {
      if (replaced !== p) this.removeEarlier(replaced);
      this.unhold(replaced); // a newer record lands at its flush
    }
    const write = this.nextWrite();
    const own = this.selfWeighing ? weight : weighed;
    this.pending = { key, value, weight: own ?? 0, entries: own === undefined ? 0 : 1, since: replaced?.since ?? write };
    this.countPending();
    // The replaced record is no longer held: it must not count toward maxPendingBytes until the next flush.
    if (replaced !== undefined) this.release(replaced);
    // The actor's record is weighed before `accepted`, which may take it (a flush the core runs at once).
    if (!this.selfWeighing && weighed !== undefined) this.weigh(weighed, 1);
    this.accepted(1, weight, write);
    return true;
  }

  /** A record replaced or dropped before a flush took it: what it holds settles now. */
  private release(record: PendingSnapshot<T>): void {
    if (record.entries === 1) this.superseded(record.weight);
  }

  /** The unwritten record of `key` not yet taken by a flush. */
  private pendingOf(key: string): PendingSnapshot<T> | undefined {
    const p = this.pending;
    if (p !== undefined && p.key === key) return p;
    return this.earlier?.get(key);
  }

  private removeEarlier(record: PendingSnapshot<T>): void {
    const e = this.earlier;
    if (e === undefined || e.get(record.key) !== record) return;
    e.delete(record.key);
    if (e.size === 0) this.earlier = undefined;
  }

  private countPending(): void {
    this.stats.pendingEntries = (this.pending === undefined ? 0 : 1) + (this.earlier?.size ?? 0);
  }

  /** Drops a pending record unwritten (discarded, made stale): its account settles now. */
  private dropPending(record: PendingSnapshot<T>): void {
    if (this.pending === record) this.pending = undefined;
    else this.removeEarlier(record);
    this.countPending();
    if (this.pending === undefined && this.earlier === undefined) this.droppedPending();
    else this.release(record); // others stay pending: its own weight alone settles
  }

  protected takePending(): SnapshotBatch<T> | undefined {
    const p = this.pending;
    const e = this.earlier;
    if (p === undefined && e === undefined) return undefined;
    this.pending = undefined;
    this.earlier = undefined;
    this.stats.pendingEntries = 0;
    let batch: PendingSnapshot<T>[];
    if (e === undefined) batch = [p!];
    else {
      batch = [...e.values()];
      if (p !== undefined) batch.push(p);
    }
    let at: number | undefined;
    const keys = this.outstandingKeys;
    for (const r of batch) {
      r.at ??= at ??= this.lane.landing();
      keys.set(r.key, (keys.get(r.key) ?? 0) + 1); // one record per key in a batch
    }
    this.outstanding.add(batch);
    return batch;
  }

  /**
   * `batch` consults `discarded` no more: written, dropped, put back, or failed unwritten with an earlier batch that
   * put it back (`keep`). A key no taken batch holds now needs no discard entry: a record of it taken before the
   * discard was settled, and one put back is pending and was marked stale at the call, or was not put back.
   */
  private settledBatch(batch: SnapshotBatch<T>): void {
    if (!this.outstanding.delete(batch)) return;
    const keys = this.outstandingKeys;
    for (const r of batch) {
      const n = (keys.get(r.key) ?? 1) - 1;
      if (n > 0) {
        keys.set(r.key, n);
        continue;
      }
      keys.delete(r.key);
      const d = this.discarded;
      if (d !== undefined && d.delete(r.key) && d.size === 0) this.discarded = undefined;
    }
  }

  /**
   * What was taken before a rollback writes nothing more (core.ts `write`, `keep`: their epoch check comes before any
   * consultation of `discarded`), so it holds no discard entry either; some of it never reaches `writeBatch`.
   */
  override rollback(): void {
    super.rollback();
    this.outstanding.clear();
    this.outstandingKeys.clear();
    this.discarded = undefined;
  }

  protected clearPending(): void {
    this.pending = undefined;
    this.earlier = undefined;
    this.stats.pendingEntries = 0;
    this.clearHeld(); // a record taken before a rollback writes nothing more
  }

  /**
   * Drops what the tier holds of `key` unwritten: its pending record, one a failed write put back, and one a flush
   * took before the call that has not started writing; one taken and failing later is not put back. The records of
   * other keys stay (a rollback drops them too: graph attach discards an ended handle's baseline without taking a
   * user's saves of the same tier, task 260). A write already running on the backend is not undone.
   */
  discard(key: string): void {
    this.assertOpen();
    // Only a record taken before this call and not settled needs the number: pending and put-back ones are dropped here.
    if (this.outstandingKeys.has(key)) (this.discarded ??= new Map()).set(key, this.lane.landing());
    const h = this.held?.get(key);
    if (h !== undefined) {
      h.stale = true;
      this.unhold(h);
    }
    const p = this.pendingOf(key);
    if (p !== undefined) {
      p.stale = true;
      this.dropPending(p);
    }
  }

  /** Whether `record` writes nothing: made stale by another tier's landing, or taken before a discard of its key. */
  private dropped(record: PendingSnapshot<T>): boolean {
    if (record.stale === true) return true;
    const at = this.discarded?.get(record.key);
    return at !== undefined && record.at !== undefined && record.at < at;
  }

  /** A put-back record flushes alone: another tier's batch waiting in the store's group may make it stale first. */
  protected override joinable(): boolean {
    return this.held === undefined;
  }

  private hold(record: PendingSnapshot<T>): void {
    (this.held ??= new Map()).set(record.key, record);
    this.lane.hold(this, true);
  }

  private unhold(record: PendingSnapshot<T>): void {
    const h = this.held;
    if (h === undefined || h.get(record.key) !== record) return;
    h.delete(record.key);
    if (h.size === 0) this.clearHeld();
  }

  private clearHeld(): void {
    this.held = undefined;
    this.lane.hold(this, false);
  }

  /**
   * Another tier stored or deleted `key` at landing number `at`: the put-back record of the key, taken earlier, is
   * stale (its retry would land an older write over a newer one): dropped unwritten, pending or waiting on the lane.
   */
  landedOver(key: string, at: number, _kept?: StoredBytes, supersedes?: Supersedes): void {
    const h = this.held?.get(key);
    if (h === undefined || (h.at ?? at) >= at) return;
    // A job's record that does not cover this one (a fold's baseline below a held attach baseline): the retry lands.
    if (supersedes !== undefined && !supersedes(key, h.value)) return;
    h.stale = true;
    this.unhold(h);
    if (this.pendingOf(key) === h) this.dropPending(h);
  }

  protected *writeBatch(batch: SnapshotBatch<T>, epoch: number): Step {
    // `finally`: also when the write throws, or a flush group ends the step of a batch an earlier one put back.
    try {
      if (batch.length === 1) return yield* this.writeOne(batch[0]!, epoch);
      return yield* this.writeMany(batch, epoch);
    } finally {
      this.settledBatch(batch);
    }
  }

  /** `writeBatch` of several records (several keys), one backend batch. */
  private *writeMany(batch: SnapshotBatch<T>, epoch: number): Step {
    const ops: Array<{ op: "put"; key: string; value: Uint8Array }> = [];
    const writing: PendingSnapshot<T>[] = [];
    for (const record of batch) {
      if (this.dropped(record)) continue;
      this.unhold(record); // running: nothing lands before it now (the lane)
      let bytes: Uint8Array;
      try {
        // A user codec's throw as CodecError: refused below, never retried (the value cannot change).
        bytes = record.bytes ?? encodeWith(this.codec, record.value);
      } catch (err) {
        // An unencodable value can never succeed: refused, not kept for a retry; the batch's other records write.
        if (isPermanent(err)) {
          this.refuse(err as Error, record.since, record.key);
          continue;
        }
        this.keep([...writing, ...batch.slice(batch.indexOf(record))], epoch, batch);
        throw err;
      }
      ops.push({ op: "put", key: record.key, value: bytes });
      writing.push(bytes === record.bytes ? record : { ...record, bytes });
    }
    if (ops.length === 0 || this.epoch !== epoch) return;
    try {
      yield* this.writeOps(ops, () => this.epoch !== epoch);
    } catch (err) {
      this.keep(writing, epoch, batch);
      throw err;
    }
    this.lastSavedKey = ops[ops.length - 1]!.key;
    this.committed(ops);
    if (this.lane.watched(this)) for (const r of writing) this.lane.landed(this, r.key, r.at ?? 0);
  }

  /** `writeBatch` of one record (a tier saving one key: graph attach's baselines), as cheap as the one slot was. */
  private *writeOne(record: PendingSnapshot<T>, epoch: number): Step {
    if (this.dropped(record)) return;
    this.unhold(record); // running: nothing lands before it now (the lane)
    let bytes: Uint8Array;
    try {
      bytes = record.bytes ?? encodeWith(this.codec, record.value);
    } catch (err) {
      if (isPermanent(err)) return this.refuse(err as Error, record.since, record.key);
      this.keep([record], epoch, [record]);
      throw err;
    }
    if (this.epoch !== epoch) return;
    try {
      yield* this.writeOps([{ op: "put", key: record.key, value: bytes }], () => this.epoch !== epoch);
    } catch (err) {
      this.keep([{ ...record, bytes }], epoch, [record]);
      throw err;
    }
    this.lastSavedKey = record.key;
    this.committed([{ op: "put", key: record.key, value: bytes }]);
    if (this.lane.watched(this)) this.lane.landed(this, record.key, record.at ?? 0);
  }

  /**
   * A failed write stays pending for a retry, unless a rollback discarded it or a newer save of its key supersedes it
   * (which then answers for it: the flushes called since it was saved fail if the newer one is refused). Records of
   * other keys saved meanwhile stay pending beside it. `taken`: the whole batch taken (`batch` omits what its write
   * skipped: refused, dropped): what is not put back of it and of the later batches settles with the failing write.
   */
  private keep(batch: SnapshotBatch<T>, epoch: number, taken: SnapshotBatch<T>): void {
    if (this.epoch !== epoch) return;
    // Records of this tier taken after these, waiting on the write lane, fail with them (core.ts `laterTaken`): all
    // go back before what is pending, oldest first, each kept unless a newer one of its key is.
    const later = this.laterTaken();
    const laterRecords = later.flatMap((t) => t.batch);
    const records = later.length === 0 ? batch : [...batch, ...laterRecords];
    const kept = this.putBack(records);
    // The later batches fail unwritten with this one (core.ts `write`), some without reaching `writeBatch`.
    for (const t of later) this.settledBatch(t.batch);
    // The records not put back hold nothing now (review r278 F1), inline and in the engine's actor (task 283).
    let bytes = 0;
    let entries = 0;
    for (const r of [...taken, ...laterRecords]) {
      bytes += r.weight;
      entries += r.entries;
    }
    for (const r of kept) {
      bytes -= r.weight;
      entries -= r.entries;
    }
    if (entries > 0) this.releaseTaken(bytes, entries);
  }

  /** Puts `records` back as pending, oldest first, each unless dropped or a newer record of its key is; returns those. */
  private putBack(records: SnapshotBatch<T>): readonly PendingSnapshot<T>[] {
    const back = new Map<string, PendingSnapshot<T>>();
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i]!;
      if (this.dropped(r)) continue; // another tier's later landing of its key made it stale, or a discard
      const newer = this.pendingOf(r.key) ?? back.get(r.key);
      if (newer !== undefined) {
        newer.since = Math.min(newer.since, r.since); // superseded unstored: see `since`
        this.unhold(r);
      } else back.set(r.key, r);
    }
    if (back.size === 0) return [];
    const kept = [...back.values()].reverse();
    const e = new Map<string, PendingSnapshot<T>>();
    for (const r of kept) {
      e.set(r.key, r);
      this.hold(r);
    }
    if (this.earlier !== undefined) for (const [k, r] of this.earlier) e.set(k, r);
    this.earlier = e;
    this.countPending();
    return kept;
  }

  async load(key?: string): Promise<T | undefined> {
    const bytes = await this.loadBytes(key);
    return bytes === undefined ? undefined : decodeWith(this.codec, bytes);
  }

  /**
   * `load(key)`'s `name` and `seq` alone: read from a canonical JSON codec's bytes without decoding the rest, and
   * from their first HEAD_PREFIX_BYTES alone where the backend reads prefixes (supports.readPrefix).
   */
  async loadHead(key?: string): Promise<SnapshotHead | undefined> {
    const codec = this.codec as Codec<unknown>;
    if (writesCanonicalJson(codec) && this.backend.supports.readPrefix === true && this.backend.readPrefix) {
      const readPrefix = this.backend.readPrefix.bind(this.backend);
      this.assertOpen();
      const k = key ?? this.lastSavedKey ?? this.name;
      const prefix = await this.guard(`read of "${k}"`, () => readPrefix(k, HEAD_PREFIX_BYTES));
      if (prefix === undefined || prefix.byteLength === 0) return undefined; // 0 bytes count as absent, as load reads them
      // Shorter than asked: the whole record. A head it does not vouch for is decoded from `read`'s bytes below,
      // never from the prefix (a backend wrapper may transform what read returns).
      const head = prefix.byteLength < HEAD_PREFIX_BYTES ? canonicalJsonHead(prefix) : canonicalJsonHeadOfPrefix(prefix);
      if (head !== MORE && head !== undefined) return head;
      // A head longer than the prefix, or one the parser cannot vouch for: the whole record, as below.
    }
    const bytes = await this.loadBytes(key);
    if (bytes === undefined) return undefined;
    return (writesCanonicalJson(codec) ? canonicalJsonHead(bytes) : undefined) ?? headOf(decodeWith(codec, bytes));
  }

  /** Raw bytes for proxies whose codec runs on the main thread. */
  loadBytes(key?: string): Promise<Uint8Array | undefined> {
    this.assertOpen();
    const k = key ?? this.lastSavedKey ?? this.name;
    return this.guard(`read of "${k}"`, () => readValue(this.backend, k));
  }
}

export function snapshotStorage<T>(backend: StorageBackend, opts: SnapshotStorageOptions<T> = {}): SnapshotStorageTier<T> {
  const { core, codec } = inlineCore(backend, "snapshot", opts, (c: Codec<T>) => new SnapshotCore<T>(backend, c, opts));
  return inlineSurface(backend, core, opts, codec.name, {
    save(snapshot: T): void {
      core.assertWritable();
      const key = snapshotSaveKey(snapshot, opts, core.name);
      if (key === undefined) return;
      core.put(key, snapshot); // checks room once it weighed the write
    },
    discard(key: string): void {
      if (typeof key !== "string") throw new TypeError("discard needs a key (a string)");
      core.discard(key);
    },
    load: (key?: string) => handled(core.load(key)),
    loadHead: (key?: string) => handled(core.loadHead(key)),
  });
}
