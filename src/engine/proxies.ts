/**
 * Main-thread tier proxies: the same interfaces as inline tiers. filter/keyOf (and a custom codec) run
 * here; everything else — buffering, debounce, cadence, encoding, checksums, I/O — runs in the actor.
 * `save`/`appendEntries` only queue an op; the ops of one tick travel in one message.
 */
import type { Codec } from "../codec/types.js";
import { ownedBytes } from "../codec/bytes.js";
import { codecFailure, decodeWith } from "../codec/user-codec.js";
import { StorageError } from "../errors.js";
import { collectPage } from "../tier/append-layout.js";
import { decodeStored } from "../tier/append-log.js";
import { readOnlyError } from "../backend/read-only.js";
import { assertKeyArray } from "../backend/keys.js";
import { appendBuckets, appendLoadArgs, appendLogShape, kvDeleteManyArgs, kvSaveArgs, kvSaveManyArgs, snapshotSaveKey } from "../tier/arguments.js";
import { validateTierOptions } from "../tier/options.js";
import { measure, UNKNOWN_SIZE, valueCheckFor, type ValueCheck } from "../tier/value-check.js";
import { entriesWeight, recordWeight } from "../tier/weights.js";
import { cloneSize } from "../tier/clone-size.js";
import { setTierStore, specStoreId } from "../tier/store-identity.js";
import { jsonCodec } from "../codec/json.js";
import { headOf, type SnapshotHead } from "../tier/json-head.js";
import type {
  AppendLoadOptions,
  AppendLoadResult,
  AppendLogMode,
  AppendLogStorageOptions,
  AppendLogStorageTier,
  BaseStorageTier,
  KvStorageOptions,
  KvStorageTier,
  RefusalListener,
  SnapshotStorageOptions,
  SnapshotStorageTier,
  TierCommonOptions,
} from "../tier/types.js";
import { codecSpecOf, type CodecModuleRef } from "./codecs.js";
import type { StoreConnection } from "./connection.js";
import { saveValueFrame, type ValueFrameParts } from "../wal/frame-columns.js";
import { handled as quiet, handledIterator } from "../base/promises.js";
import { isPermanent } from "../tier/core.js";
import { isRefusalReport } from "../tier/refusal-watchers.js";
import type { TierSpec } from "./protocol.js";

/** Engine tiers accept a codec object (runs on the main thread unless it is a built-in) or a module the worker imports. */
export type EngineCodecOption<T> = Codec<T> | CodecModuleRef;

/** Set on the engine instead: onError, onRecovered and maxPendingBytes (a bound per store). */
type EngineLevel = "codec" | "onError" | "onRecovered" | "maxPendingBytes";
export type EngineSnapshotOptions<T> = Omit<SnapshotStorageOptions<T>, EngineLevel> & { codec?: EngineCodecOption<T> };
export type EngineAppendLogOptions<T> = Omit<AppendLogStorageOptions<T>, EngineLevel> & {
  codec?: EngineCodecOption<readonly T[]>;
};
export type EngineKvOptions<T> = Omit<KvStorageOptions<T>, EngineLevel> & { codec?: EngineCodecOption<T> };

const SCAN_PAGE = 2048;

abstract class TierProxy implements BaseStorageTier {
  readonly name: string;
  readonly debounceMs: number | undefined;
  readonly compactEvery: number | undefined;
  readonly codecName: string;
  protected readonly tier: number;
  /** The codec when it runs here (values cross as bytes); undefined when the worker encodes. */
  protected readonly mainCodec: Codec<unknown> | undefined;
  /**
   * The value rule of a built-in worker codec, applied here before structured clone (as inline tiers do at save);
   * for a module codec (no rule here), the walk that weighs its values (clone-size.ts), never refusing one.
   */
  private readonly valueCheck: ValueCheck | undefined;
  private closed = false;
  /** The close in progress: nothing more is taken, and a flush() meanwhile joins it. */
  private closing: Promise<void> | undefined;

