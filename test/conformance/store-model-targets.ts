/** Targets of the store model (store-model.ts): one store's six tiers, inline over a backend or through an engine. */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import type { StoreSpec } from "../../src/engine/protocol.js";
import type { TestDatabase } from "../support/postgres-db.js";
import { inlineFactory, type TierHarness } from "../support/tier-harness.js";
import { faultyBackend, type FaultyBackend } from "../support/faulty-backend.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { kvStorage } from "../../src/tier/kv.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { writeLaneOf } from "../../src/tier/write-lane.js";
import { jsonCodec } from "../../src/codec/json.js";
import { closeTiers, opsArb, runOps, tierOptions, type OpenStore, type SnapRecord, type StoreTiers, type Target } from "./store-model.js";

export type Kind = "memory" | "file" | "sqlite" | "postgres";

export interface TargetOptions {
  /** PostgreSQL: the test file's database (useTestDatabase()). */
  pg?: () => Promise<TestDatabase>;
}

/** A fresh location per store: a temporary directory (removed by `cleanup`) and a counter. */
export function locations(prefix: string): { next(kind: Kind): string; cleanup(): void } {
  const root = mkdtempSync(join(tmpdir(), `grf-store-model-${prefix}-`));
  let n = 0;
  return {
    next: (kind) => (kind === "sqlite" ? join(root, `s${n++}.db`) : kind === "file" ? join(root, `f${n++}`) : `s${process.pid}-${n++}`),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

function targetBase(kind: Kind): Pick<Target, "asyncBackend"> {
  return { asyncBackend: kind === "postgres" };
}

const ignore = (): void => undefined;

/** Inline tiers over the real backend of a tier harness (test/support/tier-harness.ts): closed in creation order. */
export function inlineTarget(kind: Kind, o: TargetOptions = {}): Target {
  const base = targetBase(kind);
  const factory = inlineFactory(kind, o.pg);
  const opened = (h: TierHarness): OpenStore => {
    const opts = tierOptions();
    // Created in TIER_IDS order: the harness closes its tiers in that order.
    const tiers: StoreTiers = {
      kvS: h.kv<unknown>(opts.kvS),
      kvB: h.kv<unknown>(opts.kvB),
      kvC: h.kv<unknown>(opts.kvC),
      logS: h.appendLog<number>(opts.logS),
      logC: h.appendLog<number>(opts.logC),
      snap: h.snapshot<SnapRecord>(opts.snap),
    };
    return { tiers, reopen: async () => opened(await h.reopen()), close: () => h.close() };
  };
  return {
    name: `${kind} inline`,
    hasConsistent: false,
    ...base,
    open: async () => opened(await factory.open()),
    cleanup: () => factory.cleanup(),
  };
}

/**
 * Inline tiers over a memory store behind a fault wrapper (test/support/faulty-backend.ts; `async`: answers on a later
 * macrotask, as PostgreSQL does): failFlush ops fail a held tier's flush once.
 */
export function faultyMemoryTarget(async: boolean): Target {
  const opened = (fb: FaultyBackend): OpenStore => {
    const opts = tierOptions();
    const tiers: StoreTiers = {
      kvS: kvStorage<unknown>(fb, opts.kvS),
      kvB: kvStorage<unknown>(fb, opts.kvB),
      kvC: kvStorage<unknown>(fb, opts.kvC),
      logS: appendLogStorage<number>(fb, opts.logS),
      logC: appendLogStorage<number>(fb, opts.logC),
      snap: snapshotStorage<SnapRecord>(fb, opts.snap),
    };
    return {
      tiers,
      reopen: async () => {
        await closeTiers(tiers);
        return opened(fb); // a memory store lives as long as its backend object
      },
      close: () => closeTiers(tiers),
      failNext: (op) => fb.inject({ op, errno: "EIO", times: 1 }),
      failures: () => fb.failures.length,
      heal: () => fb.heal(),
      // As compaction.ts commits: in its place on the lane, its write reported to the tiers holding put-back values.
      job: (key, value) => {
        const lane = writeLaneOf(fb);
        return lane.exclusive(async () => {
          await fb.write(key, jsonCodec.encode(value));
          lane.landedNow([key]);
        });
      },
    };
  };
  return {
    name: `memory inline${async ? " (async)" : ""}, failing flushes`,
    hasConsistent: false,
    asyncBackend: async,
    faults: true,
    open: async () => opened(faultyBackend(memoryBackend(), [], { async })),
  };
}

export function engineTarget(kind: Kind, where: ReturnType<typeof locations>, o: TargetOptions = {}): Target {
  const base = targetBase(kind);
  const hasConsistent = kind === "sqlite" || kind === "postgres";
  const specOf = async (location: string): Promise<StoreSpec> => {
    switch (kind) {
      case "memory":
        return { kind: "memory", name: location };
      case "file":
        return { kind: "file", dir: location };
      case "sqlite":
        return { kind: "sqlite", path: location };
      case "postgres": {
        const db = await o.pg!();
        return { kind: "postgres", url: db.url, schema: db.schema, store: location };
      }
    }
  };
  const start = (): StorageEngine => openStorageEngine({ threads: 1, onError: ignore });
  const opened = (engine: StorageEngine, spec: StoreSpec): OpenStore => {
    const opts = tierOptions();
    const tiers: StoreTiers = {
      kvS: engine.kv<unknown>(spec, opts.kvS),
      kvB: engine.kv<unknown>(spec, opts.kvB),
      kvC: engine.kv<unknown>(spec, opts.kvC),
      logS: engine.appendLog<number>(spec, opts.logS),
      logC: engine.appendLog<number>(spec, opts.logC),
      snap: engine.snapshot<SnapRecord>(spec, opts.snap),
    };
    const readOnly = { ...spec, readOnly: true } as StoreSpec;
    const consistent = hasConsistent
      ? { kv: engine.kv<unknown>(readOnly, { name: "reader" }), log: engine.appendLog<number>(readOnly, { name: "reader-log" }) }
      : undefined;
    const extra = consistent ? [consistent.kv, consistent.log] : [];
    return {
      tiers,
      ...(consistent ? { consistent } : {}),
      async reopen() {
        await closeTiers(tiers, extra);
        if (kind === "memory") return opened(engine, spec); // a memory store lives as long as its engine
        await engine.close();
        return opened(start(), spec);
      },
      async close() {
        try {
          await closeTiers(tiers, extra);
        } finally {
          await engine.close();
        }
      },
    };
  };
  return {
    name: `${kind} engine`,
    hasConsistent,
    ...base,
    async open() {
      return opened(start(), await specOf(where.next(kind)));
    },
  };
}

/**
 * Registers the property over each target (fixed seed: fast-check prints it and the shrunk op sequence on failure)
 * and the cleanup of the targets' stores and of `where`.
 */
export function storeModelSuite(title: string, cases: ReadonlyArray<{ target: Target; runs: number }>, where: ReturnType<typeof locations>): void {
  afterAll(async () => {
    for (const { target } of cases) await target.cleanup?.();
    where.cleanup();
  });
  describe(title, () => {
    for (const { target, runs } of cases) {
      it(target.name, async () => {
        await fc.assert(
          fc.asyncProperty(opsArb(target.hasConsistent, undefined, target.faults === true), async (ops) => {
            expect(await runOps(target, ops)).toEqual([]);
          }),
          { numRuns: runs, seed: 1515 },
        );
      }, 120_000);
    }
  });
}
