/** Kv tier: many records under caller-supplied keys; a flush commits all pending keys in one backend batch. */
import type { Codec } from "../codec/types.js";
import { StorageError, asStorageError } from "../errors.js";
import type { BatchOp, StorageBackend } from "../backend/types.js";
import { TierCore, handled } from "./core.js";
import { handledIterator } from "../base/promises.js";
import { encodeAll } from "./write-ops.js";
import { decodeWith } from "../codec/user-codec.js";
import { Encoded } from "../codec/bytes.js";
import { runMaybeAsync, type Step } from "./maybe.js";
import type { KvStorageOptions, KvStorageTier, TierCommonOptions } from "./types.js";
import { listSorted, readValue } from "./read.js";
import { assertKeyArray, compareKeys } from "../backend/keys.js";
import { kvDeleteManyArgs, kvSaveArgs, kvSaveManyArgs } from "./arguments.js";
import { measure } from "./value-check.js";
import { recordWeight } from "./weights.js";
import { inlineCore, inlineSurface } from "./inline-surface.js";
import type { StaleHolder } from "./write-lane.js";

/**
 * A flush's batch: the values taken and the numbers of the writes that put them (see `pendingPutAt`), kept with the
 * batch: on an asynchronous backend a batch may wait on the write lane while later ones are taken (core.ts
 * `flushQueued`), and batches joining a store actor's flush group wait for its commit together.
 */
interface KvBatch<T> {
  readonly values: Map<string, T>;
  readonly putAt: ReadonlyMap<string, number>;
  readonly firstPutAt: ReadonlyMap<string, number>;
  /** Its landing number (write-lane.ts `landing`), and the older ones of values put back by a failed batch. */
  readonly takenAt: number;
  readonly landAt: ReadonlyMap<string, number>;
}

export class KvCore<T> extends TierCore<KvBatch<T>> implements StaleHolder {
  protected pending = new Map<string, T>();
  /**
   * The landing number of each pending value a failed batch put back (or a flush left for a queued delete): where
   * it stood on the lane. Another tier's later landing of the key makes it stale (`landedOver`). Empty unless a
   * write failed; batches taken with such values wait in `stale` until they run (review s15r2 D2).
   */
  private pendingLandAt = new Map<string, number>();
  private readonly stale = new Set<KvBatch<T>>();

  constructor(
    backend: StorageBackend,
    readonly codec: Codec<T>,
    opts: TierCommonOptions,
  ) {
    super(backend, opts, "kv");
  }

  /**
   * Inline tiers: the weight of each key saved since the last flush took the pending values, so a newer save of a
   * key settles the one it replaces (a hot key saved many times in a debounce window holds one value, and must not
   * fill maxPendingBytes). Values put back after a failed flush have none here: they count until the next flush.
   */
  private readonly pendingWeights = new Map<string, number>();
  /**
   * The number of the write (`nextWrite`) that put each pending value: a delete queued behind a flush in flight
   * drops, when it runs, only the pending values put before it was called (a value saved after the call wins).
   * Values put back after a failed flush keep theirs.
   */
  private pendingPutAt = new Map<string, number>();
  /**
   * For a pending value that replaced others since the last flush took the pending values, the number of the first
   * of them: a flush called after that one answers for the key's state, so the value's refusal fails it.
   */
  private pendingFirstPutAt = new Map<string, number>();
  /**
   * Deletes called and not yet run (queued behind flushes), per key in call order. A flush queued before a delete
   * may take a value saved after the delete's call: once it committed that value, the delete must leave the key.
   */
  private readonly queuedDeletes = new Map<string, QueuedDelete[]>();

  put(key: string, value: T): void {
    const replaced = this.replacedWeight(key);
    const weight = this.acceptable(key, value, replaced ?? 0);
    if (weight === false) return;
    this.take(key, value, weight, replaced);
  }

