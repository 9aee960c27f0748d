/**
 * One conformance suite for the three tiers, run over every backend, inline and worker-proxied
 * (like abstract-level's `suite({ test, factory })`): one module per capability in this folder, optional
 * ones registered only where the harness's manifest says it has what they need; nothing is skipped.
 * Behaviour comes from docs/protocol.md §4 (+ §10.6 vectors) and docs/design.md §3.3–§3.6, §3.11, §3.17.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { HarnessMode, InlineParts, TierHarness, WriteFaults } from "../../support/tier-harness.js";
import { appendLogCases } from "./append-log.js";
import { badInputCases } from "./bad-input.js";
import { compactEveryCases } from "./compact-every.js";
import type { SuiteContext, SuiteSupports } from "./context.js";
import { debounceCases } from "./debounce.js";
import { inlineAsyncCases } from "./inline-async.js";
import { inlineBackendCases } from "./inline-backend.js";
import { kvCases } from "./kv.js";
import { optionsCases } from "./options.js";
import { rollbackCases } from "./rollback.js";
import { severalHandlesCases } from "./several-handles.js";
import { snapshotCases } from "./snapshot.js";
import { writeFailureCases } from "./write-failures.js";

export type { SuiteSupports } from "./context.js";

export interface TierSuiteOptions {
  name: string;
  mode: HarnessMode;
  /** A harness over a fresh, empty store. */
  open: () => Promise<TierHarness>;
  /** Harnesses expose `faults` (registers the injected-failure cases). */
  faults: boolean;
  /** The backend answers asynchronously (PostgreSQL): the cases about a sync backend's writes are not registered. */
  asyncBackend?: boolean;
  /**
   * Harnesses have a `location` and `share()` (file and SQLite stores): registers the cases of several handles on one
   * store, in this process and in others (issue 14).
   */
  sharedStores?: boolean;
  cleanup?: () => Promise<void>;
}

export function tierSuite(opts: TierSuiteOptions): void {
  const supports: SuiteSupports = {
    writeFaults: opts.faults,
    inlineParts: opts.mode === "inline",
    syncBackend: !opts.asyncBackend,
    sharedStores: opts.sharedStores ?? false,
  };
  describe(`tier conformance: ${opts.name}`, () => {
    const live: TierHarness[] = [];
    const ctx: SuiteContext = {
      supports,
      live,
      async open() {
        const h = await opts.open();
        live.push(h);
        return h;
      },
      async reopen(h) {
        const h2 = await h.reopen();
        live.push(h2);
        return h2;
      },
      faultsOf(h): WriteFaults {
        if (!h.faults) throw new Error("suite bug: a failure case ran on a harness without faults");
        return h.faults;
      },
      inlineOf(h): InlineParts {
        if (!h.inline) throw new Error("suite bug: an inline-only case ran on a worker harness");
        return h.inline;
      },
    };
    afterEach(async () => {
      const errors: unknown[] = [];
      for (const h of live.splice(0).reverse()) await h.close().catch((err: unknown) => errors.push(err));
      if (errors.length > 0) throw errors[0];
    });
    afterAll(async () => {
      await opts.cleanup?.();
    });

    it("harness manifest: memory is the only non-persistent store, every shipped backend can list", async () => {
      const h = await ctx.open();
      // reopen() goes through a new backend/engine exactly when the store is persistent.
      expect(h.supports.persistent).toBe(h.kind !== "memory");
      expect(h.supports.list).toBe(true);
      expect(h.mode).toBe(opts.mode);
    });

    optionsCases(ctx);
    compactEveryCases(ctx);
    debounceCases(ctx);
    snapshotCases(ctx);
    appendLogCases(ctx);
    kvCases(ctx);
    rollbackCases(ctx);
    badInputCases(ctx);
    if (supports.writeFaults) writeFailureCases(ctx);
    if (supports.inlineParts) {
      inlineBackendCases(ctx);
      inlineAsyncCases(ctx);
    }
    if (supports.sharedStores) severalHandlesCases(ctx);
  });
}
