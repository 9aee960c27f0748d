/**
 * Model-based property of one store's tiers (test/conformance/store-model.ts): three kv tiers (sync-through, 2 ms
 * debounce, 60 s held) sharing keys, two append-logs sharing a bucket, and a snapshot tier sharing the kv keys, under
 * random saves, deletes, appends, rollbacks, flushes awaited at once or later, ticks, close + reopen and (engine
 * SQLite) readConsistent, checked against the documented semantics (design §3.5, §3.16, §3.30; api Tiers). Real
 * memory, file and SQLite stores, inline and through an engine (needs `npm run build`). Fixed seeds; fast-check
 * prints the seed and the shrunk op sequence on failure. Values, never timings.
 */
import type { Target } from "./store-model.js";
import { engineTarget, faultyMemoryTarget, inlineTarget, locations, storeModelSuite } from "./store-model-targets.js";

const where = locations("local");

const cases: Array<{ target: Target; runs: number }> = [
  { target: inlineTarget("memory"), runs: 150 },
  { target: faultyMemoryTarget(false), runs: 150 },
  { target: faultyMemoryTarget(true), runs: 150 },
  { target: inlineTarget("sqlite"), runs: 100 },
  { target: inlineTarget("file"), runs: 60 },
  { target: engineTarget("sqlite", where), runs: 25 },
  { target: engineTarget("memory", where), runs: 25 },
];

storeModelSuite("one store's tiers keep the documented call-order model", cases, where);
