/** Append-log tier: entries bucketed by keyOf; each flush appends one segment per bucket (O(batch)). */
import type { Codec } from "../codec/types.js";
import { decodeWith, encodeWith } from "../codec/user-codec.js";
import type { BatchOp, ExpectedValue, StorageBackend } from "../backend/types.js";
import { CodecError, StorageError } from "../errors.js";
import { KeyedTierCore, expectationFailure, handled, isPermanent } from "./core.js";
import type { Step } from "./maybe.js";
import { listSorted, readValue } from "./read.js";
import { appendBuckets, appendLoadArgs, appendLogShape } from "./arguments.js";
import { measure, UNKNOWN_SIZE } from "./value-check.js";
import { entriesWeight } from "./weights.js";
import { inlineCore, inlineSurface } from "./inline-surface.js";
import type { StaleHolder, StoredBytes } from "./write-lane.js";
import { writerTenure } from "../backend/tenure.js";
import type { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  assertBucketKey,
  collectPage,
  decodeFold,
  encodeFold,
  foldKey,
  groupBucketKeys,
  maxSegment,
  segmentKey,
  segmentNumber,
  segmentPrefix,
  type BucketKeys,
} from "./append-layout.js";
import { SegmentAllocator, type SegmentHolds } from "./segment-allocator.js";
import type {
  AppendLoadOptions,
  AppendLoadResult,
  AppendLogLayout,
  AppendLogMode,
  AppendLogStorageOptions,
  AppendLogStorageTier,
  TierCommonOptions,
} from "./types.js";

/** Entries buffered by one append call, or one segment encoded on the main thread (custom codec in engine mode). */
/** `write`: the number of the append call that offered the entries (a refusal of them is dated by it, see core.ts). */
type Chunk<T> =
  | { entries: T[]; bytes?: undefined; count: number; write?: number }
  | { entries?: undefined; bytes: Uint8Array; count: number };

interface Bucket<T> {
  chunks: Chunk<T>[];
  /**
   * Segment numbers a failed flush reserved, in order, reused by the retry so it overwrites instead of duplicating.
   * Only these: segments the retry writes beyond them take fresh numbers (a later flush may already own the next).
   */
  segments?: number[];
  /** Its flush's segment keys were found taken by another handle (a flush group's conditional commit): list again. */
  relist?: boolean;
  /**
   * Array layout: the stored array a failed flush appended this bucket's entries to. Over a store only this handle
   * writes, its retry appends to the same array instead of reading the store again, which may already hold the
   * entries (a write whose answer was lost); elsewhere `restore` forgets it (another writer may have changed the key).
   */
  base?: unknown[];
  /**
   * The stored bytes `base` was decoded from, exactly as read (null: nothing stored): what a write of this bucket
   * keeps of the store, and what its conditional write expects the key to hold.
   */
  read?: StoredBytes;
  /** Array layout, append mode: the bytes the write being made wrote (`base` with its entries after it). */
  attempt?: Uint8Array;
  /**
   * Array layout, append mode, over a store only this handle writes (`soleWriter`): every failed write of the bucket
   * sent since `base` was read, in doubt (its answer may be lost), each with how many leading chunks it held. Another
   * tier's next landing of the key that kept exactly one's bytes proves that write landed (no other writer could
   * have made them): those chunks are stored and the retry does not append them again (`landedOver`).
   */
  tried?: Tried[];
  /** The landing number (write-lane.ts `landing`) of the batch that took it last. */
  takenAt?: number;
  /**
   * Put back by a failed flush (array layout or overwrite mode, which write the bucket's key): its first `heldChunks`
   * chunks stood on the lane at `heldAt` (see `landedOver`).
   */
  heldAt?: number;
  heldChunks?: number;
}

type Batch<T> = Map<string, Bucket<T>>;

/**
 * A failed write in doubt (`Bucket.tried`): the SHA-256 digest and length of the bytes it wrote, not the bytes (one
 * entry per distinct chunk count through an outage: each would hold the whole array, unbounded by maxPendingBytes).
 */
interface Tried {
  digest: Buffer;
  length: number;
  chunks: number;
}

/** A key a batch wrote, its bucket's place on the write lane, and the stored bytes its write kept (see `landedOver`). */
type Landing = [string, number, StoredBytes | undefined];

/**
 * Conditional writes of one flush whose expected values changed (another handle of the store wrote a bucket between
 * the read and the write; segments layout: took one of its segment numbers): each reads (lists) again and merges
 * (numbers) again; past this many, the flush fails with StorageError("store-busy") and is retried as any failed
 * flush (nothing of it written, nothing overwritten).
 */
export const ARRAY_WRITE_ATTEMPTS = 8;

/** Listings a read of the log makes while merges of another handle keep changing what it listed (`relisting`). */
export const READ_ATTEMPTS = 8;

/**
 * A key a read listed was gone when read, or (`emptiedOnly`) the only news was segments found emptied for the first
 * time (every one of the listing recorded): the read lists again (`relisting`).
 */
class ListingChanged extends Error {
  constructor(
    readonly key: string,
    readonly emptiedOnly = false,
  ) {
    super(`append-log key "${key}" was ${emptiedOnly ? "emptied" : "deleted"} during the read`);
  }
}

/** A batch put back unwritten has no encodings yet. */
const NO_ENCODINGS: ReadonlyMap<string, Segment[]> = new Map();

/** One segment a flush writes: its bytes and how many entries they hold. */
interface Segment {
  bytes: Uint8Array;
  count: number;
}

/**
 * Next segment number per bucket, shared by every tier over the same store in this thread: by backend object, and
 * for a persistent store by its name (two handles of one SQLite file or directory), so tiers of this thread appending
 * to one bucket never reuse a segment number, and rarely race for one. Handles in other threads or processes do
 * not share it: their segment puts are conditional on the key being absent (`writeBatch`).
 *
 * The name finds an allocator only while something uses it: its tiers and the backend objects that asked for it hold
 * it, the by-name map holds it weakly and forgets the name once it is collected. So two live handles of a store share
 * one (either keeps it reachable, and the name finds it), and a process opening many stores in turn (a server with a
 * store per tenant) keeps none of a store it no longer uses: the map held every store's forever (task 196). Within
 * one allocator, buckets no tier holds are bounded (segment-allocator.ts, task 297).
 */
