/** Counting how often a tier is asked for a write: the measure of the tests of waits sharing one write-attempt loop. */

/** Counts the calls of `tier.writePending` from now on (each still goes through to the real tier); the count so far. */
export function countWritePending(tier: { writePending?(): Promise<void> }): () => number {
  let calls = 0;
  const writePending = tier.writePending!.bind(tier);
  tier.writePending = () => {
    calls++;
    return writePending();
  };
  return () => calls;
}
