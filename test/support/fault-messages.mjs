// The message type test/support/faults.ts posts and fault-worker.mjs acts on. It imports nothing: faults.ts (and any
// test) imports it from here, never from the worker entry, which loads dist/ (dist/src/engine/rpc.js replaces
// comlink's process-wide "throw" handler with one building dist's error classes: see
// test/engine/test-thread-no-dist.test.ts).

/** Message type a test posts (faults.ts); the production entry ignores it like any message it does not know. */
export const FAULT_MESSAGE = "graphrefly.test-fault";
