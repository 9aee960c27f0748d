/**
 * The order in which the tiers of one backend object write to it (docs/design.md §3.30). Over SQLite or memory a
 * write is done when the call returns, so the tiers' writes land in call order by themselves; over an asynchronous
 * backend (PostgreSQL) a tier's write may still be running when another tier writes. Every tier of the backend runs
 * its backend work (a flush's write, a delete, a job's step, a close's drain) through the backend's one lane: at
 * once when nothing runs (synchronous backends never leave anything running: no promise is made for them), else
 * behind what runs, so a write called later never lands first.
 */
import type { StorageBackend } from "../backend/types.js";
import { isPromiseLike } from "./maybe.js";

const noop = (): void => {};

export class WriteLane {
  /** The last work started and not yet settled: anything run now goes behind it. */
  #tail: Promise<void> | undefined;

  /** Whether work of some tier of the backend is running or queued. */
  get busy(): boolean {
    return this.#tail !== undefined;
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
