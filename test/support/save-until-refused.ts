/** Backpressure tests: saves until one is refused (or `max` were accepted); the refusal, if any, and the count accepted. */
export function saveUntilRefused(save: (i: number) => void, max: number): { accepted: number; refused: unknown } {
  for (let i = 0; i < max; i++) {
    try {
      save(i);
    } catch (err) {
      return { accepted: i, refused: err };
    }
  }
  return { accepted: max, refused: undefined };
}
