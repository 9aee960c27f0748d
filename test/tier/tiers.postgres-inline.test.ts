/** The tier conformance suite on PostgreSQL, tiers running in-process (inline mode) over postgresBackend. */
import { tierSuite } from "../conformance/tier/index.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { inlineFactory } from "../support/tier-harness.js";

const factory = inlineFactory("postgres", useTestDatabase());
tierSuite({
  name: factory.name,
  mode: factory.mode,
  faults: factory.faults,
  asyncBackend: true,
  open: () => factory.open(),
  cleanup: () => factory.cleanup(),
});