  constructor(
    protected readonly conn: StoreConnection,
    kind: TierSpec["kind"],
    opts: TierCommonOptions & { codec?: Codec<never> | CodecModuleRef; mode?: AppendLogMode; layout?: TierSpec["layout"] },
  ) {
    validateTierOptions(opts, kind, "module");
    // Same default as an inline tier: the backend's name ("sqlite:<abs path>", "file:<abs dir>", "memory:<name>").
    this.name = opts.name ?? conn.key;
    this.debounceMs = opts.debounceMs;
    this.compactEvery = opts.compactEvery;
    const codec = codecSpecOf(opts.codec);
    this.mainCodec = codec.kind === "main" ? (opts.codec as Codec<unknown>) : undefined;
    this.codecName =
      codec.kind === "builtin" ? codec.name : codec.kind === "module" ? `${codec.specifier}#${codec.exportName}` : this.mainCodec!.name;
    this.valueCheck =
      codec.kind === "builtin" ? valueCheckFor(opts.codec ?? jsonCodec) : codec.kind === "module" ? cloneSize : undefined;
    this.tier = conn.newTierId();
    const spec: TierSpec = {
      kind,
      name: this.name,
      debounceMs: opts.debounceMs,
      compactEvery: opts.compactEvery,
      codec,
      ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
      ...(opts.layout !== undefined ? { layout: opts.layout } : {}),
      ...(opts.retry !== undefined ? { retry: { ...opts.retry } } : {}),
    };
    // The connection reopens the tier in a new actor when the store's actor is lost or failed to open (a full
    // disk freed later): a failed open never poisons the tier, the next operation tries again.
    conn.openTier(this.tier, spec);
    const store = conn.store as { readonly kind: string; readonly readOnly?: boolean; readonly path?: string; readonly dir?: string };
    // Which store it writes: a file's real path (inline tiers of it are the same store), else this connection.
    setTierStore(this, () => ({
      id: specStoreId(store) ?? (store.kind === "postgres" ? conn.key.replace(/\?ro$/, "") : conn),
      engineKey: conn.key,
    }));
    if (store.readOnly === true && (store.kind === "sqlite" || store.kind === "postgres")) {
      this.readConsistent = (fn) => this.consistent(fn);
    }
    // A file store's batches show one key at a time (BaseStorageTier.settleBatches): the actor owns the backend.
    if (store.readOnly === true && store.kind === "file") {
      this.settleBatches = () => this.askQuiet({ t: "settle", tier: this.tier }).then(() => undefined);
    }
  }

  private async consistent<R>(fn: () => Promise<R>): Promise<R> {
    if (typeof fn !== "function") throw new TypeError("readConsistent needs a function");
    const token = (await this.askQuiet({ t: "consistent", tier: this.tier })).value as string;
    let result: R;
    try {
      result = await fn();
    } catch (err) {
      await this.endConsistent(token);
      throw err;
    }
    const held = await this.endConsistent(token);
    // Closed inside fn: the point in time ended with the close, and fn may have read on through other tiers.
    if (held === "closed") throw new StorageError("closed", `storage tier "${this.name}" closed inside readConsistent, which ended its point in time`, { tier: this.name });
    // A store's worker lost meanwhile took the point in time with it: fn's later reads were each at their own time.
    if (!held) {
      throw new StorageError("worker-crashed", `storage tier "${this.name}": the store's worker was lost inside readConsistent, so its reads were not at one point in time`, { tier: this.name });
    }
    return result;
  }

  /**
   * Ends the point in time `token` holds: false when the store's worker no longer held it (lost meanwhile). A tier
   * closed (or closing, with its engine too) meanwhile cannot send the end: its close ends it in the actor.
   */
  private endConsistent(token: string): Promise<boolean | "closed"> {
    if (this.closed || this.closing || this.conn.closing) return Promise.resolve("closed");
    return this.askQuiet({ t: "consistent", tier: this.tier, token }).then(
      (r) => r.value === true,
      () => false,
    );
  }

  /**
   * A read-only SQLite or PostgreSQL store's point in time (BaseStorageTier.readConsistent): the store's actor holds
   * it from before `fn` runs until `fn` settled, for the reads of every tier of the store (consistent-reads.ts).
   */
  readConsistent?<R>(fn: () => Promise<R>): Promise<R>;

