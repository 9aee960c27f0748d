import { StorageError } from "../../src/errors.js";

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

/** Runs `fn`: its backpressure refusal, or undefined when it was accepted (any other error is thrown). */
export function backpressureOf(fn: () => unknown): StorageError | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof StorageError && err.code === "backpressure") return err;
    throw err;
  }
}