  /**
   * `put` of every entry as one unit (KvStorageTier.saveMany): all or none are taken (not writable, a key the
   * backend can never store, no room throw before any is), room is found once for all of them (a unit heavier
   * than maxPendingBytes goes in alone: room.ts), and the flush they trigger starts after the last (`asOneUnit`).
   * A value the codec's rule refuses is refused alone, as `put` refuses it, once the unit found room.
   */
  putMany(entries: ReadonlyArray<readonly [string, T]>): void {
    this.assertWritable();
    const n = entries.length;
    for (let i = 0; i < n; i++) this.checkKey(entries[i]![0]);
    const sizes = new Array<number | Error>(n);
    const weights = new Array<number>(n);
    let total = 0;
    let freed = 0;
    // The weight of pending values the unit replaces, each key once (a unit may save a key twice).
    const seen = this.selfWeighing && this.pending.size > 0 ? new Set<string>() : undefined;
    for (let i = 0; i < n; i++) {
      const [key, value] = entries[i]!;
      const size = measure(this.valueCheck, value);
      sizes[i] = size;
      total += weights[i] = recordWeight(key, size instanceof Error ? 0 : this.weightOf(value, size));
      if (seen !== undefined && !seen.has(key)) {
        seen.add(key);
        freed += this.replacedWeight(key) ?? 0;
      }
    }
    this.assertRoom(total, freed);
    this.asOneUnit(() => {
      for (let i = 0; i < n; i++) {
        const [key, value] = entries[i]!;
        const size = sizes[i]!;
        if (size instanceof Error) this.refuse(size, undefined, key);
        else this.take(key, value, weights[i]!, this.replacedWeight(key));
      }
    });
  }

  /** The weight of the pending value a write of `key` replaces (inline tiers weigh their own writes). */
  private replacedWeight(key: string): number | undefined {
    return this.selfWeighing && this.pending.has(key) ? this.pendingWeights.get(key) : undefined;
  }

  /** Takes an accepted write weighing `weight` into pending (`replaced`: the pending value's weight it settles). */
  private take(key: string, value: T, weight: number, replaced: number | undefined): void {
    if (this.selfWeighing) {
      if (replaced !== undefined) this.superseded(replaced);
      this.pendingWeights.set(key, weight);
    }
    const write = this.nextWrite();
    const previous = this.pendingPutAt.get(key);
    if (previous !== undefined && !this.pendingFirstPutAt.has(key)) this.pendingFirstPutAt.set(key, previous);
    this.pending.set(key, value);
    this.pendingPutAt.set(key, write);
    if (this.pendingLandAt.size !== 0 && this.pendingLandAt.delete(key)) this.holdStale();
    this.stats.pendingEntries = this.pending.size;
    this.accepted(1, weight, write);
  }

  /** Drops the pending value of `key` unless it was put after the delete called when `writesOffered` was `asOf`. */
  private dropPendingAsOf(key: string, asOf: number): void {
    const at = this.pendingPutAt.get(key);
    if (at !== undefined && at > asOf) return;
    this.pending.delete(key);
    this.pendingPutAt.delete(key);
    this.pendingFirstPutAt.delete(key);
    if (this.pendingLandAt.size !== 0 && this.pendingLandAt.delete(key)) this.holdStale();
  }

  /** Takes every pending value with its writes' numbers (their refusals are dated by them, see `refuse`). */
  protected takePending(): KvBatch<T> | undefined {
    if (this.pending.size === 0) return undefined;
    const weights = this.queuedDeletes.size > 0 && this.pendingWeights.size > 0 ? new Map(this.pendingWeights) : undefined;
    this.pendingWeights.clear(); // the taken values' weights settle with their flush
    const landAt = this.pendingLandAt.size === 0 ? NO_LANDINGS : this.pendingLandAt;
    const batch: KvBatch<T> = {
      values: this.pending,
      putAt: this.pendingPutAt,
      firstPutAt: this.pendingFirstPutAt,
      takenAt: this.lane.landing(),
      landAt,
    };
    this.pending = new Map();
    this.pendingPutAt = new Map();
    this.pendingFirstPutAt = new Map();
    if (landAt !== NO_LANDINGS) this.pendingLandAt = new Map();
    this.stats.pendingEntries = 0;
    if (this.queuedDeletes.size > 0) this.leaveForDeletes(batch, weights);
    if (batch.values.size === 0) return undefined;
    if (landAt !== NO_LANDINGS) this.stale.add(batch);
    if (landAt !== NO_LANDINGS || this.pendingLandAt.size !== 0) this.holdStale();
    return batch;
  }

