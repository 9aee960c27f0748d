/**
 * Who hears a tier's refusals by key (docs/design.md §3.16). A refusal fails the flushes that answer for it, but
 * the first caller to flush takes the report: when several writers share a tier (two graphs on one WAL tier, an
 * app flushing it too), the one whose write was refused may never see its own flush reject. A watcher of a key
 * prefix hears every refusal under it, whoever flushes, synchronously when the tier learns of it: before any
 * flush that answers for it settles. Inline tiers and engine proxies alike (an actor's refusals cross to the
 * main thread ahead of the flush's answer).
 */

/**
 * Hears a write refused for good: its key, or undefined when the refused writes' keys are unknown (writes a
 * crashed worker lost, refusals past the per-tick bound of an engine store): every watcher of the tier hears those.
 */
export type RefusalListener = (key: string | undefined, error: Error) => void;

interface Watch {
  readonly prefix: string;
  readonly listener: RefusalListener;
}

export class RefusalWatchers {
  private watches: readonly Watch[] = [];

  get size(): number {
    return this.watches.length;
  }

  /** Adds a watcher of keys starting with `prefix`; returns the call that removes it (idempotent). */
  add(prefix: string, listener: RefusalListener): () => void {
    if (typeof prefix !== "string") throw new TypeError(`watchRefusals needs a string prefix, got ${typeof prefix}`);
    if (typeof listener !== "function") throw new TypeError("watchRefusals needs a listener function");
    const watch: Watch = { prefix, listener };
    // Copied on change, so a listener that removes watchers while hearing one leaves the round it is in intact.
    this.watches = [...this.watches, watch];
    return () => {
      this.watches = this.watches.filter((w) => w !== watch);
    };
  }

  notify(key: string | undefined, error: Error): void {
    for (const w of this.watches) {
      if (key !== undefined && !key.startsWith(w.prefix)) continue;
      try {
        w.listener(key, error);
      } catch {
        // A throwing listener must not break the tier's flush (nor keep the others from hearing).
      }
    }
  }
}

/** Errors a flush (or close) rejected with to report a refusal (by identity: the refused write's own error). */
const reports = new WeakSet<Error>();

/** Marks `err` as a refusal's report: its flush wrote what it took, one write of it was refused for good. */
export function markRefusalReport(err: Error): Error {
  reports.add(err);
  return err;
}

/**
 * Whether a flush rejected with `err` to report a refusal (then every other write it answers for was written),
 * rather than because writing failed (then they are pending). False for a hand-written tier's errors.
 */
export function isRefusalReport(err: unknown): boolean {
  return err instanceof Error && reports.has(err);
}
