/** What the index hands every case module: harness openers that the index tears down, and the manifest. */
import type { InlineParts, TierHarness, WriteFaults } from "../../support/tier-harness.js";

/**
 * What a harness can do beyond the common surface; optional cases register only where it is true
 * (nothing is skipped), like abstract-level's `db.supports` gates.
 */
export interface SuiteSupports {
  /** Harnesses expose `faults`: the injected write-failure cases. */
  readonly writeFaults: boolean;
  /** Harnesses expose `inline` (the backend and a probe behind the tiers): cases that look beneath the tier. */
  readonly inlineParts: boolean;
  /** The backend answers synchronously (every shipped one but PostgreSQL): cases about a sync backend's writes. */
  readonly syncBackend: boolean;
  /** Harnesses have a `location` and `share()` (file and SQLite stores): several handles on one store. */
  readonly sharedStores: boolean;
}

export interface SuiteContext {
  readonly supports: SuiteSupports;
  /** Harnesses opened in the current case; closed after it. */
  readonly live: TierHarness[];
  /** A harness over a fresh, empty store. */
  open(): Promise<TierHarness>;
  /** The same store as a fresh process would open it. */
  reopen(h: TierHarness): Promise<TierHarness>;
  faultsOf(h: TierHarness): WriteFaults;
  inlineOf(h: TierHarness): InlineParts;
}
