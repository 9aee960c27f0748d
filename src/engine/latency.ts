/** Keeps the last N samples; percentiles on demand (stats are read rarely, recorded often). */
export class LatencyWindow {
  private readonly samples: Float64Array;
  private next = 0;
  private size = 0;

  constructor(capacity = 2048) {
    this.samples = new Float64Array(capacity);
  }

  record(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samples.length;
    if (this.size < this.samples.length) this.size++;
  }

  percentile(p: number): number | undefined {
    return this.percentiles([p])[0];
  }

  /**
   * Several percentiles of one copy of the window, each selected, not sorted: a store actor refreshes p50
   * and p99 every 16th flush, and once explicit flushes shared a commit, two sorts of a boxed copy of the window
   * (2,048 samples, a comparator call per comparison) were ~40 % of its CPU (design §3.30). A typed-array sort cost
   * ~110 µs per refresh, selecting ~28 µs.
   */
  percentiles(ps: readonly number[]): Array<number | undefined> {
    if (this.size === 0) return ps.map(() => undefined);
    const a = this.samples.slice(0, this.size);
    const n = a.length;
    let from = 0;
    return ps.map((p) => {
      const k = Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1));
      // Past a selection at `from`, nothing below it is larger than what is above: a higher percentile is above it.
      const v = select(a, k, k >= from ? from : 0, n - 1);
      from = k;
      return v;
    });
  }
}

/** Quickselect (Hoare partition) on a[lo..hi]: returns the k-th smallest, with no larger value before index k. */
function select(a: Float64Array, k: number, lo: number, hi: number): number {
  while (hi > lo) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k]!;
  }
  return a[k]!;
}