const allocators = new WeakMap<StorageBackend, SegmentAllocator>();
const allocatorsByStore = new Map<string, WeakRef<SegmentAllocator>>();
const allocatorCollected = new FinalizationRegistry<string>((store) => {
  // Unless the name found no allocator and got a new one meanwhile, which is in use.
  if (allocatorsByStore.get(store)?.deref() === undefined) allocatorsByStore.delete(store);
});

function allocatorFor(backend: StorageBackend): SegmentAllocator {
  let alloc = allocators.get(backend);
  if (alloc) return alloc;
  const store = backend.supports.persistent && typeof backend.name === "string" ? backend.name : undefined;
  alloc = store === undefined ? undefined : allocatorsByStore.get(store)?.deref();
  if (!alloc) {
    alloc = new SegmentAllocator();
    if (store !== undefined) {
      allocatorsByStore.set(store, new WeakRef(alloc));
      allocatorCollected.register(alloc, store);
    }
  }
  allocators.set(backend, alloc);
  return alloc;
}

/** Test hook (not public API): the stores this thread's by-name map still names, and the allocator `backend` uses. */
export const segmentAllocatorsForTesting = {
  storesNamed: (): number => allocatorsByStore.size,
  of: (backend: StorageBackend): SegmentAllocator => allocatorFor(backend),
};

export interface AppendLogCoreOptions extends TierCommonOptions {
  mode?: AppendLogMode;
  layout?: AppendLogLayout;
}

export class AppendLogCore<T> extends KeyedTierCore<Bucket<T>> implements StaleHolder {
  readonly mode: AppendLogMode;
  readonly layout: AppendLogLayout;
  /**
   * Buckets put back by a failed flush that another tier's later write of their key makes stale (`landedOver`), by
   * key, pending or in a batch waiting on the lane. Only where a flush writes the bucket's key (array layout,
   * overwrite mode): appended segments take numbers of their own. Empty unless a write failed (review s15r2 D2).
   */
  private readonly held = new Map<Bucket<T>, string>();
  private readonly nextSegment: SegmentAllocator;
  /**
   * Buckets holding their key's allocator entry (`SegmentAllocator.hold`), from before their first listing until
   * their reserved numbers are written or they are given up (`release`): an entry nobody holds may be evicted, and
   * the next append of that bucket lists it (task 297). Pending, waiting on the lane, or being written.
   */
  private readonly holding = new Map<Bucket<T>, string>();
  /** Those holds counted apart from this tier: released by themselves if it is collected holding (task 310). */
  private readonly holds: SegmentHolds;
  /** Batches whose `writeBatch` runs (a flush group may hold several): a rollback leaves their holds to them. */
  private readonly writing = new Set<Batch<T>>();
  private ownBucketChecked = false;

  constructor(
    backend: StorageBackend,
    /** undefined = chunks arrive pre-encoded (the codec runs on the main thread). */
    private readonly codec: Codec<readonly T[]> | undefined,
    opts: AppendLogCoreOptions,
  ) {
    super(backend, opts, "append-log");
    const { mode, layout } = appendLogShape(opts);
    this.mode = mode;
    this.layout = backend.list ? layout : "array";
    if (!codec && this.layout === "array") {
      throw new TypeError("pre-encoded append-log chunks need the segments layout and a backend with list()");
    }
    this.nextSegment = allocatorFor(backend);
    this.holds = this.nextSegment.holdsFor(this);
  }

  /** Entries already routed to their bucket (keyOf ran in the caller, which checked the bucket key's shared rule). */
  append(bucket: string, entries: readonly T[], entrySize = UNKNOWN_SIZE): void {
    this.assertWritable();
    if (entries.length === 0) return;
    this.checkBucket(bucket);
    this.take(bucket, entries, entrySize);
  }

  /** One call's buckets, all or nothing: a key the backend refuses refuses the call before any bucket takes entries. */
  appendGroups(groups: ReadonlyMap<string, readonly T[]>, entrySize = UNKNOWN_SIZE): void {
    this.assertWritable();
    for (const bucket of groups.keys()) this.checkBucket(bucket);
    for (const [bucket, entries] of groups) this.take(bucket, entries, entrySize);
  }

  /** `entrySize`: an entry's estimated bytes (the value check's walk), else the tier's average weighs it. */
  private take(bucket: string, entries: readonly T[], entrySize: number): void {
    const write = this.nextWrite();
    this.bucket(bucket).chunks.push({ entries: [...entries], count: entries.length, write });
    this.stats.pendingEntries += entries.length;
    this.accepted(entries.length, entriesWeight(1, entries.length, this.entrySizeOr(entrySize)), write);
  }

  /** An entry's estimated bytes, else (nothing walked it) the tier's average. */
  entrySizeOr(entrySize: number): number {
    return entrySize >= 0 ? entrySize : this.entryEstimate();
  }

  /** A chunk of `count` entries encoded by the main thread's codec as one array. */
  appendEncoded(bucket: string, bytes: Uint8Array, count: number): void {
    this.assertWritable();
    if (count === 0) return;
    this.checkBucket(bucket);
    this.bucket(bucket).chunks.push({ bytes, count });
    this.stats.pendingEntries += count;
    this.accepted(count, entriesWeight(1, count, 0) + bytes.byteLength);
  }

  /** appendGroups for chunks encoded on the main thread, one per bucket: all or nothing. */
  appendEncodedGroups(groups: ReadonlyArray<{ bucket: string; bytes: Uint8Array; count: number }>): void {
    this.assertWritable();
    for (const g of groups) this.checkBucket(g.bucket);
    for (const g of groups) this.appendEncoded(g.bucket, g.bytes, g.count);
  }

  /**
   * The backend must be able to store the bucket key and (segments layout) its longest segment key. A caller's
   * bucket passed the shared rule at the public entry (arguments.ts). The tier's own bucket, its name, is nobody's
   * argument: it gets the shared rule here, and since it never changes, all of this once.
   */
  private checkBucket(bucket: string): void {
    const own = bucket === this.name;
    if (own) {
      if (this.ownBucketChecked) return;
      assertBucketKey(bucket);
    }
    // No backend rule (memory, SQLite): no segment key to build.
    if (this.backend.checkKey) {
      this.checkKey(bucket);
      if (this.layout === "segments") this.checkKey(foldKey(bucket)); // its longest key
    }
    if (own) this.ownBucketChecked = true;
  }

  private bucket(key: string): Bucket<T> {
    let b = this.pending.get(key);
    if (!b) this.pending.set(key, (b = { chunks: [] }));
    return b;
  }

