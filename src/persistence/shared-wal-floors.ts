/**
 * Floors of this thread's WAL groups with a store no record names (a memory store), in memory shared with the store
 * actors of the engines this thread opened (docs/design.md §3.10, "Folds the engine starts itself"). A fold the
 * actor starts by itself (`autoCompact`, a fold rule) has no asking thread to watch it (compactGraphInEngine's
 * `watchSharedWalJob`) and reads no `sharedWalFloor`: such a group is in no record and in no group of the actor's
 * thread. So each thread keeps one SharedArrayBuffer: per slot (graph names hash to slots), the lowest baseline seq
 * such a group of a graph of that slot still needs, set before any frame of the group is written. The buffer crosses
 * to an actor with the configs shared-wal.ts (a pin, a lifted pin) and the fold rule send to its watcher; the
 * actor's jobs read it once their frames are listed. Two graphs of one slot share it: a fold of one keeps what the
 * other needs (never fewer frames). Layer 4 (persistence); no import of the rest of it (the watcher and
 * shared-wal.ts both use it).
 */

/** Slots per buffer: 256 graph-name hashes (1 KiB). */
const SLOTS = 256;
/** After the slots: two random words telling the buffers apart (each message carries a new object for the same memory). */
const TOKEN_CELLS = 2;
/** A slot no group holds. */
const NONE = -1;
/** Seqs above this are stored as it: a lower floor keeps more frames, never fewer. */
const MAX_FLOOR = 0x7fff_ffff;
const BYTES = Int32Array.BYTES_PER_ELEMENT * (SLOTS + TOKEN_CELLS);

let own: { readonly buffer: SharedArrayBuffer; readonly cells: Int32Array } | undefined;
/** In an actor's thread: the buffers of the threads whose engines sent one, by token. */
const adopted = new Map<string, Int32Array>();

/** The slot of `graphName` (FNV-1a of its UTF-16 units). */
function slotOf(graphName: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < graphName.length; i++) {
    h ^= graphName.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % SLOTS;
}

function ownCells(): { readonly buffer: SharedArrayBuffer; readonly cells: Int32Array } {
  if (own === undefined) {
    const buffer = new SharedArrayBuffer(BYTES);
    const cells = new Int32Array(buffer);
    cells.fill(NONE, 0, SLOTS);
    const token = new Uint32Array(2);
    globalThis.crypto.getRandomValues(token);
    cells[SLOTS] = token[0] as number;
    cells[SLOTS + 1] = token[1] as number;
    own = { buffer, cells };
  }
  return own;
}

/** This thread's buffer, for the configs sent to a store actor's watcher. */
export function ownSharedWalFloors(): SharedArrayBuffer {
  return ownCells().buffer;
}

/**
 * Sets, in this thread's buffer, the floor of the slot of `graphName` from `floorOf`: called with each graph name
 * hashing to that slot, it gives the lowest seq a live group of that graph needs (undefined: none).
 */
export function publishSharedWalFloor(graphName: string, floors: (sameSlot: (name: string) => boolean) => number | undefined): void {
  const slot = slotOf(graphName);
  const floor = floors((name) => slotOf(name) === slot);
  const value = floor === undefined ? NONE : Math.max(0, Math.min(MAX_FLOOR, Math.floor(floor)));
  Atomics.store(ownCells().cells, slot, value);
}

/** The floor this thread publishes for the slot of `graphName` (undefined: no live group holds it); for tests. */
export function ownSharedWalFloor(graphName: string): number | undefined {
  const v = Atomics.load(ownCells().cells, slotOf(graphName));
  return v === NONE ? undefined : v;
}

/**
 * In a store actor's thread: keeps `buffer` (a config's `floors`, from the thread of an engine whose tier sent it) for
 * its jobs' `adoptedSharedWalFloor`. Anything else is ignored (configs cross by structured clone: any value may come).
 */
export function adoptSharedWalFloors(buffer: unknown): void {
  if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== BYTES) return;
  const cells = new Int32Array(buffer);
  const token = `${Atomics.load(cells, SLOTS)}:${Atomics.load(cells, SLOTS + 1)}`;
  if (!adopted.has(token)) adopted.set(token, cells);
}

/**
 * In a store actor's thread: the lowest seq above which the groups of the threads whose buffers it adopted need the
 * frames of `graphName` (Infinity: none). Read right after a fold listed its frames.
 */
export function adoptedSharedWalFloor(graphName: string): number {
  const slot = slotOf(graphName);
  let floor = Number.POSITIVE_INFINITY;
  for (const cells of adopted.values()) {
    const v = Atomics.load(cells, slot);
    if (v !== NONE) floor = Math.min(floor, v);
  }
  return floor;
}
