import type { TierCommonOptions } from "./types.js";

/** docs/design.md §3.3: reject nonsense cadence options at construction, naming the option. */
export function validateCadence(opts: TierCommonOptions): void {
  const { compactEvery, debounceMs } = opts;
  if (compactEvery !== undefined && (!Number.isInteger(compactEvery) || compactEvery < 1)) {
    throw new RangeError(`compactEvery must be an integer >= 1, got ${String(compactEvery)}`);
  }
  if (debounceMs !== undefined && (typeof debounceMs !== "number" || !Number.isFinite(debounceMs) || debounceMs < 0)) {
    throw new RangeError(`debounceMs must be a finite number >= 0, got ${String(debounceMs)}`);
  }
  if (opts.name !== undefined && typeof opts.name !== "string") {
    throw new TypeError(`name must be a string, got ${typeof opts.name}`);
  }
}