  /** Tells the lane whether this tier holds put-back values another tier's landing may make stale. */
  private holdStale(): void {
    this.lane.hold(this, this.pendingLandAt.size !== 0 || this.stale.size !== 0);
  }

  /**
   * Another tier of the backend stored or deleted `key` at landing number `at` (write-lane.ts): a put-back value of
   * the key from an earlier place on the lane is stale, dropped unwritten (its retry would land an older write over
   * a newer one), pending or in a batch waiting on the lane. Its weight settles as a dropped value's does.
   */
  landedOver(key: string, at: number): void {
    const mine = this.pendingLandAt.get(key);
    if (mine !== undefined && mine < at) {
      this.pending.delete(key);
      this.pendingPutAt.delete(key);
      this.pendingFirstPutAt.delete(key);
      this.pendingWeights.delete(key);
      this.pendingLandAt.delete(key);
      this.stats.pendingEntries = this.pending.size;
      this.droppedPending();
    }
    for (const b of this.stale) {
      const held = b.landAt.get(key);
      if (held !== undefined && held < at) b.values.delete(key);
    }
    this.holdStale();
  }

  /** `ops` landed at their batch's places: tells the other tiers holding put-back values (`landedOver`). */
  private reportLanded(ops: readonly BatchOp[], batch: KvBatch<T>): void {
    if (!this.lane.watched(this)) return;
    for (const op of ops) this.lane.landed(this, op.key, batch.landAt.get(op.key) ?? batch.takenAt);
  }

  /**
   * A batch taken while a delete of its key waits on the write lane (core.ts `flushQueued`) is written after that
   * delete: a value put before the delete's call stays pending instead, for the delete to drop once it ran (D152
   * order; if it fails, a later flush writes it), never landing after the delete that was called later.
   */
  private leaveForDeletes(batch: KvBatch<T>, weights: ReadonlyMap<string, number> | undefined): void {
    for (const [key, queued] of this.queuedDeletes) {
      const value = batch.values.get(key);
      if (value === undefined && !batch.values.has(key)) continue;
      const at = batch.putAt.get(key) ?? 0;
      if (!queued.some((q) => at <= q.asOf)) continue;
      batch.values.delete(key);
      this.pending.set(key, value as T);
      // Its place on the lane is this batch's: if the delete fails and it is written later, a landing of the key
      // by another tier meanwhile makes it stale.
      this.pendingLandAt.set(key, batch.landAt.get(key) ?? batch.takenAt);
      const first = batch.firstPutAt.get(key);
      if (batch.putAt.has(key)) this.pendingPutAt.set(key, at);
      if (first !== undefined) this.pendingFirstPutAt.set(key, first);
      // Its weight stays held, not settled with the batch (a value put back after a failed flush has none known).
      const weight = weights?.get(key);
      if (weight === undefined) continue;
      this.pendingWeights.set(key, weight);
      this.leftBytes += weight;
      this.leftEntries++;
    }
    this.stats.pendingEntries = this.pending.size;
  }

  /** Weight and entries of the values the last `takePending` left pending for queued deletes. */
  private leftBytes = 0;
  private leftEntries = 0;

  protected override takeLeft(): { bytes: number; entries: number } {
    const left = { bytes: this.leftBytes, entries: this.leftEntries };
    this.leftBytes = 0;
    this.leftEntries = 0;
    return left;
  }

