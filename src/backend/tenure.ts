/**
 * A writer handle's hold of its store, and the hold right before it. Layer 1.
 *
 * An engine replaces an actor lost with its worker by a new one that opens the store again. Between the two another
 * writer may have held it (the dead worker's PostgreSQL lease lapsed, or its process-wide store lock was released
 * with the thread) and written over the keys the lost actor's callers still count on (attach's frame seqs). The new
 * handle's `after` names the hold before its own: equal to the lost handle's `id` only when nobody held the store
 * in between (docs/design.md §3.20). A store lock's hold is shared by the handles of its process and may outlive one
 * of them: a new handle whose `id` is the lost handle's joined that same hold, which nobody else can have held in
 * between (`followsHold`).
 */
export interface WriterTenure {
  /**
   * This hold: a PostgreSQL lease's epoch; for a store lock, the holding process and when it took the lock (handles of
   * the process share the hold; the process taking the lock again after another one held it is a new hold).
   */
  readonly id: string;
  /** The hold right before this one, as its `id`; undefined when the store never had one. */
  readonly after: string | undefined;
  /**
   * True when this handle alone writes the store while it holds it (a PostgreSQL lease: one handle, fenced by its
   * epoch). A store lock is shared by the handles of its process (another tier's or an engine's handle, in any thread,
   * writes beside this one): absent. Lets a tier decide from what it reads that only writes it knows of were made
   * (append-log.ts: whether a write whose answer was lost landed).
   */
  readonly sole?: boolean;
}

const tenures = new WeakMap<object, WriterTenure>();

/** Records `backend`'s hold (a writer's open, once it holds the lease or lock). */
export function setWriterTenure(backend: object, tenure: WriterTenure): void {
  tenures.set(backend, tenure);
}

/** `backend`'s hold, undefined for a handle that holds none (read-only, unlocked, memory). */
export function writerTenure(backend: object): WriterTenure | undefined {
  return tenures.get(backend);
}

/**
 * Whether `tenure` continues from the hold `last` with no other hold in between: it follows `last` directly, or it
 * is `last` itself (a store lock's hold joined again by a new handle of its process).
 */
export function followsHold(tenure: WriterTenure, last: string): boolean {
  return tenure.id === last || tenure.after === last;
}