  protected override takePending(): Batch<T> | undefined {
    const batch = super.takePending();
    if (batch === undefined) return undefined;
    const at = this.lane.landing();
    for (const bucket of batch.values()) bucket.takenAt = at;
    return batch;
  }

  protected override clearPending(): void {
    super.clearPending();
    // Pending and waiting batches are dropped unwritten; a running one may still land its write: it releases its own.
    const busy = new Set<Bucket<T>>();
    for (const batch of this.writing) for (const b of batch.values()) busy.add(b);
    for (const b of [...this.holding.keys()]) if (!busy.has(b)) this.release(b);
    this.held.clear(); // batches taken before a rollback write nothing more
    this.lane.hold(this, false);
  }

  /**
   * Another tier stored or deleted `key` at landing number `at` (write-lane.ts). A put-back bucket of that key is
   * stale: in overwrite mode its put-back chunks, from an earlier place on the lane, would replace the newer content
   * (dropped unwritten; its own newer chunks stay); in the array layout the array its failed attempt read misses what
   * the other tier stored (its retry would drop those entries), so the retry reads the store again and appends after
   * them (a retry lands where it lands: positions already read never move). Over a store only this handle writes, a
   * failed write that landed after all (its answer lost) is told by the first such landing, which kept exactly its
   * bytes (`kept`): its chunks are not appended again. Elsewhere a writer outside the lane (another handle of the
   * store, in this process or another) may have stored exactly those bytes itself, so equal bytes prove nothing:
   * `restore` kept no attempt and the retry appends again (at least once, never lost: design §3.30, review r180).
   * Where the landing did not say (a kv or snapshot tier, a job: they replace the value, so nothing of the failed
   * write is kept anyway), a fresh read is appended to.
   */
  landedOver(key: string, at: number, kept?: StoredBytes): void {
    for (const [bucket, k] of this.held) {
      if (k !== key) continue;
      if (this.mode === "append") {
        // The first landing after the failure tells: it read either what this bucket's failed writes read (none
        // landed) or the bytes one of them wrote (it landed: its chunks are stored, before the other tier's entries).
        // Each attempt since `base` was read appended chunks to it, so a later one's bytes never equal an earlier one's.
        let stored = 0;
        const tried = bucket.tried ?? [];
        const digest = kept != null && tried.length > 0 ? sha256(kept) : undefined;
        if (digest !== undefined) for (const t of tried) if (t.length === kept!.byteLength && t.digest.equals(digest)) stored = t.chunks;
        bucket.base = undefined;
        bucket.read = undefined;
        bucket.tried = undefined;
        this.held.delete(bucket);
        if (stored > 0) this.dropHeld(key, bucket, stored);
        continue;
      }
      if ((bucket.heldAt ?? at) >= at) continue;
      this.held.delete(bucket);
      this.dropHeld(key, bucket, bucket.heldChunks ?? 0);
      bucket.heldChunks = 0;
    }
    this.lane.hold(this, this.held.size > 0);
  }

  /** Drops the first `n` chunks of a put-back `bucket` unwritten (stale, or stored already), pending or waiting. */
  private dropHeld(key: string, bucket: Bucket<T>, n: number): void {
    let dropped = 0;
    for (const c of bucket.chunks.splice(0, n)) dropped += c.count;
    if (this.pending.get(key) !== bucket) return; // in a batch waiting on the lane: it writes what is left
    this.stats.pendingEntries -= dropped;
    if (bucket.chunks.length > 0) return;
    this.pending.delete(key);
    if (this.pending.size === 0) this.droppedPending();
  }

  protected *writeBatch(batch: Batch<T>, epoch: number): Step {
    this.writing.add(batch);
    try {
      return yield* this.writeBatchOnce(batch, epoch);
    } finally {
      this.writing.delete(batch);
      // Written, or dropped (rolled back, merged into an older put-back bucket): its numbers are no longer held.
      // Put back (a failed write): pending again with its reserved numbers, still held for its retry.
      for (const [key, b] of batch) if (this.pending.get(key) !== b) this.release(b);
    }
  }

  /** A bucket gives up its hold on its key's allocator entry (no-op when it holds none). */
  private release(bucket: Bucket<T>): void {
    const key = this.holding.get(bucket);
    if (key === undefined) return;
    this.holding.delete(bucket);
    this.holds.release(key);
  }

  private *writeBatchOnce(batch: Batch<T>, epoch: number): Step {
    const cancelled = (): boolean => this.epoch !== epoch;
    // Running now: no other tier lands before it (the lane), so what one made stale is gone from its buckets already.
    if (this.held.size > 0) {
      for (const bucket of batch.values()) this.held.delete(bucket);
      this.lane.hold(this, this.held.size > 0);
    }
    const keeps = this.layout === "array" && this.mode === "append";
    const numbers = this.layout === "segments" && this.mode === "append";
    const folds = this.layout === "segments" && this.mode === "overwrite";
    let encodings = new Map<string, Segment[]>();
    let written = false;
    try {
      let built = yield* this.buildOps(batch, encodings, keeps);
      encodings = built.encodings;
      const writeIf = keeps || numbers || folds ? conditionalWriter(this.backend, built.expects.length) : undefined;
      if (writeIf === undefined) {
        written = built.ops.length > 0;
        yield* this.writeOps(built.ops, cancelled);
      } else {
        // The rewrite of each bucket's array applies only while the key holds the bytes it was merged with: a write of
        // another handle of the store (another thread, engine or process) landing between the read and the write is
        // read again and merged again, never overwritten (design §3.30). One batch: all buckets or none, as before.
        // Segments layout: each segment put applies only while its key is absent; a number another handle took
        // (its allocator is not this one) is listed and the batch takes numbers above the highest.
        // Joining a store actor's flush group (joinable: one that takes conditional batches), the first try is the
        // group's one batch, conditional on these keys too; if another handle took one, the group's other batches
        // are committed and this one is numbered again and written alone, here. A later batch of this tier in that
        // group ("inherited") comes here once that retry stored the earlier one: numbered again above it, it is
        // written alone after it, so its flush settles with its writes instead of rejecting (task 194).
        let joined = numbers && this.joining !== undefined;
        for (let attempt = 1; ; attempt++) {
          if (cancelled()) return;
          written = true;
          let applied: boolean;
          if (joined) {
            joined = false;
            try {
              yield* this.writeOps(built.ops, cancelled, built.expects);
              applied = true;
            } catch (err) {
              if (expectationFailure(err) === undefined) throw err;
              applied = false;
            }
          } else applied = (yield writeIf(built.expects, built.ops)) === true;
          if (applied) break;
          if (attempt === ARRAY_WRITE_ATTEMPTS) {
            const what = keeps
              ? "the stored arrays kept changing under its write"
              : folds
                ? "its buckets kept being rewritten under its write"
                : "its segment numbers kept being taken";
            throw new StorageError("store-busy", `append-log "${this.name}": ${what} (another handle of the store writes them)`, {
              keys: built.expects.map((e) => e.key),
              attempts: attempt,
            });
          }
          if (keeps) {
            for (const bucket of batch.values()) bucket.base = undefined; // read again
            built = yield* this.buildOps(batch, new Map(), keeps);
            encodings = built.encodings;
          } else {
            for (const bucket of batch.values()) bucket.segments = undefined; // numbered again, above what is stored
            built = yield* this.buildOps(batch, encodings, keeps, encodings);
          }
        }
      }
      if (!cancelled()) {
        this.committed(built.ops);
        if (built.landings !== undefined) for (const [k, at, kept] of built.landings) this.lane.landed(this, k, at, kept);
      }
    } catch (err) {
      if (expectationFailure(err) !== undefined) {
        // Unwritten behind a batch of this tier numbered again: numbered again too, so it stays after that one.
        for (const bucket of batch.values()) {
          bucket.segments = undefined; // nothing of it written: numbered again, above what is stored
          bucket.relist = true;
        }
      }
      if (!cancelled()) {
        // Batches of this tier taken after this one, waiting on the write lane, fail with it: newest first, each goes
        // back in front of what is newer, then this one in front of them (core.ts `laterTaken`).
        const later = this.laterTaken();
        for (let i = later.length - 1; i >= 0; i--) this.restore(later[i]!.batch, NO_ENCODINGS, false);
        this.restore(batch, encodings, written);
      }
      throw err;
    }
  }

