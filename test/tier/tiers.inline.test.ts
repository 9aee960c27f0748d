/** The tier conformance suite over every backend, tiers running in-process (inline mode). */
import { tierSuite } from "../conformance/tier/index.js";
import { inlineFactory, type BackendKind } from "../support/tier-harness.js";

for (const kind of ["memory", "file", "sqlite"] as const satisfies readonly BackendKind[]) {
  const factory = inlineFactory(kind);
  tierSuite({
    name: factory.name,
    mode: factory.mode,
    faults: factory.faults,
    sharedStores: factory.sharedStores,
    open: () => factory.open(),
    cleanup: () => factory.cleanup(),
  });
}
