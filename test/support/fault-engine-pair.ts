/** Graph "g" written through a fault engine's store (test/support/faults.ts): the subject of the lost-worker tests. */
import type { StoreSpec } from "../../src/engine/protocol.js";
import { openFaultEngine, type FaultEngine } from "./faults.js";
import { FAST_RETRY, attachA, enginePair, type GraphA } from "./graph-a-pair.js";

export interface FaultEnginePair extends GraphA {
  readonly engine: FaultEngine;
  /** The codes the engine's onError heard, in order ("?" for an error without one). */
  readonly heard: string[];
  /** Disposes the handle and closes the engine, ignoring their errors (a test's finally). */
  end(): Promise<void>;
}

/**
 * A fault engine of one thread, graph "g" with node `a` at 0 attached over `spec` with FAST_RETRY on both tiers,
 * and its baseline and a = 1 stored (flushed).
 */
export async function attachedOverFaultEngine(spec: StoreSpec): Promise<FaultEnginePair> {
  const heard: string[] = [];
  const engine = openFaultEngine({ threads: 1, onError: (e) => void heard.push((e as { code?: string }).code ?? "?") });
  const pair = attachA(enginePair(engine, spec, FAST_RETRY), { initial: 0 });
  pair.g.set("a", 1);
  await pair.h.flush();
  const end = async (): Promise<void> => {
    await pair.h.dispose().catch(() => {});
    await engine.close().catch(() => {});
  };
  return { ...pair, engine, heard, end };
}