  /**
   * The batch's backend ops, each bucket's segments (kept for a retry, see `restore`), the landings to report, and
   * (array layout, append mode) what each rewritten key must hold for its op to apply.
   */
  private *buildOps(
    batch: Batch<T>,
    encodings: Map<string, Segment[]>,
    keeps: boolean,
    /** Segments layout, numbering again after a conflict: the batch's segments as encoded, the bucket listed again. */
    renumber?: ReadonlyMap<string, Segment[]>,
  ): Generator<unknown, { ops: BatchOp[]; encodings: Map<string, Segment[]>; expects: ExpectedValue[]; landings: Landing[] | undefined }, unknown> {
    const ops: BatchOp[] = [];
    const expects: ExpectedValue[] = [];
    // Where its landings must be reported (another tier holds put-back values): each op's key with its bucket's place.
    const landings: Landing[] | undefined = this.lane.watched(this) ? [] : undefined;
    for (const [key, bucket] of batch) {
      let segments: Segment[] | undefined;
      if (renumber !== undefined) segments = renumber.get(key);
      else {
        // The check's encoding is the segment encodeChunks would make of the entries: not encoded twice (memory, CPU).
        const joint = dropUnencodable(bucket, this.codec, (err, write) => this.refuse(err, write ?? this.oldestInBatch, key));
        segments = encodeChunks(bucket.chunks, this.codec, joint);
      }
      if (segments === undefined || segments.length === 0) continue;
      encodings.set(key, segments);
      const { ops: bucketOps, expects: bucketExpects } = yield* this.opsFor(key, bucket, segments.map((s) => s.bytes), renumber !== undefined);
      ops.push(...bucketOps);
      if (keeps) expects.push({ key, value: bucket.read ?? undefined });
      expects.push(...bucketExpects);
      if (landings !== undefined) {
        // Only put-back chunks left: they land at their own (earlier) place.
        const fresh = bucket.chunks.length > (bucket.heldChunks ?? 0);
        const at = (fresh ? bucket.takenAt : bucket.heldAt) ?? 0;
        for (const op of bucketOps) landings.push([op.key, at, keeps ? bucket.read : undefined]);
      }
    }
    return { ops, encodings, expects, landings };
  }

  /**
   * Appended segments depend only on the batch (their numbers come from the shared allocator, listed once per
   * bucket before any is reserved); where their puts are conditional (another handle of the store may take a
   * number) they join only a group whose one batch is conditional too (`joinsConditional`); the array
   * layout and overwrite mode read what is stored to build their ops, so a batch taken before theirs must be stored
   * first: they flush alone.
   */
  protected override joinable(): boolean {
    if (this.layout !== "segments" || this.mode !== "append") return false;
    return conditionalWriter(this.backend, 1) === undefined || this.flushGroup?.joinsConditional === true;
  }

  /**
   * Backend ops that append (or, in overwrite mode, replace) one bucket with `encoded` chunks, and what they expect
   * stored where other handles may write the store (segments layout; the array layout's expectation is its caller's).
   */
  private *opsFor(
    key: string,
    bucket: Bucket<T>,
    encoded: Uint8Array[],
    relist = false,
  ): Generator<unknown, { ops: BatchOp[]; expects: ExpectedValue[] }, unknown> {
    if (this.layout === "array") {
      const merged = yield* this.mergedArray(key, bucket);
      return { ops: [{ op: "put", key, value: merged }], expects: [] };
    }
    if (this.mode === "overwrite") return yield* this.overwriteOps(key, encoded);
    const reserved = bucket.segments ?? [];
    const missing = encoded.length - reserved.length;
    if (missing > 0) {
      // Held before listing: the entry cannot be evicted while the list runs, nor until these numbers are written.
      if (!this.holding.has(bucket)) {
        this.holding.set(bucket, key);
        this.holds.hold(key);
      }
      let next = this.nextSegment.next(key);
      if (next === undefined || relist || bucket.relist === true) {
        bucket.relist = false;
        const existing = (yield listSorted(this.backend, segmentPrefix(key))) as string[];
        // Every number a fold names is stored (its segment, or the empty value left for it) while the fold is; but a
        // build before task 351 merging over a fold deletes the segments and leaves it (design §3.11, review r358
        // H2): numbered above what the fold names too, a new segment is never one that fold hides.
        let top = maxSegment(existing, key);
        const fo = foldKey(key);
        if (existing.includes(fo)) {
          const bytes = (yield this.backend.read(fo)) as Uint8Array | undefined;
          if (bytes !== undefined && bytes.byteLength > 0) for (const d of decodeFold(fo, bytes).covers) top = Math.max(top, segmentNumber(fo, d));
        }
        next = Math.max(this.nextSegment.next(key) ?? 1, top + 1);
      }
      // A stored number of 2^53 - 1 (or close below it) leaves none to take: segmentKey would throw a RangeError.
      if (!Number.isSafeInteger(next) || missing - 1 > Number.MAX_SAFE_INTEGER - next) throw noSegmentAfter(key, next - 1);
      for (let i = 0; i < missing; i++) reserved.push(next + i);
      this.nextSegment.raise(key, next + missing);
    }
    bucket.segments = reserved;
    const ops = encoded.map((value, i): BatchOp => ({ op: "put", key: segmentKey(key, reserved[i]!), value }));
    // A new segment's key holds nothing: another handle's segment there is never overwritten, nor a number a fold
    // names (design §3.11: stored, if only as an empty value, while the fold is).
    return { ops, expects: ops.map((op) => ({ key: op.key, value: undefined })) };
  }