  /** Put-back values flush alone: another tier's batch waiting in the store's group may make them stale first. */
  protected override joinable(): boolean {
    return this.pendingLandAt.size === 0;
  }

  protected override pendingLeft(): boolean {
    return this.pending.size > 0;
  }

  protected clearPending(): void {
    this.pendingWeights.clear();
    this.pendingPutAt.clear();
    this.pendingFirstPutAt.clear();
    this.pending.clear();
    this.stats.pendingEntries = 0;
    // Batches taken before a rollback write nothing more.
    this.pendingLandAt.clear();
    this.stale.clear();
    this.holdStale();
  }

  protected *writeBatch(batch: KvBatch<T>, epoch: number): Step {
    // Running now: no other tier lands before it (the lane), so what another one made stale is gone from it already.
    if (this.stale.delete(batch)) this.holdStale();
    const taken: TakenNumbers = { putAt: batch.putAt, firstPutAt: batch.firstPutAt, oldest: this.oldestInBatch, batch };
    const { ops, rejected } = encodeAll(batch.values, this.codec);
    for (const [key, err] of rejected) {
      this.refuse(err, taken.firstPutAt.get(key) ?? taken.putAt.get(key) ?? taken.oldest, key);
    }
    try {
      if (ops.length > 0) {
        yield* this.writeOps(ops, () => this.epoch !== epoch);
        if (this.epoch === epoch) {
          if (this.queuedDeletes.size > 0) this.spareCommitted(ops, taken.putAt);
          this.committed(ops);
          this.reportLanded(ops, batch);
        }
      }
    } catch (err) {
      if (this.epoch === epoch) {
        // Batches of this tier taken after this one, waiting on the write lane, fail with it: newest first, each goes
        // back under what is newer, then this one under them (core.ts `laterTaken`).
        const later = this.laterTaken();
        for (let i = later.length - 1; i >= 0; i--) {
          const { batch: b, oldest } = later[i]!;
          this.stale.delete(b); // put back unwritten: its values hold its landings again
          this.restore(b.values, NONE_REJECTED, [], { putAt: b.putAt, firstPutAt: b.firstPutAt, oldest, batch: b });
        }
        this.restore(batch.values, rejected, ops, taken);
      }
      throw err;
    }
  }

  /**
   * Puts a failed batch back under newer pending values (a newer save of the same key wins); refusals stay dropped.
   * Each value goes back as its encoding: a saved value does not change (docs/api.md), so a retry writes these
   * bytes instead of encoding the batch again. Copied, as a flush encodes into pooled bytes.
   */
  private restore(batch: Map<string, T>, rejected: ReadonlyMap<string, Error>, ops: readonly BatchOp[], taken: TakenNumbers): void {
    const encoded = new Map<string, Uint8Array>();
    for (const op of ops) if (op.op === "put") encoded.set(op.key, op.value);
    const merged = new Map<string, T>();
    for (const [k, v] of batch) {
      if (rejected.has(k)) continue;
      const bytes = encoded.get(k);
      merged.set(k, bytes === undefined || v instanceof Encoded ? v : (new Encoded(bytes.slice()) as T));
    }
    for (const k of merged.keys()) this.restoreNumbers(k, taken);
    for (const [k, v] of this.pending) merged.set(k, v);
    this.pending = merged;
    this.stats.pendingEntries = merged.size;
    this.holdStale();
  }

