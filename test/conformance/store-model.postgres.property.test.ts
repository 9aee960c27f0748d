/**
 * The store model (test/conformance/store-model.ts) over a real PostgreSQL server (test/support), inline and through
 * an engine (needs `npm run build`), readConsistent through a read-only engine handle. Fixed seed; fast-check prints
 * the seed and the shrunk op sequence on failure. Values, never timings.
 */
import { useTestDatabase } from "../support/postgres-db.js";
import type { Target } from "./store-model.js";
import { engineTarget, inlineTarget, locations, storeModelSuite } from "./store-model-targets.js";

/**
 * Open defect, design §3.30: on PostgreSQL a tier with a write in flight (a flush or a delete) chains its next write
 * behind it, so another tier's write called later (a flush, a delete, a debounce timer's flush) lands first on a
 * shared key (`s.save(a, 1); s.save(a, 3); t.save(a, 2); await t.flush()` stores 3; review s15d found the delete and
 * timer variants). While true, the runner lets a tier's earlier writes settle before the tier writes again, and the
 * 2 ms tier is held, so the model checks everything else. Set it to false once the defect is fixed.
 */
const AVOID_KNOWN_PG_CHAINING = true;

const database = useTestDatabase();
const where = locations("pg");

const options = { pg: database, avoidKnownPgChaining: AVOID_KNOWN_PG_CHAINING };
const cases: Array<{ target: Target; runs: number }> = [
  { target: inlineTarget("postgres", options), runs: 25 },
  { target: engineTarget("postgres", where, options), runs: 15 },
];

storeModelSuite("one store's tiers keep the documented call-order model (PostgreSQL)", cases, where);