  /**
   * Overwrite mode, segments layout: the bucket becomes `encoded` (design §3.11). The fold (the new content, naming
   * every segment listed), each segment emptied, the base written, the fold deleted, the emptied segments deleted: a
   * batch cut short at any op reads as the old content or the new, never a mix. Several chunks (a failed flush's
   * segments, encoded once, and entries appended since; or chunks encoded on the main thread) stay in the fold, with
   * the emptied segments it names: they are not decoded and encoded again to make one base value.
   */
  private *overwriteOps(key: string, encoded: Uint8Array[]): Generator<unknown, { ops: BatchOp[]; expects: ExpectedValue[] }, unknown> {
    // Its segments and fold (the base is written whatever it holds).
    const listed = (yield listSorted(this.backend, segmentPrefix(key))) as string[];
    const g = groupBucketKeys(listed).find((b) => b.bucket === key) ?? { bucket: key, segments: [] };
    const fo = foldKey(key);
    const fold = g.fold === undefined ? undefined : ((yield this.backend.read(fo)) as Uint8Array | undefined);
    const ops = foldOps(key, g, encoded, encoded.length === 1 ? encoded[0] : undefined);
    let top = 0;
    for (const s of g.segments) top = Math.max(top, segmentNumber(s.key, s.digits));
    this.nextSegment.raise(key, top + 1);
    // Another overwrite or merge of the bucket since the listing: list again (its fold, or the base it promoted).
    return { ops, expects: [{ key: fo, value: fold }] };
  }

  /**
   * Reference layout: read the whole array, append, rewrite (O(log); only for backends without list). Where other
   * handles may write the store and the backend can, the rewrite is conditional on the bytes read (`writeBatch`).
   */
  private *mergedArray(key: string, bucket: Bucket<T>): Generator<unknown, Uint8Array, unknown> {
    const codec = this.codec!;
    if (this.mode === "overwrite") return encodeWith(codec, bucket.chunks.flatMap((c) => c.entries ?? []));
    let existing: unknown = bucket.base;
    if (existing === undefined) {
      // Exactly the stored bytes (an empty value too): the conditional write expects them.
      const raw = (yield this.backend.read(key)) as Uint8Array | undefined;
      existing = raw === undefined || raw.byteLength === 0 ? [] : decodeStored(codec, raw, key);
      if (!Array.isArray(existing)) throw new TypeError(`append-log key "${key}" does not hold an array`);
      bucket.base = existing; // a retry appends to what this attempt read where restore() keeps it (a sole writer)
      bucket.read = raw ?? null;
    }
    const merged = encodeWith(codec, [...(existing as T[]), ...bucket.chunks.flatMap((c) => c.entries ?? [])]);
    bucket.attempt = merged;
    return merged;
  }

  /**
   * Failed flush: its buckets go back in front of anything appended since, keeping their reserved segment numbers
   * and (segments layout) their encoding, so a retry writes the same segments instead of encoding every entry again
   * (CPU per retry, a second encoding held while it ran). The array layout merges with the stored array: encoded anew.
   */
  private restore(batch: Batch<T>, encodings: ReadonlyMap<string, Segment[]>, written: boolean): void {
    // Its chunks keep their batch's place on the lane (`landedOver`), where a flush writes the bucket's key.
    const holds = this.layout === "array" || this.mode === "overwrite";
    if (holds) {
      const sole = soleWriter(this.backend);
      for (const [key, b] of batch) {
        b.heldAt = b.takenAt;
        b.heldChunks = b.chunks.length;
        // A write sent may have landed (its answer lost): its chunks are those it wrote. One never sent did not.
        if (sole) {
          // Attempts of the same chunks wrote the same bytes (same base): one kept, so retries failing through an
          // outage hold one encoding per distinct chunk count, not one per attempt.
          const chunks = b.chunks.length;
          if (written && b.attempt !== undefined && !b.tried?.some((t) => t.chunks === chunks)) {
            (b.tried ??= []).push({ digest: sha256(b.attempt), length: b.attempt.byteLength, chunks });
          }
        } else {
          // Another handle may write the store (review r180): bytes read later cannot tell this write's from its,
          // and by the retry the array this attempt read may be stale (rewriting it would drop that writer's
          // entries). The retry reads the store again and appends: stored at least once (twice if this write
          // landed), never counted stored unwritten.
          b.base = undefined;
          b.read = undefined;
        }
        b.attempt = undefined;
        this.held.set(b, key);
      }
    }
    if (this.layout === "segments") {
      for (const [key, segments] of encodings) {
        const b = batch.get(key);
        if (b) b.chunks = segments.map(({ bytes, count }) => ({ bytes, count }));
      }
    }
    let restored = 0;
    for (const [key, b] of this.pending) {
      const old = batch.get(key);
      if (old) {
        // A bucket put back before (a later batch's, see writeBatch) follows this one's chunks: held alike, newest place.
        if (holds && b.heldChunks) {
          old.heldChunks = (old.heldChunks ?? 0) + b.heldChunks;
          old.heldAt = Math.max(old.heldAt ?? 0, b.heldAt ?? 0);
          this.held.delete(b);
        }
        old.chunks.push(...b.chunks);
        // Its chunks take fresh numbers under `old`: its own reservation (never written) is given up.
        if (!this.holding.has(old) && this.holding.delete(b)) this.holding.set(old, key); // its hold goes to `old`
        else this.release(b);
      } else batch.set(key, b);
    }
    if (holds) this.lane.hold(this, this.held.size > 0);
    for (const b of batch.values()) for (const c of b.chunks) restored += c.count;
    this.pending = batch;
    this.stats.pendingEntries = restored;
  }

