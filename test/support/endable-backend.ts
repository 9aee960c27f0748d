/**
 * A real memory store (behind the async test wrapper, test/support/test-backend.ts) whose writes end when the test
 * says: the stand-in for a store that takes no write again (a lost lease, a removed directory, a custom backend's end).
 */
import { memoryBackend } from "../../src/backend/memory.js";
import { wrapBackend, type TestBackend } from "./test-backend.js";

/**
 * Once `end(err)` ran, every write, batch and delete rejects with `err`. With `final` (the default) the backend also
 * states `err` as its finalError from then on, as a backend does that knows its writes ended for good; without it the
 * failure looks like one that may pass.
 */
export function endableBackend(final = true): { b: TestBackend; end: (err: Error) => void } {
  const b = wrapBackend(memoryBackend(), { async: true });
  let ended: Error | undefined;
  const guard =
    <A extends unknown[], R>(fn: (...a: A) => R) =>
    (...a: A): R =>
      ended !== undefined ? (Promise.reject(ended) as R) : fn(...a);
  b.write = guard(b.write.bind(b));
  b.writeBatch = guard(b.writeBatch!.bind(b));
  b.delete = guard(b.delete!.bind(b));
  if (final) Object.defineProperty(b, "finalError", { get: () => ended });
  return { b, end: (err) => void (ended = err) };
}
