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
  /** `key` landed at `at` (committed, or deleted): drops the held value of `key` numbered below `at`, unwritten. */
  landedOver(key: string, at: number): void;
}

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
  landed(by: StaleHolder, key: string, at: number): void {
    for (const h of this.#holders) if (h !== by) h.landedOver(key, at);
  }

  /** Runs `task` after the work queued before it (synchronously when none is). Its failure is the caller's. */
  run(task: () => void | Promise<void>): void | Promise<void> {
    const tail = this.#tail;
    if (tail !== undefined) {
      const chained = tail.then(noop, noop).then(task);
      this.#track(chained);
      return chained;
    }
    const r = task();
    if (isPromiseLike(r)) {
      const p = Promise.resolve(r);
      this.#track(p);
      return p;
    }
  }

  #track(p: Promise<void>): void {
    this.#tail = p;
    const clear = (): void => {
      if (this.#tail === p) this.#tail = undefined;
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