  async loadEntries(opts?: AppendLoadOptions): Promise<AppendLoadResult<T>> {
    this.assertOpen();
    appendLoadArgs(opts);
    const codec = this.codec;
    if (!codec) throw new TypeError("loadEntries needs the codec: decode on the side that owns it (loadSegments)");
    return this.relisting((emptied) => collectPage<T>(this.decodedValues(opts?.keyFilter, (b, key) => decodeStored(codec, b, key), emptied), opts));
  }

  /**
   * Raw stored values in read order, for callers that decode themselves (an engine's main-thread codec), with the key
   * each was read under (a fold's chunks share its key), so that a decode failure names it as decodeStored does.
   */
  async loadSegments(keyFilter?: string): Promise<{ segments: Uint8Array[]; keys: string[] }> {
    this.assertOpen();
    return this.relisting(async (emptied) => {
      const segments: Uint8Array[] = [];
      const keys: string[] = [];
      for await (const { b, key } of this.decodedValues(keyFilter, (b, key) => ({ b, key }), emptied)) {
        segments.push(b);
        keys.push(key);
      }
      return { segments, keys };
    });
  }

  /**
   * Runs a read of the log again from its listing while what it listed changed under it (a merge or overwrite of
   * another handle deleted a segment or fold it listed, or emptied a segment: design §3.11), so it never returns an
   * entry twice or skips one; past READ_ATTEMPTS listings, StorageError("store-busy").
   */
  private async relisting<R>(read: (emptied: Set<string>) => Promise<R>): Promise<R> {
    const emptied = new Set<string>();
    // The first listing again for segments found emptied, and nothing else, is not counted: they may be a merge's
    // leftovers from before the read (a merge cut short after its base), which read as nothing from then on (review
    // r358 H1: a read learnt one per listing, and 8 of them made every read store-busy until a writer compacted).
    let free = true;
    for (let attempt = 1; ; ) {
      try {
        return await read(emptied);
      } catch (err) {
        if (!(err instanceof ListingChanged)) throw err;
        if (err.emptiedOnly && free) {
          free = false;
          continue;
        }
        if (attempt++ >= READ_ATTEMPTS) {
          throw new StorageError("store-busy", `append-log "${this.name}": its keys kept changing under the read (another handle merges them)`, {
            key: err.key,
            attempts: attempt - 1,
          });
        }
      }
    }
  }

  /** `emptied`: segments a listing before this one found empty (see below). */
  private async *decodedValues<V>(keyFilter: string | undefined, decode: (b: Uint8Array, key: string) => V, emptied: Set<string>): AsyncGenerator<V> {
    // A flush already started may still be listing for its segment number (async backend, e.g. PostgreSQL): its write
    // lands first, so a read issued after a sync-through append sees the entries, as on a sync backend.
    await this.exclusive(() => undefined);
    if (!this.backend.list) {
      const key = keyFilter ?? this.name;
      const bytes = await this.guard(`read of "${key}"`, () => readValue(this.backend, key));
      if (bytes !== undefined) yield decode(bytes, key);
      return;
    }
    const groups = groupBucketKeys(await this.guard("list", () => listSorted(this.backend, keyFilter)));
    // undefined: deleted since the listing; an empty value (absent, docs/protocol.md §3) reads as nothing.
    const read = (key: string): Promise<Uint8Array | undefined> => this.guard(`read of "${key}"`, () => this.backend.read(key));
    // The first segment of this listing found emptied for the first time: nothing more is yielded (the read starts
    // over), but the rest of the listing is read for other emptied segments, so one more listing learns them all.
    let emptiedNow: string | undefined;
    for (const g of groups) {
      // A fold stands for the base and the segments it names (a merge or overwrite cut short, or under way). An empty
      // one is absent (docs/protocol.md §3: no fold ever written is empty): the base and segments read as usual.
      let covers: ReadonlySet<string> | undefined;
      if (g.fold !== undefined) {
        const bytes = await read(g.fold);
        if (bytes === undefined) throw new ListingChanged(g.fold); // its merge ended meanwhile: list again
        if (bytes.byteLength > 0) {
          const fold = decodeFold(g.fold, bytes);
          covers = new Set(fold.covers);
          if (emptiedNow === undefined) for (const chunk of fold.chunks) yield decode(chunk, g.fold);
        }
      }
      if (covers === undefined && g.base !== undefined && emptiedNow === undefined) {
        const bytes = await read(g.base);
        if (bytes !== undefined && bytes.byteLength > 0) yield decode(bytes, g.base);
      }
      for (const s of g.segments) {
        if (covers?.has(s.digits)) continue;
        const bytes = await read(s.key);
        // Deleted since the listing: a merge folded it (into the base read above, or not): list again.
        if (bytes === undefined) throw new ListingChanged(s.key);
        if (bytes.byteLength > 0) {
          if (emptiedNow === undefined) yield decode(bytes, s.key);
          continue;
        }
        // Emptied by a merge: one that began after this listing (the base or fold read above may be older than it),
        // so list again; or one that ended before the next listing (no fold left: the base read is its new one, or
        // a fold names the segment now): then it reads as nothing.
        if (!emptied.has(s.key)) {
          emptied.add(s.key);
          emptiedNow ??= s.key;
        }
      }
    }
    if (emptiedNow !== undefined) throw new ListingChanged(emptiedNow, true);
  }

  /** Folds every bucket's segments into its base value in one batch per bucket (bounded read cost). */
  override async compact(): Promise<void> {
    this.assertWritable();
    await this.flush();
    // In its place on the write lane, as a flush writes: the merge reads what it rewrites, and another tier's write of
    // a bucket landing in between (an asynchronous backend) would be lost; what it writes is told to the tiers
    // holding put-back values of those keys.
    await this.guard("compaction", () => this.exclusive((at) => this.mergeSegments(at)));
  }

  private async mergeSegments(at: number): Promise<void> {
    const codec = this.codec;
    if (!codec || this.layout !== "segments") return;
    for (const g of groupBucketKeys(await listSorted(this.backend))) {
      if (g.segments.length === 0 && g.fold === undefined) continue;
      await this.mergeBucket(g, codec, at);
    }
  }