  /**
   * A value put back keeps its put's number (a delete queued behind compares it) and the number of the first put it
   * superseded (its refusal fails the flushes called after that). A newer pending value of the key superseded it
   * unstored: that value's refusal must then fail the flushes this one answers for too.
   */
  private restoreNumbers(key: string, taken: TakenNumbers): void {
    const at = taken.putAt.get(key);
    const first = taken.firstPutAt.get(key) ?? at ?? taken.oldest;
    const newer = this.pendingPutAt.get(key);
    if (this.pending.has(key)) {
      // A newer pending value keeps its own place (none: it lands at its flush's call).
      this.pendingFirstPutAt.set(key, Math.min(first, this.pendingFirstPutAt.get(key) ?? newer ?? first));
      return;
    }
    if (at !== undefined) this.pendingPutAt.set(key, at);
    this.pendingFirstPutAt.set(key, first);
    // Its place on the lane stays its batch's: another tier's later landing of the key makes it stale (`landedOver`).
    this.pendingLandAt.set(key, taken.batch.landAt.get(key) ?? taken.batch.takenAt);
  }

  /** Registers a delete of `keys` called now, until it ran (`dequeueDelete`). */
  private queueDelete(keys: readonly string[]): QueuedDelete {
    const queued: QueuedDelete = { keys, asOf: this.writesOffered, spared: new Set() };
    for (const key of keys) {
      const list = this.queuedDeletes.get(key);
      if (list === undefined) this.queuedDeletes.set(key, [queued]);
      else list.push(queued);
    }
    return queued;
  }

  private dequeueDelete(queued: QueuedDelete): void {
    for (const key of queued.keys) {
      const list = this.queuedDeletes.get(key);
      const i = list === undefined ? -1 : list.indexOf(queued);
      if (i < 0) continue;
      list!.splice(i, 1);
      if (list!.length === 0) this.queuedDeletes.delete(key);
    }
  }

  /** Committed puts of values saved after a queued delete's call: that delete leaves their keys. */
  private spareCommitted(ops: readonly BatchOp[], putAt: ReadonlyMap<string, number>): void {
    for (const op of ops) {
      const list = op.op === "put" ? this.queuedDeletes.get(op.key) : undefined;
      const at = list === undefined ? undefined : putAt.get(op.key);
      if (at === undefined) continue;
      for (const queued of list!) if (at > queued.asOf) queued.spared.add(op.key);
    }
  }

  async load(key: string): Promise<T | undefined> {
    const bytes = await this.loadBytes(key);
    return bytes === undefined ? undefined : decodeWith(this.codec, bytes);
  }

  /**
   * `load` of each key, the keys read together where the backend has `readMany` (one range scan on SQLite). Each
   * settles as its own `load` would: when the joint read fails, every key is read alone, so a failure is its own.
   */
  loadMany(keys: readonly string[]): Promise<T | undefined>[] {
    return this.loadManyBytes(keys).map((p) => p.then((bytes) => (bytes === undefined ? undefined : decodeWith(this.codec, bytes))));
  }

  /** `loadBytes` of each key, read together as `loadMany` reads them. */
  loadManyBytes(keys: readonly string[]): Promise<Uint8Array | undefined>[] {
    const readMany = this.backend.readMany?.bind(this.backend);
    if (readMany === undefined) return keys.map((key) => this.loadBytes(key));
    const joint = (async () => {
      this.assertOpen();
      return await readMany(keys);
    })();
    return keys.map((key, i) =>
      joint.then(
        (values) => {
          const bytes = values[i];
          return bytes === undefined || bytes.byteLength === 0 ? undefined : bytes;
        },
        () => this.loadBytes(key),
      ),
    );
  }

  async loadBytes(key: string): Promise<Uint8Array | undefined> {
    this.assertOpen();
    try {
      return await readValue(this.backend, key);
    } catch (err) {
      throw asStorageError(err, `read of "${key}" in storage tier "${this.name}" failed`, { tier: this.name });
    }
  }