  /** A read-only file store's BaseStorageTier.settleBatches, run by the store's actor. */
  settleBatches?(): Promise<void>;

  /**
   * Once this tier's or its engine's close() began, every call throws closed (never accepted, then dropped). The
   * engine's close says so in details.reason "engine-closed" (a living tier's store closes only with its engine):
   * attach's pair words such a stop as no refusal (persistence/engine-gone.ts, review r314 F4).
   */
  protected assertUsable(): void {
    if (this.closed || this.closing || this.conn.closing) {
      const state = this.closed ? "closed" : "closing";
      const byEngine = !this.closed && this.closing === undefined ? { reason: "engine-closed" } : {};
      throw new StorageError("closed", `storage tier "${this.name}" is ${state}`, { tier: this.name, ...byEngine });
    }
  }

  /** A read-only store's tiers refuse writes when offered, as inline read-only tiers do (never buffered). */
  protected assertWritable(): void {
    this.assertUsable();
    if ((this.conn.store as { readonly readOnly?: boolean }).readOnly === true) throw readOnlyError(this.conn.key);
    const ended = this.conn.backlog.ended;
    if (ended !== undefined) throw ended; // the actor's backend writes no more (a lost lease)
  }

  /** `ask` for a write op: on a read-only store it rejects with read-only, sending nothing. */
  protected async askWrite(op: Parameters<StoreConnection["request"]>[0]): Promise<{ value?: unknown; bytes?: Uint8Array | Uint8Array[] }> {
    this.assertWritable();
    return this.ask(op);
  }

  protected async ask(op: Parameters<StoreConnection["request"]>[0]): Promise<{ value?: unknown; bytes?: Uint8Array | Uint8Array[] }> {
    this.assertUsable();
    return this.conn.request(op);
  }

  /** `ask` whose synchronous failures (closed, failed open) become rejections. */
  protected askQuiet(op: Parameters<StoreConnection["request"]>[0]): Promise<{ value?: unknown; bytes?: Uint8Array | Uint8Array[] }> {
    try {
      return quiet(this.ask(op));
    } catch (err) {
      return quiet(Promise.reject(err));
    }
  }

  flush(): Promise<void> {
    // Everything accepted before this call is in the close's drain (this tier's or the engine's): join it, also once
    // it ended (nothing is taken after it began): its outcome for this tier, or why it stored nothing (task 299).
    if (this.closing) return this.closing;
    if (!this.closed && this.conn.closing) return quiet(this.conn.flushedByDrain(this.tier, this.name));
    try {
      this.assertUsable();
    } catch (err) {
      return quiet(Promise.reject(err));
    }
    // Handled already, and shared by calls that made no write since (connection.ts `flush`): wrapping it again
    // would cost each such call a promise.
    return this.conn.flush(this.tier);
  }

  /** BaseStorageTier.writePending: a flush in the store's actor that leaves refusals to the flushes answering for them. */
  writePending(): Promise<void> {
    const keepRefusals = (err: unknown): void => {
      if (!isPermanent(err) && !isRefusalReport(err)) throw err;
    };
    if (this.closing) return quiet(this.closing.catch(keepRefusals));
    if (!this.closed && this.conn.closing) return quiet(this.conn.flushedByDrain(this.tier, this.name).catch(keepRefusals));
    return quiet(this.ask({ t: "flush", tier: this.tier, pending: true }).then(() => undefined));
  }

  /** Backpressure: resolves once a write weighing `weight` (default: the one the store refused last) would be taken (backlog.ts; during close, connection.ts drainedRoom). */
  drained(weight?: number): Promise<void> {
    return quiet(this.conn.drainedRoom(this.tier, weight));
  }

  /** Refuses a write weighing `weight` (replacing a posted one weighing `freed`) that does not fit the store's bound. */
  protected assertRoom(weight: number, freed = 0): void {
    this.conn.backlog.assertRoom(this.name, weight, freed);
  }

