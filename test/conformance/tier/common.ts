/** Constants and small helpers the tier conformance cases share. */
import { expect } from "vitest";
import { CodecError, StorageError } from "../../../src/errors.js";
import type { AppendLogStorageTier } from "../../../src/tier/types.js";

/** Long enough that a debounce timer never fires during a test: only flush()/compactEvery write. */
export const HELD = 60_000;
/** Short debounce windows for the cases where the timer itself is under test. */
export const WINDOW = 30;

export const LONE_SURROGATE = "\ud800";

export const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));
export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const parsed = (b: Uint8Array | undefined): unknown => (b === undefined ? undefined : JSON.parse(text(b)!));

/** One macrotask: in worker mode, ops queued before it travel in an earlier message than anything queued after. */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

export function expectCoded(err: unknown, type: typeof StorageError | typeof CodecError, code: string): void {
  expect(err, `expected ${type.name}(${code})`).toBeInstanceOf(type);
  expect((err as StorageError | CodecError).code).toBe(code);
}

export async function entriesOf<T>(log: AppendLogStorageTier<T>, keyFilter?: string): Promise<T[]> {
  const r = await log.loadEntries(keyFilter === undefined ? undefined : { keyFilter });
  expect(r.cursor).toBeUndefined();
  return r.entries;
}

export async function collect<T>(it: AsyncIterable<{ key: string; value: T }>): Promise<Array<[string, T]>> {
  const out: Array<[string, T]> = [];
  for await (const { key, value } of it) out.push([key, value]);
  return out;
}
