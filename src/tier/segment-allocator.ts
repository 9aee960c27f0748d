/**
 * Next segment number per bucket of the append-log segments layout, shared by every tier over one store in a thread
 * (append-log.ts `allocatorFor`). It saves a `list` per append and keeps those tiers' numbers apart.
 *
 * Bounded (task 297): it kept one entry per bucket ever appended for as long as the store was used, so a server with a
 * bucket per session grew it for good. Now an entry is kept for sure only while some tier of the thread holds the
 * bucket (`hold`): from before its listing until the segment numbers it reserved are written, or given up with the
 * bucket (a rollback, a merge into an older put-back bucket). Buckets nobody holds stay cached, at most
 * IDLE_SEGMENT_BUCKETS of them, least recently used evicted first; an evicted bucket's next append lists its segments
 * once (what `list` finds is all that can be stored: no tier of the thread holds a number of it unwritten).
 *
 * A tier's holds are counted apart from it (`SegmentHolds`), so a tier collected while holding (dropped without
 * close() after its writes ended for good: a lost lock or lease leaves its buckets put back, with no retry to write
 * them) gives them up when it is collected (task 310). Its entries stayed held for as long as the allocator lived
 * (another handle of the store, a reopen of it, keeps it): outside the bound, one per bucket the tier held.
 */

/**
 * How many buckets no tier holds the allocator remembers (about 100 bytes each). Past it, the least recently used
 * bucket pays one `list` on its next append.
 */
export const IDLE_SEGMENT_BUCKETS = 4096;

interface Entry {
  /** Next free number; 0 = not known yet (the holder lists the bucket's segments and `raise`s it). */
  next: number;
  /** Tiers' buckets holding it (reserved numbers unwritten, or listing for them). */
  holds: number;
}

export class SegmentAllocator {
  private readonly entries = new Map<string, Entry>();
  /** Entries nobody holds, least recently used first (a Map keeps insertion order). */
  private readonly idle = new Set<string>();

  /** Buckets nobody holds kept at most (tests lower it to evict often: `limitIdle`). */
  private idleLimit = IDLE_SEGMENT_BUCKETS;

  /** The bucket's next free number, undefined when it must be listed first. */
  next(key: string): number | undefined {
    const e = this.entries.get(key);
    return e === undefined || e.next === 0 ? undefined : e.next;
  }

  /** Some tier's bucket starts holding `key`: kept until the matching `release`. */
  hold(key: string): void {
    let e = this.entries.get(key);
    if (e === undefined) this.entries.set(key, (e = { next: 0, holds: 0 }));
    e.holds++;
    this.idle.delete(key);
  }

  /** A holder of `key` wrote or gave up what it reserved: the entry is cached only, evictable. */
  release(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined || e.holds === 0) return;
    if (--e.holds > 0) return;
    if (e.next === 0) {
      this.entries.delete(key); // never numbered: nothing to remember
      return;
    }
    this.idle.add(key);
    this.evict();
  }

  /** Numbers below `next` are taken (reserved, or found stored). */
  raise(key: string, next: number): void {
    let e = this.entries.get(key);
    if (e === undefined) {
      this.entries.set(key, (e = { next, holds: 0 }));
      this.idle.add(key);
      this.evict();
      return;
    }
    if (next > e.next) e.next = next;
    if (e.holds === 0) {
      // Most recently used now.
      this.idle.delete(key);
      this.idle.add(key);
    }
  }

  /** The holds of one tier (`holder`), given up by themselves once it is collected. */
  holdsFor(holder: object): SegmentHolds {
    return new SegmentHolds(this, holder);
  }

  /** Buckets remembered (held or cached). */
  get size(): number {
    return this.entries.size;
  }

  /** Buckets some tier holds. */
  get held(): number {
    return this.entries.size - this.idle.size;
  }

  /** Lowers (or raises) the bound; evicts what is over it now. */
  limitIdle(n: number): void {
    this.idleLimit = n;
    this.evict();
  }

  private evict(): void {
    while (this.idle.size > this.idleLimit) {
      const oldest = this.idle.values().next().value as string;
      this.idle.delete(oldest);
      this.entries.delete(oldest);
    }
  }
}

/** What a collected holder still held: released on the allocator, unless the allocator went too (with its entries). */
interface LeftHolds {
  readonly alloc: WeakRef<SegmentAllocator>;
  readonly counts: Map<string, number>;
}

const holdersCollected = new FinalizationRegistry<LeftHolds>(({ alloc, counts }) => {
  const a = alloc.deref();
  if (a !== undefined) for (const [key, n] of counts) for (let i = 0; i < n; i++) a.release(key);
  counts.clear();
});

/**
 * One holder's holds on an allocator's entries, by key. The counts do not reference the holder, so once it is
 * unreachable (nothing of it can write a reserved number any more: a write in flight keeps its tier reachable) the
 * registry releases what it still held; the allocator only weakly, so a collected tier never keeps it alive.
 */
export class SegmentHolds {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly alloc: SegmentAllocator,
    holder: object,
  ) {
    holdersCollected.register(holder, { alloc: new WeakRef(alloc), counts: this.counts });
  }

  hold(key: string): void {
    this.alloc.hold(key);
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  release(key: string): void {
    const n = this.counts.get(key);
    if (n === undefined) return;
    if (n > 1) this.counts.set(key, n - 1);
    else this.counts.delete(key);
    this.alloc.release(key);
  }
}
