/**
 * Marks the time a thread spends inside a native better-sqlite3 call. A worker thread terminated while inside one
 * aborts the WHOLE process (V8 "ToLocalChecked Empty MaybeLocal" when the call returns into a terminating isolate:
 * WiseLibs/better-sqlite3#842), so the engine's worker entry installs a gate here that its main thread reads before
 * terminating the thread (src/engine/native-gate.ts, design §3.30). Without a gate (inline use, tools) a call costs
 * one check. Layer 1: knows nothing of the engine.
 */
// The engine's main thread loads this module before it starts workers, and the SQLite writer turns' table must exist
// on that thread by then to be shared with them (sqlite-turns.ts).
import "./sqlite-turns.js";

export interface NativeGate {
  /** Before the outermost native call; throws when the thread is being terminated (the call must not start). */
  enter(): void;
  /** After it returned or threw. */
  leave(): void;
}

let gate: NativeGate | undefined;
/** Nested regions (a conditional batch reads inside its transaction) mark once, at the outermost. */
let depth = 0;

/** Installs this thread's gate (the engine's worker entry, once per thread). */
export function setNativeGate(g: NativeGate | undefined): void {
  gate = g;
}

/** Runs `fn` (synchronous SQLite work, never awaiting) marked as a native call. */
export function inNative<T>(fn: () => T): T {
  if (gate === undefined) return fn();
  if (depth === 0) gate.enter();
  depth++;
  try {
    return fn();
  } finally {
    if (--depth === 0) gate.leave();
  }
}