  /**
   * A value's bytes for its weight (weights.ts): `size`, its value check's estimate (docs/design.md §3.19), else the
   * store's average write.
   */
  protected sizeOr(size: number): number {
    return size >= 0 ? size : this.conn.backlog.entryEstimate;
  }

  rollback(): void {
    this.assertUsable();
    this.conn.post({ t: "rollback", tier: this.tier });
  }

  compact(): Promise<void> {
    return quiet(this.askWrite({ t: "compact", tier: this.tier }).then(() => undefined));
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.closing) return this.closing;
    // The engine's close closes it too: joined while it drains, and its outcome once it ended (close is idempotent).
    if (this.conn.closing) return quiet(this.conn.drainedFor(this.tier));
    const done = quiet(
      this.ask({ t: "close", tier: this.tier }).then(
        () => {
          this.closed = true;
          this.closing = undefined;
        },
        (err: unknown) => {
          // A close that reports a refusal still closed the tier; a failed write left it open for a retry.
          if (!this.conn.hasTier(this.tier)) this.closed = true;
          this.closing = undefined;
          throw err;
        },
      ),
    );
    this.closing = done;
    return done;
  }

  /**
   * The refusal when the value cannot be stored (the caller reports it with `refuseValue`, as an inline tier refuses
   * it: the tier's next flush rejects, onError hears it once, nothing crosses), else its estimated size. Values for a built-in worker codec are checked by its
   * value rule (a validation walk, no encoding: structured clone would strip a nested prototype, refuse a Proxy
   * or a function, or throw from a getter, each differently from the codec).
   */
  protected measured(value: unknown): number | Error {
    return measure(this.valueCheck, value);
  }

  /**
   * Reports a value that can never be stored, its write weighing `w` (after it found room: a full store answers
   * backpressure first). The weight includes `refusalWeight`: the refusal holds its error until the actor took it.
   */
  protected refuseValue(err: Error, w: number, key: string | undefined): void {
    this.conn.refuse(this.tier, err, w, key);
  }

  /** BaseStorageTier.watchRefusals: the store's actor sends its refusals' keys ahead of any flush's answer. */
  watchRefusals(prefix: string, listener: RefusalListener): () => void {
    // A closed tier refuses nothing more: the watch hears nothing (as inline), and the caller's writes say closed.
    return this.conn.watchRefusals(this.tier, prefix, listener);
  }

  /**
   * A main-thread codec's bytes, owning their ArrayBuffer so posting transfers them instead of cloning a shared
   * pool slab; the codec's error when it refuses the value (refused with `refuseValue`, never thrown from save).
   */
  protected encodeHere(value: unknown): Uint8Array | Error {
    try {
      return ownedBytes(this.mainCodec!.encode(value));
    } catch (err) {
      return codecFailure(err, "encode", this.mainCodec!.name); // whatever it threw, refused as CodecError
    }
  }

  /** True when `other` is an engine tier of the same store (one actor owns both). */
  protected sameStore(other: BaseStorageTier): boolean {
    return other instanceof TierProxy && other.conn === this.conn;
  }

  protected decodeHere(bytes: Uint8Array | Uint8Array[] | undefined): unknown {
    return bytes === undefined ? undefined : decodeWith(this.mainCodec!, bytes as Uint8Array);
  }
}

class SnapshotProxy<T> extends TierProxy implements SnapshotStorageTier<T> {
  constructor(
    conn: StoreConnection,
    private readonly opts: EngineSnapshotOptions<T>,
  ) {
    super(conn, "snapshot", opts as TierCommonOptions & { codec?: Codec<never> });
  }