  /**
   * Folds one bucket into its base (design §3.11, `foldOps`): a batch cut short at any op (a crash, a failed unlink:
   * the file store applies it op by op) reads as before or after. Where other handles may write the store, the batch
   * applies only while the fold and the base hold what this merge read; another merge or overwrite changed one of
   * them: list and merge again (ARRAY_WRITE_ATTEMPTS, then store-busy).
   */
  private async mergeBucket(first: BucketKeys, codec: Codec<readonly T[]>, at: number): Promise<void> {
    let g: BucketKeys | undefined = first;
    for (let attempt = 1; ; attempt++) {
      const plan: MergePlan | "changed" | undefined = g === undefined ? undefined : await this.planMerge(g, codec);
      if (plan === undefined) return; // not an append-log bucket (another tier's record), or nothing left to fold
      if (plan !== "changed" && (await this.rewrite(plan.expects, plan.ops))) {
        if (this.lane.watched(this)) for (const op of plan.ops) this.lane.landed(this, op.key, at, op.key === plan.bucket ? plan.base : undefined);
        return;
      }
      if (attempt === ARRAY_WRITE_ATTEMPTS) {
        throw new StorageError("store-busy", `append-log "${this.name}": bucket "${first.bucket}" kept changing under its compaction (another handle of the store writes it)`, {
          key: first.bucket,
          attempts: attempt,
        });
      }
      g = groupBucketKeys(await listSorted(this.backend, first.bucket)).find((b) => b.bucket === first.bucket);
    }
  }

  /** A bucket's merge batch and what it expects stored; "changed": a key listed was gone when read; undefined: not ours. */
  private async planMerge(g: BucketKeys, codec: Codec<readonly T[]>): Promise<MergePlan | "changed" | undefined> {
    const all: T[] = [];
    const add = (bytes: Uint8Array | undefined, key: string): boolean => {
      const v: unknown = bytes === undefined || bytes.byteLength === 0 ? [] : decodeStored(codec, bytes, key);
      if (!Array.isArray(v)) return false;
      all.push(...(v as T[]));
      return true;
    };
    let fold: Uint8Array | undefined;
    let base: StoredBytes | undefined;
    let covers: ReadonlySet<string> = new Set();
    if (g.fold !== undefined) {
      fold = await this.backend.read(g.fold);
      if (fold === undefined) return "changed";
    }
    // An empty fold is absent (docs/protocol.md §3), as a read takes it: the base and segments are merged.
    if (fold !== undefined && fold.byteLength > 0) {
      const f = decodeFold(g.fold!, fold);
      covers = new Set(f.covers);
      for (const chunk of f.chunks) if (!add(chunk, g.fold!)) return undefined;
    } else {
      base = g.base === undefined ? null : ((await this.backend.read(g.base)) ?? null);
      if (!add(base ?? undefined, g.bucket)) return undefined;
    }
    let last: ExpectedValue | undefined;
    for (const s of g.segments) {
      if (covers.has(s.digits)) continue;
      const bytes = await this.backend.read(s.key);
      if (bytes === undefined) return "changed";
      if (!add(bytes, s.key)) return undefined;
      last = { key: s.key, value: bytes };
    }
    const merged = encodeWith(codec, all);
    const expects: ExpectedValue[] = [{ key: foldKey(g.bucket), value: fold }];
    // Another handle's merge rewrote the base since (a stale batch would fold those segments in twice).
    if (base !== undefined) expects.push({ key: g.bucket, value: base ?? undefined });
    // Another handle's overwrite since whose base is the bytes read here (review r373 M1: its first chunk the old
    // base) passes both checks above; but it emptied or deleted every segment listed, this last one too.
    if (last !== undefined) expects.push(last);
    return { bucket: g.bucket, base, expects, ops: foldOps(g.bucket, g, [merged], merged) };
  }

  /** A fold's batch: conditional where another handle may write the store and the backend can, else as is. */
  private async rewrite(expects: readonly ExpectedValue[], ops: BatchOp[]): Promise<boolean> {
    const writeIf = conditionalWriter(this.backend, expects.length);
    if (writeIf !== undefined) return (await writeIf(expects, ops)) === true;
    await writeCompaction(this.backend, ops);
    return true;
  }
}

/**
 * The batch that makes bucket `g` hold `chunks` (design §3.11), in this order: the fold (the chunks, naming every
 * segment listed); each listed segment emptied (a 0-byte value reads as absent, and its key stays taken, so no
 * handle's new segment can take a number the fold names while it is stored); then, where the content is one encoded
 * array (`base`), the base written, the fold deleted and the emptied segments deleted. Each prefix reads as the old
 * content or the new: before the fold, the old; from the fold on, the fold (it hides the base and what it names);
 * once it is deleted, the new base, the emptied segments reading as nothing. Without `base`, the batch ends after
 * the emptied segments (they stay while the fold does).
 */
function foldOps(bucket: string, g: BucketKeys, chunks: Uint8Array[], base: Uint8Array | undefined): BatchOp[] {
  const fo = foldKey(bucket);
  const ops: BatchOp[] = [{ op: "put", key: fo, value: encodeFold({ covers: g.segments.map((s) => s.digits), chunks }) }];
  for (const s of g.segments) ops.push({ op: "put", key: s.key, value: EMPTY });
  if (base === undefined) return ops;
  ops.push({ op: "put", key: bucket, value: base }, { op: "delete", key: fo });
  for (const s of g.segments) ops.push({ op: "delete", key: s.key });
  return ops;
}

const EMPTY = new Uint8Array(0);

/**
 * The codec's decode of the value stored under `key` (a base, segment or fold): a failure names the key, in the
 * message and `details.key`, so the damaged value can be found among the bucket's keys (task 365).
 */
export function decodeStored<T>(codec: Codec<readonly T[]>, bytes: Uint8Array, key: string): readonly T[] {
  try {
    return decodeWith(codec, bytes);
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    throw new CodecError(err.code, `append-log value "${key}" cannot be decoded: ${err.message}`, { ...err.details, key }, err.cause ?? err);
  }
}

/** No new segment of `bucket` can be numbered after `last` (past 2^53 - 1): the store is refused, naming that key. */
function noSegmentAfter(bucket: string, last: number): StorageError {
  const key = segmentKey(bucket, last);
  return new StorageError("corrupt-store", `append-log segment key "${key}" has a number too near 2^53 - 1: no segment can follow it`, {
    key,
  });
}

