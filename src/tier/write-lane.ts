/**
 * The order in which the tiers of one backend object write to it (docs/design.md §3.30). Over SQLite or memory a
 * write is done when the call returns, so the tiers' writes land in call order by themselves; over an asynchronous
 * backend (PostgreSQL) a tier's write may still be running when another tier writes. Every tier of the backend runs
 * its backend work (a flush's write, a delete, a job's step, a close's drain) through the backend's one lane: at
 * once when nothing runs (synchronous backends never leave anything running: no promise is made for them), else
 * behind what runs, so a write called later never lands first. A failed batch retried later keeps its place: the
 * lane numbers landings, and a later landing of a key by another tier makes a put-back value of it stale (review
 * s15r2 D2: the retry landed an older value over an acknowledged newer one).
 */
import type { StorageBackend } from "../backend/types.js";
import { isPromiseLike } from "./maybe.js";

const noop = (): void => {};

/**
 * A tier holding values of a failed batch put back for a retry, each with its landing number (`WriteLane.landing`):
 * where that batch stood on the lane. Another tier's write of the key landing later (a higher number) makes such a
 * value stale: written now, it would land over a write the user made after it (docs/design.md §3.30).
 */
export interface StaleHolder {
  /**
   * `key` landed at `at` (committed, or deleted): drops the held value of `key` numbered below `at`, unwritten.
   * `kept`: the stored bytes the landing write read and kept in what it wrote (an array-layout append, which rewrites
   * the array with its entries after it), so a holder whose failed write of the key may have landed after all can
   * tell whether it did (append-log.ts); undefined when the write kept nothing it read, or did not say.
   */
  landedOver(key: string, at: number, kept?: StoredBytes, supersedes?: Supersedes): void;
}

/**
 * Whether what landed under `key` covers a held value of it (`held`: the holder's value, as put): a job's write says
 * so (a compaction's baseline covers a held baseline of a seq up to its own, not one above it: that one holds state
 * no frame holds). Absent: the later landing covers every older held value, as a tier's write does.
 */
export type Supersedes = (key: string, held: unknown) => boolean;

/** What a landing write read under its key: the bytes, or null when nothing was stored there. */
export type StoredBytes = Uint8Array | null;

export class WriteLane {
  /** The last work started and not yet settled: anything run now goes behind it. */
  #tail: Promise<void> | undefined;

  /** Whether work of some tier of the backend is running or queued. */
  get busy(): boolean {
    return this.#tail !== undefined;
  }

  /** Landing numbers handed out: a batch's at its take, a delete's as it joins the lane (their order on it). */
  #landings = 0;
  /** The tiers holding put-back values: few, and empty unless a write failed (then `landed` looks at each). */
  readonly #holders = new Set<StaleHolder>();

  /** The next landing number: what is numbered later lands later, unless it fails and is retried. */
  landing(): number {
    return ++this.#landings;
  }

  /** `holder` holds put-back values (`holds`) or no longer does. */
  hold(holder: StaleHolder, holds: boolean): void {
    if (holds) this.#holders.add(holder);
    else this.#holders.delete(holder);
  }

  /** Whether a tier other than `by` holds put-back values, so `by`'s landings must be told (`landed`). O(1). */
  watched(by: StaleHolder): boolean {
    const n = this.#holders.size;
    return n > 1 || (n === 1 && !this.#holders.has(by));
  }

  /** `by` stored or deleted `key` at landing number `at`: every other holder drops its older value of the key. */
  landed(by: StaleHolder | undefined, key: string, at: number, kept?: StoredBytes, supersedes?: Supersedes): void {
    for (const h of this.#holders) if (h !== by) h.landedOver(key, at, kept, supersedes);
  }

  /**
   * The landing number of the work running on the lane now (`run` with `at`): a job's step in the store's actor
   * (core.ts `exclusive`), an inline compaction's commit (`exclusive` below). Undefined while none runs.
   */
  #current: number | undefined;

  /**
   * Work that is not a tier's batch (a job's step: a compaction's new baseline and its frame deletions) stored or
   * deleted `keys`: every holder drops its older put-back value of each (docs/design.md §3.30), as for another
   * tier's batch. Its place is the running work's landing number, or the lane's end when none runs. O(1) while no
   * tier holds put-back values (a healthy store). `supersedes`: which held values the job's writes cover (absent: all).
   */
  landedNow(keys: Iterable<string>, supersedes?: Supersedes): void {
    if (this.#holders.size === 0) return;
    const at = this.#current ?? this.landing();
    for (const key of keys) this.landed(undefined, key, at, undefined, supersedes);
  }

  /**
   * Runs `task` in its place on the lane (a landing number taken now, reported by `landedNow` while it runs) and
   * answers its result: what writes to the backend without a tier (an inline compaction) keeps call order with the
   * tiers' writes and tells their put-back values.
   */
  exclusive<T>(task: () => Promise<T> | T): Promise<T> {
    let result: T | undefined;
    const r = this.run(async () => {
      result = await task();
    }, this.landing());
    return Promise.resolve(r).then(() => result as T);
  }

  /**
   * Runs `task` after the work queued before it (synchronously when none is). Its failure is the caller's. `at`: its
   * landing number, the lane's current one while it runs (`landedNow`), cleared as it settles (no promise more).
   */
  run(task: () => void | Promise<void>, at?: number): void | Promise<void> {
    const tail = this.#tail;
    if (tail !== undefined) {
      const placed =
        at === undefined
          ? task
          : (): void | Promise<void> => {
              this.#current = at;
              return task();
            };
      const chained = tail.then(noop, noop).then(placed);
      this.#track(chained, at);
      return chained;
    }
    if (at === undefined) {
      const r = task();
      if (isPromiseLike(r)) {
        const p = Promise.resolve(r);
        this.#track(p);
        return p;
      }
      return;
    }
    // Nested synchronous work (a task running another at once) gives the outer number back when it returns.
    const outer = this.#current;
    this.#current = at;
    let r: void | Promise<void>;
    try {
      r = task();
    } catch (err) {
      this.#current = outer;
      throw err;
    }
    if (isPromiseLike(r)) {
      const p = Promise.resolve(r);
      this.#track(p, at);
      return p;
    }
    this.#current = outer;
  }

  #track(p: Promise<void>, at?: number): void {
    this.#tail = p;
    const clear = (): void => {
      if (this.#tail === p) this.#tail = undefined;
      if (at !== undefined && this.#current === at) this.#current = undefined;
    };
    p.then(clear, clear);
  }
}

/** One lane per backend object: every tier over it, inline or in a store's actor, shares it. */
const lanes = new WeakMap<StorageBackend, WriteLane>();

export function writeLaneOf(backend: StorageBackend): WriteLane {
  let lane = lanes.get(backend);
  if (lane === undefined) lanes.set(backend, (lane = new WriteLane()));
  return lane;
}