  /**
   * D152 order: the backend delete must succeed before the pending value is dropped. Queued behind in-flight
   * flushes (so an older write cannot land after it); synchronous on an idle sync backend.
   */
  delete(key: string): Promise<void> {
    try {
      this.assertWritable();
      const weight = this.deleteRoom([key]);
      const queued = this.queueDelete([key]);
      const r = this.exclusive((at) =>
        runMaybeAsync(
          function* (this: KvCore<T>): Step {
            try {
              if (this.backend.delete && !queued.spared.has(key)) {
                yield this.backend.delete(key);
                if (this.lane.watched(this)) this.lane.landed(this, key, at);
              }
            } catch (err) {
              throw asStorageError(err, `delete of "${key}" in storage tier "${this.name}" failed`, { tier: this.name });
            } finally {
              this.dequeueDelete(queued);
            }
            this.dropPendingAsOf(key, queued.asOf);
            this.stats.pendingEntries = this.pending.size;
            this.droppedPending();
          }.call(this),
        ),
      );
      if (!r) return Promise.resolve();
      this.queuedWrite(r); // a flush meanwhile may leave values to it (leaveForDeletes)
      return this.holdUntil(weight, r);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * `delete` for many keys: one backend batch when the backend has one (one SQLite transaction, not one commit per
   * key), else one by one in order. D152 order as `delete`: pending values go only once the backend deleted.
   */
  deleteMany(keys: readonly string[]): Promise<void> {
    try {
      this.assertWritable();
      if (keys.length === 0) return Promise.resolve();
      const weight = this.deleteRoom(keys);
      const queued = this.queueDelete(keys);
      const r = this.exclusive((at) =>
        runMaybeAsync(
          function* (this: KvCore<T>): Step {
            const doomed = queued.spared.size === 0 ? keys : keys.filter((key) => !queued.spared.has(key));
            const ops: BatchOp[] = doomed.map((key) => ({ op: "delete", key }));
            try {
              // No ops when every key holds a value saved after the call: nothing to delete.
              if (ops.length > 0 && this.backend.writeBatch && (ops.length > 1 || !this.backend.delete)) {
                yield this.backend.writeBatch(ops);
                if (this.lane.watched(this)) for (const key of doomed) this.lane.landed(this, key, at);
              } else if (this.backend.delete) {
                for (const key of doomed) {
                  yield this.backend.delete(key);
                  if (this.lane.watched(this)) this.lane.landed(this, key, at);
                }
              }
            } catch (err) {
              throw asStorageError(err, `delete of ${ops.length} keys in storage tier "${this.name}" failed`, { tier: this.name });
            } finally {
              this.dequeueDelete(queued);
            }
            for (const key of keys) this.dropPendingAsOf(key, queued.asOf);
            this.stats.pendingEntries = this.pending.size;
            this.droppedPending();
          }.call(this),
        ),
      );
      if (!r) return Promise.resolve();
      this.queuedWrite(r); // a flush meanwhile may leave values to it (leaveForDeletes)
      return this.holdUntil(weight, r);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The stored byte length of each key's value (backend `sizes`): stored values only, as `load`. */
  async sizes(keys: readonly string[]): Promise<Array<number | undefined>> {
    this.assertOpen();
    const sizes = this.backend.sizes?.bind(this.backend);
    if (sizes === undefined) throw new TypeError(`backend "${this.backend.name}" cannot tell values' sizes`);
    return [...(await this.guard("sizes", () => sizes(keys)))];
  }

  async changeCounter(): Promise<number> {
    this.assertOpen();
    const counter = this.backend.changeCounter?.bind(this.backend);
    if (counter === undefined) throw new TypeError(`backend "${this.backend.name}" has no change counter`);
    return await this.guard("change counter", counter);
  }

  async list(prefix?: string): Promise<string[]> {
    this.assertOpen();
    // An empty answer would claim there is nothing stored (a restore would then miss every frame): refuse instead.
    if (!this.backend.list) throw noListSupport(this.name, this.backend.name);
    try {
      return await listSorted(this.backend, prefix);
    } catch (err) {
      throw asStorageError(err, `list in storage tier "${this.name}" failed`, { tier: this.name });
    }
  }

  listByPrefix(prefix: string): AsyncIterable<{ key: string; value: T }> {
    return this.entriesByPrefix(prefix, (b) => decodeWith(this.codec, b));
  }

  /** Lazy: nothing is listed until the first `next()`. */
  async *entriesByPrefix<V>(
    prefix: string,
    decode: (b: Uint8Array) => V,
    after?: string,
  ): AsyncGenerator<{ key: string; value: V }> {
    this.assertOpen();
    if (!this.backend.list) throw noListSupport(this.name, this.backend.name);
    const keys = await this.guard(`list of "${prefix}"`, () => listSorted(this.backend, prefix));
    for (const key of keys) {
      if (after !== undefined && compareKeys(key, after) <= 0) continue;
      const bytes = await this.guard(`read of "${key}"`, () => readValue(this.backend, key));
      if (bytes !== undefined) yield { key, value: decode(bytes) };
    }
  }
}

function noListSupport(tier: string, backend: string): StorageError {
  return new StorageError(
    "backend-no-list-support",
    `storage tier "${tier}" backend "${backend}" does not implement list(), so it cannot say which keys it holds`,
    { tier, backend },
  );
}

export function kvStorage<T>(backend: StorageBackend, opts: KvStorageOptions<T> = {}): KvStorageTier<T> {
  const { core, codec } = inlineCore(backend, "kv", opts, (c: Codec<T>) => new KvCore<T>(backend, c, opts));
  const { filter } = opts;
  return inlineSurface(backend, core, opts, codec.name, {
    save(key: string, value: T): void {
      core.assertWritable();
      if (!kvSaveArgs(key, value, filter)) return;
      core.put(key, value); // checks room once it weighed the write
    },
    saveMany(entries: ReadonlyArray<readonly [string, T]>): void {
      core.assertWritable();
      const kept = kvSaveManyArgs(entries, filter);
      if (kept.length === 1) core.put(kept[0]![0], kept[0]![1]);
      else if (kept.length > 1) core.putMany(kept);
    },
    load: (key) => handled(core.load(key)),
    loadMany: (keys) => {
      assertKeyArray(keys); // each key is checked as load checks it
      return keys.length === 0 ? [] : core.loadMany(keys).map(handled);
    },
    delete: (key) => handled(core.delete(key)),
    deleteMany: (keys) => {
      let checked: string[];
      try {
        checked = kvDeleteManyArgs(keys);
      } catch (err) {
        return handled(Promise.reject(err));
      }
      return handled(core.deleteMany(checked));
    },
    list: (prefix) => handled(core.list(prefix)),
    listByPrefix: (prefix) => handledIterator(core.listByPrefix(prefix)),
    // Only where the backend has one: its absence tells callers to poll by reading.
    ...(backend.changeCounter ? { changeCounter: () => handled(core.changeCounter()) } : {}),
    // Only where the backend can: its absence tells readers to size their reads by the values read last.
    ...(backend.sizes
      ? {
          sizes: (keys: readonly string[]) => {
            assertKeyArray(keys);
            return handled(core.sizes(keys));
          },
        }
      : {}),
  });
}

export type { BatchOp };

/** A delete called and not yet run: `writesOffered` at its call, and the keys it must leave (see `queuedDeletes`). */
interface QueuedDelete {
  readonly keys: readonly string[];
  readonly asOf: number;
  readonly spared: Set<string>;
}

const NONE_REJECTED: ReadonlyMap<string, Error> = new Map();

/** The numbers of one taken batch's writes (see `KvBatch`) and of its oldest, kept until its write ended. */
interface TakenNumbers {
  readonly putAt: ReadonlyMap<string, number>;
  readonly firstPutAt: ReadonlyMap<string, number>;
  readonly oldest: number;
  /** Its batch: the landing numbers its values keep when put back. */
  readonly batch: KvBatch<unknown>;
}

const NO_LANDINGS: ReadonlyMap<string, number> = new Map();
