/**
 * Fake-free waiting: poll a condition until it holds or a generous deadline passes. The deadline is a
 * safety net for a hung test, never the thing asserted.
 */
import { StorageError } from "../../src/errors.js";

export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = 5_000, intervalMs = 5 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs `fn` and returns what it threw or rejected with (undefined when it succeeded). */
export async function errorOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** Same for synchronous code: a Promise-returning call does not count as throwing. */
export function syncErrorOf(fn: () => unknown): unknown {
  try {
    const r = fn();
    (r as Promise<unknown> | undefined)?.catch?.(() => undefined);
  } catch (err) {
    return err;
  }
  return undefined;
}

/** The StorageError `fn` throws synchronously (the test fails when it throws anything else, or nothing). */
export function storageErrorOf(fn: () => unknown): StorageError {
  const err = syncErrorOf(fn);
  if (!(err instanceof StorageError)) throw new Error(`expected a StorageError, got ${String(err)}`);
  return err;
}
