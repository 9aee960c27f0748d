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
    if (this.size === 0) return undefined;
    const sorted = Array.from(this.samples.subarray(0, this.size)).sort((a, b) => a - b);
    const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[idx];
  }
}