  save(snapshot: T): void {
    this.assertWritable();
    const key = snapshotSaveKey(snapshot, this.opts, this.name);
    if (key === undefined) return;
    if (this.mainCodec) {
      const bytes = this.encodeHere(snapshot);
      const w = bytes instanceof Error ? recordWeight(key, 0) + refusalWeight(bytes) : recordWeight(key, bytes.byteLength);
      this.assertRoom(w);
      if (bytes instanceof Error) return this.refuseValue(bytes, w, key);
      this.conn.post({ t: "put", tier: this.tier, key, bytes, w, n: 1 }, bytes);
      return;
    }
    const size = this.measured(snapshot);
    const weight = size instanceof Error ? recordWeight(key, 0) + refusalWeight(size) : recordWeight(key, this.sizeOr(size));
    // compactEvery counts saves in the actor: then every save crosses. Else a save replacing this turn's record
    // needs room only for the difference.
    const replaces = this.compactEvery === undefined ? this.conn.replaceableWeight(this.tier, key) : undefined;
    this.assertRoom(weight, replaces ?? 0);
    if (size instanceof Error) return this.refuseValue(size, weight, key);
    if (replaces !== undefined && this.conn.replaceLastPut(this.tier, key, snapshot, weight)) return;
    this.conn.postPut(this.tier, key, snapshot, weight);
  }

  discard(key: string): void {
    if (typeof key !== "string") throw new TypeError("discard needs a key (a string)");
    this.assertUsable();
    // In call order with the tier's puts, and a barrier of the actor's group commit: a save of the key the actor still
    // holds in a debounce window is dropped, but on a sync-through tier the barrier first commits the save posted
    // just before (written, not discarded: review r264 F1). Attach's discard of an ended handle's baseline is not
    // affected: that handle's save was posted long before and its write already failed, kept for a retry.
    this.conn.post({ t: "discard", tier: this.tier, key });
  }

  load(key?: string): Promise<T | undefined> {
    return quiet(
      this.askQuiet({ t: "load", tier: this.tier, ...(key !== undefined ? { key } : {}) }).then(
        (r) => (this.mainCodec ? this.decodeHere(r.bytes) : r.value) as T | undefined,
      ),
    );
  }

  loadHead(key?: string): Promise<SnapshotHead | undefined> {
    // A main-thread codec decodes here, as load does: the worker holds only its bytes.
    if (this.mainCodec) return this.load(key).then((r) => (r === undefined ? undefined : headOf(r)));
    const op = { t: "load", tier: this.tier, head: true, ...(key !== undefined ? { key } : {}) } as const;
    return quiet(this.askQuiet(op).then((r) => r.value as SnapshotHead | undefined));
  }
}

class KvProxy<T> extends TierProxy implements KvStorageTier<T> {
  /** Where the store's backend has one (SQLite, PostgreSQL), as inline kv tiers: its absence tells pollers to read. */
  readonly changeCounter?: () => Promise<number>;

  constructor(
    conn: StoreConnection,
    private readonly opts: EngineKvOptions<T>,
  ) {
    super(conn, "kv", opts as TierCommonOptions & { codec?: Codec<never> });
    if (conn.store.kind === "sqlite" || conn.store.kind === "postgres") {
      this.changeCounter = () => quiet(this.askQuiet({ t: "changes", tier: this.tier }).then((r) => r.value as number));
    }
  }

  save(key: string, value: T): void {
    this.assertWritable();
    if (!kvSaveArgs(key, value, this.opts.filter)) return;
    if (this.mainCodec) {
      const bytes = this.encodeHere(value);
      const w = bytes instanceof Error ? recordWeight(key, 0) + refusalWeight(bytes) : recordWeight(key, bytes.byteLength);
      this.assertRoom(w);
      if (bytes instanceof Error) return this.refuseValue(bytes, w, key);
      this.conn.post({ t: "put", tier: this.tier, key, bytes, w, n: 1 }, bytes);
      return;
    }
    const size = this.measured(value);
    const weight = size instanceof Error ? recordWeight(key, 0) + refusalWeight(size) : recordWeight(key, this.sizeOr(size));
    this.assertRoom(weight);
    if (size instanceof Error) return this.refuseValue(size, weight, key);
    this.conn.postPut(this.tier, key, value, weight);
  }

  /**
   * frame-columns.ts `saveValueFrame`: `save(key, frame)` of the value frame `parts` describe, for a tier of
   * walFrameCodec with no filter (design §3.48). Its caller built the frame's parts from checked data, as it vouches
   * for the frames it saves (tier/value-check.ts vouchWalFrame): the same key check, weight and room as that save.
   */
  [saveValueFrame](key: string, parts: ValueFrameParts): boolean {
    this.assertWritable();
    if (this.mainCodec || this.opts.filter !== undefined || !this.conn.takesValueFrames(this.tier)) return false;
    kvSaveArgs(key, parts, undefined);
    const weight = recordWeight(key, this.sizeOr(UNKNOWN_SIZE));
    this.assertRoom(weight);
    this.conn.postValueFrame(this.tier, key, parts, weight);
    return true;
  }

