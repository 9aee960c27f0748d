/** Snapshot tier: one pending slot (last write wins), written under a key derived from the record. */
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
  /** What accepting it weighed (inline tiers: settled at once if a newer record replaces it untaken). */
  weight: number;
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

/** Accepts already-filtered, already-keyed snapshots; the actor in a worker drives it directly. */
export class SnapshotCore<T> extends TierCore<PendingSnapshot<T>> implements StaleHolder {
  private pending: PendingSnapshot<T> | undefined;
  /** A record a failed write put back, pending or retaken and waiting on the lane (review s15r2 D2). */
  private held: PendingSnapshot<T> | undefined;
  private lastSavedKey: string | undefined;
  /**
   * Keys discarded (`discard`), each with the landing number taken at the call: a record of the key taken before it
   * (waiting on the lane, joined, in flight) writes nothing, and is not put back when its write fails. One number per
   * key ever discarded (graph attach discards graph names: a handful).
   */
  private discarded: Map<string, number> | undefined;

  constructor(
    backend: StorageBackend,
    private readonly codec: Codec<T>,
    opts: TierCommonOptions,
  ) {
    super(backend, opts, "snapshot");
  }

  put(key: string, value: T): void {
    // A newer record of the same key replaces the pending one: only the difference needs room. Under another key it
    // needs room of its own, as through the engine (whose actor may write the older record first, `displacing`).
    const freed = this.selfWeighing && this.pending?.key === key ? this.pending.weight : 0;
    const weight = this.acceptable(key, value, freed);
    if (weight === false) return;
    // Another key displaces the pending record (the core decides what that owes, see `displacing`).
    if (this.pending && this.pending.key !== key) this.displacing();
    const replaced = this.pending;
    if (replaced !== undefined && replaced === this.held) this.hold(undefined); // a newer record lands at its flush
    const write = this.nextWrite();
    this.pending = { key, value, weight, since: replaced?.since ?? write };
    this.stats.pendingEntries = 1;
    // The replaced record is no longer held: it must not count toward maxPendingBytes until the next flush.
    if (replaced !== undefined && this.selfWeighing) this.superseded(replaced.weight);
    this.accepted(1, weight, write);
  }

  protected takePending(): PendingSnapshot<T> | undefined {
    const p = this.pending;
    this.pending = undefined;
    this.stats.pendingEntries = 0;
    if (p !== undefined) p.at ??= this.lane.landing();
    return p;
  }

  protected clearPending(): void {
    this.pending = undefined;
    this.stats.pendingEntries = 0;
    this.hold(undefined); // a record taken before a rollback writes nothing more
  }

  /**
   * Drops what the tier holds of `key` unwritten: its pending record, one a failed write put back, and one a flush
   * took before the call that has not started writing; one taken and failing later is not put back. The records of
   * other keys stay (a rollback drops them too: graph attach discards an ended handle's baseline without taking a
   * user's saves of the same tier, task 260). A write already running on the backend is not undone.
   */
  discard(key: string): void {
    this.assertOpen();
    (this.discarded ??= new Map()).set(key, this.lane.landing());
    const h = this.held;
    if (h !== undefined && h.key === key) {
      h.stale = true;
      this.hold(undefined);
    }
    const p = this.pending;
    if (p !== undefined && p.key === key) {
      p.stale = true;
      this.pending = undefined;
      this.stats.pendingEntries = 0;
      this.droppedPending();
    }
  }

  /** Whether `batch` writes nothing: made stale by another tier's landing, or taken before a discard of its key. */
  private dropped(batch: PendingSnapshot<T>): boolean {
    if (batch.stale === true) return true;
    const at = this.discarded?.get(batch.key);
    return at !== undefined && batch.at !== undefined && batch.at < at;
  }

  /** A put-back record flushes alone: another tier's batch waiting in the store's group may make it stale first. */
  protected override joinable(): boolean {
    return this.held === undefined;
  }

  private hold(record: PendingSnapshot<T> | undefined): void {
    this.held = record;
    this.lane.hold(this, record !== undefined);
  }

  /**
   * Another tier stored or deleted `key` at landing number `at`: the put-back record of the key, taken earlier, is
   * stale (its retry would land an older write over a newer one): dropped unwritten, pending or waiting on the lane.
   */
  landedOver(key: string, at: number, _kept?: StoredBytes, supersedes?: Supersedes): void {
    const h = this.held;
    if (h === undefined || h.key !== key || (h.at ?? at) >= at) return;
    // A job's record that does not cover this one (a fold's baseline below a held attach baseline): the retry lands.
    if (supersedes !== undefined && !supersedes(key, h.value)) return;
    h.stale = true;
    this.hold(undefined);
    if (this.pending === h) {
      this.pending = undefined;
      this.stats.pendingEntries = 0;
      this.droppedPending();
    }
  }

  protected *writeBatch(batch: PendingSnapshot<T>, epoch: number): Step {
    if (this.dropped(batch)) return;
    if (this.held === batch) this.hold(undefined); // running: nothing lands before it now (the lane)
    let bytes: Uint8Array;
    try {
      // A user codec's throw as CodecError: refused below, never retried (the value cannot change).
      bytes = batch.bytes ?? encodeWith(this.codec, batch.value);
    } catch (err) {
      // An unencodable value can never succeed: refused, not kept for a retry.
      if (isPermanent(err)) return this.refuse(err as Error, batch.since, batch.key);
      this.keep(batch, epoch);
      throw err;
    }
    if (this.epoch !== epoch) return;
    try {
      yield* this.writeOps([{ op: "put", key: batch.key, value: bytes }], () => this.epoch !== epoch);
    } catch (err) {
      this.keep({ ...batch, bytes }, epoch);
      throw err;
    }
    this.lastSavedKey = batch.key;
    this.committed([{ op: "put", key: batch.key, value: bytes }]);
    if (this.lane.watched(this)) this.lane.landed(this, batch.key, batch.at ?? 0);
  }

  /**
   * A failed write stays pending for a retry, unless a rollback discarded it or a newer save supersedes it (which then
   * answers for it: the flushes called since it was saved fail if the newer one is refused).
   */
  private keep(batch: PendingSnapshot<T>, epoch: number): void {
    if (this.epoch !== epoch) return;
    // Records of this tier taken after this one, waiting on the write lane, fail with it: newest first, each kept
    // unless a newer one is (core.ts `laterTaken`).
    const later = this.laterTaken();
    for (let i = later.length - 1; i >= 0; i--) this.keepOne(later[i]!.batch);
    this.keepOne(batch);
  }

  private keepOne(batch: PendingSnapshot<T>): void {
    if (this.dropped(batch)) return; // another tier's later landing of its key made it stale, or a discard
    if (this.pending === undefined) {
      this.pending = batch;
      this.stats.pendingEntries = 1;
      this.hold(batch);
    } else this.pending.since = Math.min(this.pending.since, batch.since); // superseded unstored: see `since`
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
