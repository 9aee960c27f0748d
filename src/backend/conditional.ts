/**
 * The shared rules of a conditional batch (StorageBackend.writeBatchIf): what `expected` may be, and when a stored
 * value is the expected one. Layer 1.
 */
import { Buffer } from "node:buffer";
import { assertBytes, assertValidKey } from "./keys.js";
import type { ExpectedValue } from "./types.js";

/** Throws `TypeError` for an `expected` that is not `{ key, value }`, StorageError("invalid-key") for a bad key. */
export function assertExpected(expected: unknown): asserts expected is ExpectedValue {
  if (typeof expected !== "object" || expected === null) throw new TypeError("expected must be an object { key, value }");
  const e = expected as { key?: unknown; value?: unknown };
  assertValidKey(e.key, "expected.key");
  if (e.value !== undefined) assertBytes(e.value, "expected.value");
}

/** Whether `stored` (undefined: no value) is what `expected` says: the same bytes, or both absent. */
export function holdsExpected(stored: Uint8Array | undefined, expected: ExpectedValue): boolean {
  const want = expected.value;
  if (stored === undefined || want === undefined) return stored === want;
  return stored.byteLength === want.byteLength && Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).equals(want);
}