  /**
   * KvStorageTier.saveMany: every entry weighed  /**
   * KvStorageTier.saveMany: every entry weighed (encoded, for a main-thread codec) before room is found once for
   * all; then posted as `save` posts them, in one message. Ops of the unit that do not share one op (one per value
   * of a main-thread codec, a value the columns cannot take, a refusal) are marked so the actor commits none of
   * them apart (connection.ts endUnit): the store commits the unit in one transaction.
   */
  saveMany(entries: ReadonlyArray<readonly [key: string, value: T]>): void {
    this.assertWritable();
    const kept = kvSaveManyArgs(entries, this.opts.filter);
    const n = kept.length;
    if (n === 0) return;
    const weighed = new Array<Uint8Array | Error | number>(n);
    const weights = new Array<number>(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const [key, value] = kept[i]!;
      const w = this.mainCodec ? this.encodeHere(value) : this.measured(value);
      weighed[i] = w;
      total += weights[i] =
        w instanceof Error
          ? recordWeight(key, 0) + refusalWeight(w)
          : recordWeight(key, w instanceof Uint8Array ? w.byteLength : this.sizeOr(w));
    }
    this.assertRoom(total);
    const start = this.conn.unitStart();
    try {
      for (let i = 0; i < n; i++) {
        const [key, value] = kept[i]!;
        const w = weighed[i]!;
        if (w instanceof Error) this.refuseValue(w, weights[i]!, key);
        else if (w instanceof Uint8Array) this.conn.post({ t: "put", tier: this.tier, key, bytes: w, w: weights[i]!, n: 1 }, w);
        else this.conn.postPut(this.tier, key, value, weights[i]!);
      }
    } finally {
      // Ends the unit's depth too (connection.ts): a throw must not leave the connection counting a unit under way.
      this.conn.endUnit(start);
    }
  }

  load(key: string): Promise<T | undefined> {
    return quiet(
      this.askQuiet({ t: "load", tier: this.tier, key }).then(
        (r) => (this.mainCodec ? this.decodeHere(r.bytes) : r.value) as T | undefined,
      ),
    );
  }

  /** The loads of one tick go to the actor as one message, which reads a run of them with one readMany. */
  loadMany(keys: readonly string[]): Array<Promise<T | undefined>> {
    assertKeyArray(keys);
    return keys.map((key) => this.load(key));
  }

  /** Every store kind's backend tells values' sizes (StorageBackend.sizes): one message, answered with numbers. */
  sizes(keys: readonly string[]): Promise<Array<number | undefined>> {
    assertKeyArray(keys); // thrown, as loadMany throws it
    return quiet(this.askQuiet({ t: "sizes", tier: this.tier, keys: [...keys] }).then((r) => r.value as Array<number | undefined>));
  }

  delete(key: string): Promise<void> {
    return this.weighedDelete([key], () => this.askWrite({ t: "delete", tier: this.tier, key }));
  }

  /** A delete counts against the store's bound (a record with no value per key) until the actor answered it. */
  private weighedDelete(keys: readonly string[], send: () => Promise<unknown>): Promise<void> {
    let weight = 0;
    for (const key of keys) weight += recordWeight(key, 0);
    try {
      this.assertWritable(); // closed or read-only is said before backpressure
      this.assertRoom(weight);
    } catch (err) {
      return quiet(Promise.reject(err));
    }
    return quiet(this.conn.backlog.holdUntil(weight, send()).then(() => undefined));
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    let checked: string[];
    try {
      checked = kvDeleteManyArgs(keys);
    } catch (err) {
      return quiet(Promise.reject(err));
    }
    if (checked.length === 0) {
      try {
        this.assertWritable(); // refused as inline: closed, read-only
      } catch (err) {
        return quiet(Promise.reject(err));
      }
      return Promise.resolve();
    }
    return this.weighedDelete(checked, () => this.askWrite({ t: "deleteMany", tier: this.tier, keys: checked }));
  }

