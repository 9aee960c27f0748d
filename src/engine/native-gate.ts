/**
 * Never terminate a worker thread inside a native SQLite call (design §3.30): terminated there, the call returns into
 * a terminating isolate and better-sqlite3 aborts the WHOLE process ("v8::ToLocalChecked Empty MaybeLocal", exit
 * 134; WiseLibs/better-sqlite3#842). Each store connection has a gate, one Int32 in a SharedArrayBuffer its actor
 * gets (ActorOptions.nativeGate): FREE, INSIDE (the actor's thread is inside a native call) or CLAIMED (the main
 * thread is ending that thread). The worker marks every gate of its thread around each outermost native call
 * (src/backend/native-gate.ts: one batch's transaction, not a row); the main thread claims every gate of a thread,
 * waiting while one says INSIDE, then terminates it. A thread that finds a gate claimed does not start the call (it
 * throws; termination follows). So the claim and the call exclude each other, with no window between a check and
 * terminate().
 */
import { setNativeGate } from "../backend/native-gate.js";
import { StorageError } from "../errors.js";

const FREE = 0;
const INSIDE = 1;
const CLAIMED = 2;

/** A new gate for a connection (FREE). */
export function newNativeGate(): SharedArrayBuffer {
  return new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
}

// ---- worker side ----

/** The gates of the actors hosted on this thread: a native call blocks the thread, so it is every one's. */
const onThisThread = new Set<Int32Array>();
let installed = false;

function enter(): void {
  let taken = 0;
  for (const gate of onThisThread) {
    if (Atomics.compareExchange(gate, 0, FREE, INSIDE) !== FREE) {
      // Claimed: the main thread is terminating this thread. Undo, and do not start the call.
      for (const undo of onThisThread) {
        if (taken-- === 0) break;
        Atomics.store(undo, 0, FREE);
      }
      throw new StorageError("worker-unresponsive", "this worker thread is being terminated: no SQLite call starts on it");
    }
    taken++;
  }
}

function leave(): void {
  for (const gate of onThisThread) Atomics.store(gate, 0, FREE);
}

/** An actor's gate joins its thread's (worker side); the returned function removes it when the actor's task ends. */
export function hostGate(buffer: SharedArrayBuffer | undefined): () => void {
  if (buffer === undefined) return () => undefined;
  if (!installed) {
    installed = true;
    setNativeGate({ enter, leave });
  }
  const gate = new Int32Array(buffer);
  onThisThread.add(gate);
  return () => onThisThread.delete(gate);
}

// ---- main-thread side ----

/** How often a claim looks again at a gate whose thread is inside a native call. */
const CLAIM_POLL_MS = 10;

/**
 * Resolves once every gate is claimed: none of their threads is inside a native call, and none starts one. A call
 * that never returns (a disk that never answers) keeps it pending. Not unref'd: the thread is finishing a commit.
 */
export function claimGates(buffers: readonly SharedArrayBuffer[]): Promise<void> {
  const open = new Set(buffers.map((b) => new Int32Array(b)));
  const tryAll = (): boolean => {
    for (const gate of open) {
      const was = Atomics.compareExchange(gate, 0, FREE, CLAIMED);
      if (was === FREE || was === CLAIMED) open.delete(gate);
    }
    return open.size === 0;
  };
  if (tryAll()) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (!tryAll()) return;
      clearInterval(timer);
      resolve();
    }, CLAIM_POLL_MS);
  });
}

/** The gates are free again (their thread is gone; the stores' next actors use them). */
export function releaseGates(buffers: readonly SharedArrayBuffer[]): void {
  for (const b of buffers) Atomics.store(new Int32Array(b), 0, FREE);
}

/** True while the gate's thread is inside a native call (what the watchdog tells in its error). */
export function insideNative(buffer: SharedArrayBuffer): boolean {
  return Atomics.load(new Int32Array(buffer), 0) === INSIDE;
}