/** One bucket's merge (`planMerge`): its ops, what they expect stored, and the base's bytes as read (null: none). */
interface MergePlan {
  bucket: string;
  base: StoredBytes | undefined;
  expects: ExpectedValue[];
  ops: BatchOp[];
}

async function writeCompaction(backend: StorageBackend, ops: BatchOp[]): Promise<void> {
  if (backend.writeBatch) return void (await backend.writeBatch(ops));
  for (const op of ops) {
    if (op.op === "put") await backend.write(op.key, op.value);
    else await backend.delete?.(op.key);
  }
}

/**
 * An append whose entries the codec rejects can never be written: refuse that chunk, keep the others. Returns the
 * entries' joint encoding when it succeeded (the segment of their run when they form one, see encodeChunks).
 */
function dropUnencodable<T>(
  bucket: Bucket<T>,
  codec: Codec<readonly T[]> | undefined,
  refuse: (err: Error, write: number | undefined) => void,
): Uint8Array | undefined {
  if (!codec) return undefined;
  const entries = bucket.chunks.flatMap((c) => c.entries ?? []);
  if (entries.length === 0) return undefined;
  // A user codec's throw is CodecError (encodeWith): permanent, so its chunk is refused rather than retried forever.
  try {
    return encodeWith(codec, entries);
  } catch (err) {
    if (!isPermanent(err)) throw err;
  }
  bucket.chunks = bucket.chunks.filter((c) => {
    if (!c.entries) return true;
    try {
      encodeWith(codec, c.entries);
      return true;
    } catch (err) {
      refuse(err as Error, c.write);
      return false;
    }
  });
  return undefined;
}

/**
 * Consecutive entry chunks become one segment; pre-encoded chunks (the main thread's, or a failed flush's) stay one
 * segment each. `joint`: the encoding of every entry chunk together, used as their segment when they form one run.
 */
function encodeChunks<T>(chunks: readonly Chunk<T>[], codec: Codec<readonly T[]> | undefined, joint: Uint8Array | undefined): Segment[] {
  const runs = chunks.filter((c, i) => c.entries !== undefined && chunks[i - 1]?.entries === undefined).length;
  const out: Segment[] = [];
  let run: T[] = [];
  let count = 0;
  const close = (): void => {
    if (run.length > 0) out.push({ bytes: runs === 1 && joint !== undefined ? joint : encodeWith(codec!, run), count });
    run = [];
    count = 0;
  };
  for (const c of chunks) {
    if (c.bytes) {
      close();
      out.push({ bytes: c.bytes, count: c.count });
    } else {
      run.push(...c.entries);
      count += c.count;
    }
  }
  close();
  return out;
}

export function appendLogStorage<T>(backend: StorageBackend, opts: AppendLogStorageOptions<T> = {}): AppendLogStorageTier<T> {
  const { core, codec } = inlineCore(backend, "append-log", opts, (c: Codec<readonly T[]>) => new AppendLogCore<T>(backend, c, opts));
  const keyOf = opts.keyOf;
  return inlineSurface(backend, core, opts, codec.name, {
    mode: core.mode,
    appendEntries(entries: readonly T[]): void {
      core.assertWritable();
      const groups = appendBuckets(entries, keyOf);
      if (entries.length === 0) return;
      // Values too: one refused entry refuses the call (its path indexes `entries`), once the call found room.
      const size = measure(core.valueCheck, entries);
      const entrySize = typeof size === "number" && size >= 0 ? size / entries.length : UNKNOWN_SIZE;
      core.assertRoom(entriesWeight(groups?.size ?? 1, entries.length, core.entrySizeOr(entrySize)));
      // One bucket's key names the refusal; refused entries of several buckets reach every watcher.
      if (size instanceof Error) return core.refuse(size, undefined, groups === undefined ? core.name : soleKey(groups));
      if (!groups) core.append(core.name, entries, entrySize);
      else core.appendGroups(groups, entrySize);
    },
    loadEntries: (o) => handled(core.loadEntries(o)),
  });
}

function soleKey(groups: ReadonlyMap<string, unknown>): string | undefined {
  if (groups.size !== 1) return undefined;
  for (const key of groups.keys()) return key;
  return undefined;
}

/**
 * Whether this handle alone writes its store (a PostgreSQL writer's lease, tenure.ts): then every write of it goes
 * through its write lane, and bytes it reads are a write it knows of. A store lock (SQLite, file), memory, or a
 * wrapper (no tenure of its own): other handles may write beside it. A write of it failed in doubt is settled before
 * anything read or written after: the handle ends its server session first, and one it could not see ended
 * (`details.settled: false`) is ended again before the handle's next call, which fails unsent until then (postgres.ts
 * `settleFirst`). So a read-back after the failure shows its final outcome, and no retry acknowledged after it can be
 * overwritten by it landing late (task 284; the conditional path alone would not do: the late write is unconditional).
 */
function soleWriter(backend: StorageBackend): boolean {
  return writerTenure(backend)?.sole === true;
}

/**
 * The backend's conditional batch for `keys` expected values, or undefined where the rewrite goes unconditional:
 * - over a store only this handle writes (a PostgreSQL writer's lease): no other handle's write can land between the
 *   read and the write (a second writer is refused, a late one fenced out by epoch), and the write keeps its one
 *   statement (a conditional one is a transaction of four round trips);
 * - where the backend has none: every key in one step needs `supports.conditionalKeys` (memory, file store, SQLite,
 *   PostgreSQL). Without it (a backend of the user's, a wrapper that hides it) a write of another handle landing
 *   between the read and the write is overwritten (design §3.30).
 */
function conditionalWriter(
  backend: StorageBackend,
  keys: number,
): ((expects: readonly ExpectedValue[], ops: readonly BatchOp[]) => unknown) | undefined {
  const s = backend.supports;
  if (keys === 0 || s.conditionalBatch !== true || typeof backend.writeBatchIf !== "function") return undefined;
  if (soleWriter(backend)) return undefined;
  if (keys > 1 && s.conditionalKeys !== true) return undefined;
  return (expects, ops) => backend.writeBatchIf!(expects.length === 1 ? expects[0]! : expects, ops);
}

/** SHA-256 of a write's bytes: a failed attempt's and a landing's kept bytes are compared by it (see `landedOver`). */
function sha256(bytes: Uint8Array): Buffer {
  return createHash("sha256").update(bytes).digest();
}
