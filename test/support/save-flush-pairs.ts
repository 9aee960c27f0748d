/**
 * A server whose handlers each save and flush, not pacing on drained(): turns of 50 `save(k<i>, i)` + `flush()`
 * pairs on `kv` until a save is refused (tests of what unanswered flushes hold against maxPendingBytes).
 */
import { expect } from "vitest";
import { StorageError } from "../../src/errors.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { FLUSH_CALL_WEIGHT } from "../../src/tier/weights.js";

export interface SaveFlushPairs {
  /** The refused save's error. */
  readonly refusal: StorageError;
  /** Flushes not answered yet (read at any time). */
  unanswered(): number;
  /** Every flush call's answer. */
  readonly calls: ReadonlyArray<Promise<void>>;
  /** Keys of the accepted saves (`k<i>` holds i). */
  readonly accepted: readonly string[];
  /** The accepted keys whose stored value is not theirs (after everything was flushed). */
  notStored(): Promise<string[]>;
}

export async function saveFlushUntilRefused(kv: KvStorageTier<number>): Promise<SaveFlushPairs> {
  let unanswered = 0;
  const calls: Array<Promise<void>> = [];
  const accepted: string[] = [];
  let refusal: unknown;
  for (let i = 0; refusal === undefined; ) {
    for (let j = 0; j < 50; j++, i++) {
      try {
        kv.save(`k${i}`, i);
      } catch (err) {
        refusal = err;
        break;
      }
      accepted.push(`k${i}`);
      unanswered++;
      const call = kv.flush();
      calls.push(call);
      call.then(
        () => unanswered--,
        () => unanswered--,
      );
    }
    if (refusal === undefined) await new Promise((r) => setImmediate(r));
  }
  if (!(refusal instanceof StorageError)) throw refusal;
  return {
    refusal,
    unanswered: () => unanswered,
    calls,
    accepted,
    notStored: async () => {
      const values = await Promise.all(accepted.map((k) => kv.load(k)));
      return accepted.filter((k, i) => values[i] !== Number(k.slice(1)));
    },
  };
}

/**
 * The refusal was backpressure, and the flushes waiting for an answer then are in the pending bytes it reports,
 * which stay within `max` (one flush's weight over it at most: a flush is never refused).
 */
export function expectFlushesCounted(pairs: SaveFlushPairs, max: number): void {
  expect(pairs.refusal.code).toBe("backpressure");
  const pending = pairs.refusal.details.pendingBytes as number;
  expect(pairs.unanswered()).toBeGreaterThan(0);
  // The tier's first flush due weighs nothing (flushCallWeight), each further one FLUSH_CALL_WEIGHT.
  expect((pairs.unanswered() - 1) * FLUSH_CALL_WEIGHT).toBeLessThanOrEqual(pending);
  expect(pending).toBeLessThanOrEqual(max + FLUSH_CALL_WEIGHT);
}