  list(prefix?: string): Promise<string[]> {
    return quiet(
      this.askQuiet({ t: "list", tier: this.tier, ...(prefix !== undefined ? { prefix } : {}) }).then(
        (r) => r.value as string[],
      ),
    );
  }

  /** Sends `config` to the store actor's commit watcher `watcher`, unread; false when `sameStoreAs` is elsewhere. */
  configureCommitWatcher(watcher: string, key: string, config: unknown, sameStoreAs?: BaseStorageTier): boolean {
    if (sameStoreAs !== undefined && !this.sameStore(sameStoreAs)) return false;
    this.assertUsable();
    // Checked here, not when the tick's message fails: a config is no write, and one that cannot cross must not
    // refuse the tier's writes, nor be recorded for replay into a restarted actor.
    let copy: unknown;
    try {
      // The copy is what is sent and replayed: a caller changing its object later changes nothing.
      copy = structuredClone(config);
    } catch (err) {
      throw new StorageError(
        "invalid-argument",
        `the config for commit watcher "${watcher}" cannot be sent to the store's worker: ${err instanceof Error ? err.message : String(err)}`,
        { tier: this.name },
        err,
      );
    }
    this.conn.post({ t: "configure-watcher", tier: this.tier, watcher, key, config: copy });
    return true;
  }

  /** Lazy: the first page is requested on the first `next()`; pages continue after the last key seen. */
  listByPrefix(prefix: string): AsyncGenerator<{ key: string; value: T }> {
    // A page nobody awaits must not crash the host (base/promises.ts): its failure goes to onError.
    return handledIterator(this.scan(prefix), (err) => this.conn.report(err, this.name));
  }

  private async *scan(prefix: string): AsyncGenerator<{ key: string; value: T }> {
    let after: string | undefined;
    for (;;) {
      const r = await this.ask({ t: "scan", tier: this.tier, prefix, limit: SCAN_PAGE, ...(after !== undefined ? { after } : {}) });
      const page = r.value as { entries: Array<{ key: string; value?: unknown; bytes?: Uint8Array }>; next?: string };
      for (const e of page.entries) {
        yield { key: e.key, value: (this.mainCodec ? this.decodeHere(e.bytes) : e.value) as T };
      }
      if (page.next === undefined) return;
      after = page.next;
    }
  }
}
// The lane stands in for this save alone (frame-columns.ts ValueFrameLane): a wrapper's own save is never skipped.
Object.defineProperty(KvProxy.prototype[saveValueFrame], "standsInFor", { value: KvProxy.prototype.save });

class AppendLogProxy<T> extends TierProxy implements AppendLogStorageTier<T> {
  readonly mode: AppendLogMode;

  constructor(
    conn: StoreConnection,
    private readonly opts: EngineAppendLogOptions<T>,
  ) {
    const { mode } = appendLogShape(opts);
    super(conn, "append-log", opts as TierCommonOptions & { codec?: Codec<never> });
    this.mode = mode;
  }

  appendEntries(entries: readonly T[]): void {
    this.assertWritable();
    const groups = appendBuckets(entries, this.opts.keyOf);
    if (entries.length === 0) return;
    const parts: Array<[string, readonly T[]]> = groups ? [...groups] : [[this.name, entries]];
    const n = entries.length;
    if (this.mainCodec) return this.sendEncoded(parts, n);
    // Values too, as inline: one refused entry refuses the call (its path indexes `entries`), once it found room.
    const size = this.measured(entries);
    const entrySize = typeof size === "number" && size >= 0 ? size / n : UNKNOWN_SIZE;
    const w = size instanceof Error ? entriesWeight(parts.length, n, 0) + refusalWeight(size) : entriesWeight(parts.length, n, this.sizeOr(entrySize));
    this.assertRoom(w);
    // One bucket's key names the refusal; refused entries of several buckets reach every watcher.
    if (size instanceof Error) return this.refuseValue(size, w, parts.length === 1 ? parts[0]![0] : undefined);
    if (parts.length === 1) {
      const [bucket, group] = parts[0]!;
      this.conn.post({ t: "append", tier: this.tier, bucket, entries: group as unknown[], count: n, w, n });
      return;
    }
    // Several buckets of one call travel as one op the actor applies all or nothing, as inline appendGroups.
    const buckets = parts.map(([bucket]) => bucket);
    const counts = parts.map(([, g]) => g.length);
    this.conn.post({ t: "append", tier: this.tier, buckets, counts, entries: parts.map(([, g]) => g as unknown[]), w, n });
  }

