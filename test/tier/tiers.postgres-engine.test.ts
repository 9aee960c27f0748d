/**
 * The tier conformance suite on PostgreSQL through the engine: tiers proxied to a store actor whose connection lives
 * in its worker thread (needs `npm run build`). Write failures come from the server (a trigger refusing the store's
 * rows), with the real backend in between.
 */
import { tierSuite } from "../conformance/tier/index.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { workerFactory } from "../support/tier-harness.js";

const factory = workerFactory("postgres", useTestDatabase());
tierSuite({
  name: factory.name,
  mode: factory.mode,
  faults: factory.faults,
  open: () => factory.open(),
  cleanup: () => factory.cleanup(),
});
