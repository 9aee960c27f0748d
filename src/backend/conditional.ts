/**
 * The shared rules of a conditional batch (StorageBackend.writeBatchIf): what `expected` may be, and when a stored
 * value is the expected one. Layer 1.
 */
import { Buffer } from "node:buffer";
import { assertBytes, assertValidKey } from "./keys.js";
import type { BatchOp, ExpectedValue } from "./types.js";

/** Throws `TypeError` for an `expected` that is not `{ key, value }`, StorageError("invalid-key") for a bad key. */
export function assertExpected(expected: unknown): asserts expected is ExpectedValue {
  if (typeof expected !== "object" || expected === null) throw new TypeError("expected must be an object { key, value }");
  const e = expected as { key?: unknown; value?: unknown };
  assertValidKey(e.key, "expected.key");
  if (e.value !== undefined) assertBytes(e.value, "expected.value");
}

/**
 * `expected` of writeBatchIf as a list: one `{ key, value }`, or (where `supports.conditionalKeys`) a non-empty
 * array of them. Throws as assertExpected for each; TypeError for an empty list.
 */
export function expectedList(expected: unknown): readonly ExpectedValue[] {
  if (!Array.isArray(expected)) {
    assertExpected(expected);
    return [expected];
  }
  if (expected.length === 0) throw new TypeError("expected must list at least one { key, value }");
  for (const e of expected) assertExpected(e);
  return expected as readonly ExpectedValue[];
}

/** Whether every expected key holds its value, read through `read` (a key's bytes, undefined: no value). */
export function holdsAll(list: readonly ExpectedValue[], read: (key: string) => Uint8Array | undefined): boolean {
  for (const e of list) if (!holdsExpected(read(e.key), e)) return false;
  return true;
}

/** Whether `stored` (undefined: no value) is what `expected` says: the same bytes, or both absent. */
export function holdsExpected(stored: Uint8Array | undefined, expected: ExpectedValue): boolean {
  const want = expected.value;
  if (stored === undefined || want === undefined) return stored === want;
  return stored.byteLength === want.byteLength && Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength).equals(want);
}

/**
 * Whether a conditional batch only claims new keys: puts of distinct keys, each expected to hold no value, and no
 * other expectation (an append-log's new segments). A backend may then write it as inserts that fail on a stored
 * key (SQLite) or links that fail on an existing name (file store) instead of reading each key first.
 */
export function claimsOnly(list: readonly ExpectedValue[], ops: readonly BatchOp[]): boolean {
  if (ops.length === 0) return false;
  const absent = new Set<string>();
  for (const e of list) {
    if (e.value !== undefined) return false;
    absent.add(e.key);
  }
  const keys = new Set<string>();
  for (const op of ops) {
    if (op.op !== "put" || !absent.has(op.key) || keys.has(op.key)) return false;
    keys.add(op.key);
  }
  return keys.size === absent.size;
}