  /** Each bucket's entries encoded here, weighed by their bytes; one refused group refuses the whole call. */
  private sendEncoded(parts: ReadonlyArray<[string, readonly T[]]>, n: number): void {
    const encoded: Uint8Array[] = [];
    let refused: Error | undefined;
    for (const [, group] of parts) {
      const bytes = this.encodeHere(group);
      if (bytes instanceof Error) {
        refused = bytes;
        break;
      }
      encoded.push(bytes);
    }
    const total = encoded.reduce((sum, b) => sum + b.byteLength, 0);
    const w = entriesWeight(parts.length, n, 0) + (refused ? refusalWeight(refused) : total);
    this.assertRoom(w);
    if (refused) return this.refuseValue(refused, w, parts.length === 1 ? parts[0]![0] : undefined);
    if (parts.length === 1) {
      const bytes = encoded[0]!;
      this.conn.post({ t: "append", tier: this.tier, bucket: parts[0]![0], bytes, count: n, w, n }, bytes);
      return;
    }
    const bytes = new Uint8Array(total);
    const ends: number[] = [];
    let end = 0;
    for (const b of encoded) {
      bytes.set(b, end);
      ends.push((end += b.byteLength));
    }
    const buckets = parts.map(([bucket]) => bucket);
    const counts = parts.map(([, g]) => g.length);
    this.conn.post({ t: "append", tier: this.tier, buckets, counts, bytes, ends, w, n }, bytes);
  }

  loadEntries(opts?: AppendLoadOptions): Promise<AppendLoadResult<T>> {
    try {
      appendLoadArgs(opts); // here, as inline: the actor's refusal would cross back as another error
    } catch (err) {
      return quiet(Promise.reject(err));
    }
    const asked = this.askQuiet({ t: "loadEntries", tier: this.tier, ...(opts !== undefined ? { opts } : {}) });
    return quiet(
      asked.then((r) => {
        if (!this.mainCodec) return r.value as AppendLoadResult<T>;
        const codec = this.mainCodec as Codec<readonly unknown[]>; // an append log's codec encodes arrays of entries
        const segments = (r.bytes as Uint8Array[] | undefined) ?? [];
        const keys = (r.value as string[] | undefined) ?? [];
        return collectPage<T>(decodeAll(segments, keys, (b, key) => decodeStored(codec, b, key)), opts);
      }),
    );
  }
}

async function* decodeAll(segments: Uint8Array[], keys: string[], decode: (b: Uint8Array, key: string) => unknown): AsyncGenerator<unknown> {
  for (let i = 0; i < segments.length; i++) yield decode(segments[i]!, keys[i]!);
}

export function snapshotProxy<T>(conn: StoreConnection, opts: EngineSnapshotOptions<T>): SnapshotStorageTier<T> {
  return new SnapshotProxy<T>(conn, opts);
}
export function kvProxy<T>(conn: StoreConnection, opts: EngineKvOptions<T>): KvStorageTier<T> {
  return new KvProxy<T>(conn, opts);
}
export function appendLogProxy<T>(conn: StoreConnection, opts: EngineAppendLogOptions<T>): AppendLogStorageTier<T> {
  return new AppendLogProxy<T>(conn, opts);
}

/** Bytes a refusal's error holds while it crosses to the actor: its message and stack, as UTF-16, and a little more. */
function refusalWeight(err: Error): number {
  return 64 + 2 * (err.message.length + (err.stack?.length ?? 0));
}
