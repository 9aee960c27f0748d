/**
 * The store model (test/conformance/store-model.ts) over a real PostgreSQL server (test/support), inline and through
 * an engine (needs `npm run build`), readConsistent through a read-only engine handle. Fixed seed; fast-check prints
 * the seed and the shrunk op sequence on failure. Values, never timings.
 */
import { useTestDatabase } from "../support/postgres-db.js";
import type { Target } from "./store-model.js";
import { engineTarget, inlineTarget, locations, storeModelSuite } from "./store-model-targets.js";

const database = useTestDatabase();
const where = locations("pg");

const options = { pg: database };
const cases: Array<{ target: Target; runs: number }> = [
  { target: inlineTarget("postgres", options), runs: 25 },
  { target: engineTarget("postgres", where, options), runs: 15 },
];

storeModelSuite("one store's tiers keep the documented call-order model (PostgreSQL)", cases, where);
