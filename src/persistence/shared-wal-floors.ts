/**
 * Floors of this thread's WAL groups with a store no record names (a memory store), in memory shared with the store
 * actors of the engines this thread opened (docs/design.md §3.10, "Folds the engine starts itself", "Floors by
 * store"). A fold the actor starts by itself (`autoCompact`, a fold rule) has no asking thread to watch it
 * (compactGraphInEngine's `watchSharedWalJob`) and reads no `sharedWalFloor`: such a group is in no record and in no
 * group of the actor's thread. So each thread keeps one SharedArrayBuffer of floors, one per (WAL's store, graph
 * name): the lowest baseline seq such a group of that graph on a WAL of that store still needs, set before any frame
 * of the group is written. The buffer crosses to an actor with the configs shared-wal.ts (a pin, a lifted pin) and
 * the fold rule send to its watcher, and with compactGraphInEngine's jobs; the actor's jobs read it once their
 * frames are listed, for their own store and graph only.
 *
 * Until task 213 a floor was keyed by a hash of the graph name alone (256 slots): a memory store paired with a WAL
 * on store A held every fold of the same graph name, or of any graph of its slot, on every other store B of the
 * actors that adopted the buffer (each tenant's store of a graph `g`): B's WAL grew without bound while the pair lived.
 *
 * Layout (Int32 cells): SLOTS slots of [hash high, hash low, floor], then OVERFLOW cells, then a token of two words,
 * then the owner thread's kernel identity (OWNER).
 * A slot holds one key (a 64-bit hash of store and graph name; 0:0 is a free slot) for as long as a live group needs
 * its floor: only the owning thread writes, and a live key never changes slot, so a reader that scans every slot
 * for its hash never misses a live floor. Claiming a slot writes the floor before the hash, freeing it clears the
 * floor before the hash: a reader matching a hash at worst sees a floor of a key no longer live (it keeps more frames,
 * never fewer). Two keys of one 64-bit hash (about 2^-64 per pair) keep each other's frames. With every slot taken,
 * a further key's floor goes to an overflow cell chosen by its hash, holding the lowest floor of the keys there: the
 * folds of the keys of that cell keep what any of them needs (conservative, only for those); a key moves back to a
 * freed slot (slot written first, the overflow cell after).
 *
 * A thread that ended (worker.terminate(), an uncaught error) with groups open cannot withdraw its floors, and its
 * memory stores ended with it: nothing needs them. An actor of one of its own engines ends with it (Node stops a
 * thread's worker threads), but one of another thread's engine that ran a job the thread forwarded there
 * (compactGraphInEngine takes any `runJob`) kept the buffer, and every fold of those graphs on that store kept the
 * frames above the floors, until the process ended (task 228). So the owner writes its kernel thread id and start
 * time into the buffer when it makes it, and a reader drops a buffer whose owner has ended (base/kernel-thread.ts).
 * Without a usable /proc (none, or another PID namespace's) the owner is unknown and its floors are kept, as before.
 *
 * Layer 4 (persistence); imports the tier layer's store identity (the watcher and shared-wal.ts both use it) and the
 * base layer's kernel thread identity.
 */
import { currentKernelThread, kernelThreadEnded, type KernelThread } from "../base/kernel-thread.js";
import type { StorageBackend } from "../backend/types.js";
import { backendStoreId, type TierStore } from "../tier/store-identity.js";

/** Slots per buffer: distinct (WAL store, graph) keys with a live memory-store group in one thread, 12 KiB. */
const SLOTS = 1024;
const SLOT_CELLS = 3;
/** Cells for keys beyond SLOTS, by hash: each the lowest floor of its keys. */
const OVERFLOW = 64;
const OVERFLOW_AT = SLOTS * SLOT_CELLS;
/** After the overflow: two random words telling the buffers apart (each message carries a new object for the same memory). */
const TOKEN_AT = OVERFLOW_AT + OVERFLOW;
const TOKEN_CELLS = 2;
/**
 * After the token: the owner thread's kernel id, and its start time as high and low 32-bit words (clock ticks since
 * boot); id 0: unknown (no usable /proc), never dropped. Written before the buffer first leaves the thread.
 */
const OWNER_AT = TOKEN_AT + TOKEN_CELLS;
const OWNER_CELLS = 3;
/** A floor no group holds. */
const NONE = -1;
/** Seqs above this are stored as it: a lower floor keeps more frames, never fewer. */
const MAX_FLOOR = 0x7fff_ffff;
const BYTES = Int32Array.BYTES_PER_ELEMENT * (OWNER_AT + OWNER_CELLS);

interface Own {
  readonly buffer: SharedArrayBuffer;
  readonly cells: Int32Array;
  /** Keys holding a slot, and the slots free again (never-used ones are taken from `fresh` on). */
  readonly slotOf: Map<string, number>;
  readonly free: number[];
  fresh: number;
  /** Keys that found no slot: their floor, and their overflow cell. */
  readonly overflowed: Map<string, { readonly cell: number; floor: number }>;
}

let own: Own | undefined;
/** In an actor's thread: the buffers of the threads whose engines sent one, by token, and their owner (if known). */
const adopted = new Map<string, { readonly cells: Int32Array; readonly owner: KernelThread | undefined }>();

/** A 64-bit hash of `key` (two 32-bit hashes of its UTF-16 units: FNV-1a, and a multiply-xorshift one); never 0:0. */
function hashOf(key: string): readonly [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9e3779b9 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  b = Math.imul(b ^ (b >>> 16), 0x85ebca6b);
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  b ^= b >>> 16;
  return a === 0 && b === 0 ? [0, 1] : [a | 0, b | 0];
}

/** The key of a WAL store and a graph name (unambiguous: both may hold any character). */
function keyOf(store: string, graphName: string): string {
  return `${store.length}:${store}\n${graphName}`;
}

/**
 * The name a floor gives the WAL's store, seen from a tier (shared-wal.ts): its lasting id (a SQLite file's or a file
 * store's real path, a PostgreSQL store's id), else an engine tier's store key (an engine's memory store: its actor's
 * backend is named so). Undefined for a store no actor can open (an inline memory backend, a custom one): only folds
 * in this thread reach it, and they read its groups directly (`sharedWalFloor`).
 */
export function floorStoreOfTier(store: TierStore): string | undefined {
  return typeof store.id === "string" ? store.id : store.engineKey;
}

/**
 * The name a floor gives the store of `backend`, seen where a fold runs: its lasting id, else the backend's name (an
 * engine's memory store is `memory:<name>`, its tiers' store key). Two engines' memory stores of one name share it: a
 * match too many only keeps frames.
 */
export function floorStoreOfBackend(backend: StorageBackend): string {
  const id = backendStoreId(backend);
  return typeof id === "string" ? id : backend.name;
}

function ownState(): Own {
  if (own === undefined) {
    const buffer = new SharedArrayBuffer(BYTES);
    const cells = new Int32Array(buffer);
    cells.fill(NONE, OVERFLOW_AT, TOKEN_AT);
    for (let s = 0; s < SLOTS; s++) cells[s * SLOT_CELLS + 2] = NONE;
    const token = new Uint32Array(2);
    globalThis.crypto.getRandomValues(token);
    cells[TOKEN_AT] = token[0] as number;
    cells[TOKEN_AT + 1] = token[1] as number;
    own = { buffer, cells, slotOf: new Map(), free: [], fresh: 0, overflowed: new Map() };
  }
  if (Atomics.load(own.cells, OWNER_AT) === 0) writeOwner(own.cells);
  return own;
}

/**
 * Writes this thread's kernel identity into its buffer's owner cells, the id last (a reader that sees it sees the
 * start time). Tried again at every use while unknown: a read of /proc failing once (EMFILE) must not leave the
 * buffer ownerless for the thread's life (review r235), which would keep its floors after it ended.
 */
function writeOwner(cells: Int32Array): void {
  const me = currentKernelThread();
  if (me === undefined) return;
  Atomics.store(cells, OWNER_AT + 1, Math.floor(me.start / 2 ** 32));
  Atomics.store(cells, OWNER_AT + 2, me.start >>> 0);
  Atomics.store(cells, OWNER_AT, me.tid);
}

/** This thread's buffer, for the configs sent to a store actor's watcher and the jobs sent to its actor. */
export function ownSharedWalFloors(): SharedArrayBuffer {
  return ownState().buffer;
}

/**
 * Sets, in this thread's buffer, the floor of graph `graphName` on a WAL of store `store` (floorStoreOfTier): the
 * lowest seq a live group of it needs, undefined once none does.
 */
export function publishSharedWalFloor(store: string, graphName: string, floor: number | undefined): void {
  const o = ownState();
  const key = keyOf(store, graphName);
  const value = floor === undefined ? NONE : Math.max(0, Math.min(MAX_FLOOR, Math.floor(floor)));
  const slot = o.slotOf.get(key);
  if (slot !== undefined) {
    if (value !== NONE) {
      Atomics.store(o.cells, slot * SLOT_CELLS + 2, value);
      return;
    }
    // Floor first, hash after: a reader matching the hash meanwhile sees no floor (none is needed any more).
    Atomics.store(o.cells, slot * SLOT_CELLS + 2, NONE);
    Atomics.store(o.cells, slot * SLOT_CELLS, 0);
    Atomics.store(o.cells, slot * SLOT_CELLS + 1, 0);
    o.slotOf.delete(key);
    o.free.push(slot);
    const waiting = o.overflowed.keys().next();
    if (!waiting.done) moveToSlot(o, waiting.value);
    return;
  }
  const over = o.overflowed.get(key);
  if (over !== undefined) {
    if (value === NONE) o.overflowed.delete(key);
    else over.floor = value;
    setOverflowCell(o, over.cell);
    return;
  }
  if (value === NONE) return;
  const [hi, lo] = hashOf(key);
  const free = takeSlot(o);
  if (free === undefined) {
    const cell = (lo >>> 0) % OVERFLOW;
    o.overflowed.set(key, { cell, floor: value });
    setOverflowCell(o, cell);
    return;
  }
  claim(o, free, key, hi, lo, value);
}

function takeSlot(o: Own): number | undefined {
  const reused = o.free.pop();
  if (reused !== undefined) return reused;
  return o.fresh < SLOTS ? o.fresh++ : undefined;
}

/** Floor first, hash after (low word last): once a reader matches the whole hash, the floor it reads is the key's. */
function claim(o: Own, slot: number, key: string, hi: number, lo: number, value: number): void {
  Atomics.store(o.cells, slot * SLOT_CELLS + 2, value);
  Atomics.store(o.cells, slot * SLOT_CELLS, hi);
  Atomics.store(o.cells, slot * SLOT_CELLS + 1, lo);
  o.slotOf.set(key, slot);
}

/** An overflowed key takes a freed slot: the slot is written before the overflow cell lets go of it. */
function moveToSlot(o: Own, key: string): void {
  const over = o.overflowed.get(key);
  const slot = takeSlot(o);
  if (over === undefined || slot === undefined) return;
  const [hi, lo] = hashOf(key);
  claim(o, slot, key, hi, lo, over.floor);
  o.overflowed.delete(key);
  setOverflowCell(o, over.cell);
}

function setOverflowCell(o: Own, cell: number): void {
  let floor = NONE;
  for (const over of o.overflowed.values()) {
    if (over.cell === cell && (floor === NONE || over.floor < floor)) floor = over.floor;
  }
  Atomics.store(o.cells, OVERFLOW_AT + cell, floor);
}

/** The lowest floor `cells` holds for `key` (NONE: none). */
function floorIn(cells: Int32Array, hi: number, lo: number): number {
  let floor = NONE;
  const take = (v: number): void => {
    if (v !== NONE && (floor === NONE || v < floor)) floor = v;
  };
  // Every slot: a key is in the slot free when it was claimed, not at a place its hash picks.
  for (let s = 0; s < SLOTS; s++) {
    const at = s * SLOT_CELLS;
    if (Atomics.load(cells, at) === hi && Atomics.load(cells, at + 1) === lo) take(Atomics.load(cells, at + 2));
  }
  take(Atomics.load(cells, OVERFLOW_AT + ((lo >>> 0) % OVERFLOW)));
  return floor;
}

/** The floor this thread publishes for `graphName` on a WAL of `store` (undefined: no live group holds it); for tests. */
export function ownSharedWalFloor(store: string, graphName: string): number | undefined {
  const [hi, lo] = hashOf(keyOf(store, graphName));
  const v = floorIn(ownState().cells, hi, lo);
  return v === NONE ? undefined : v;
}

/**
 * In a store actor's thread: keeps `buffer` (a config's or a job's `floors`, from the thread of an engine whose tier
 * sent it) for its jobs' `adoptedSharedWalFloor`. Anything else is ignored (it crossed by structured clone: any value
 * may come; a buffer of an older layout, of another size, too: a copy of the package before task 228 in the same
 * process, whose buffers have no owner cells).
 */
export function adoptSharedWalFloors(buffer: unknown): void {
  if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== BYTES) return;
  const cells = new Int32Array(buffer);
  const token = `${Atomics.load(cells, TOKEN_AT)}:${Atomics.load(cells, TOKEN_AT + 1)}`;
  if (!adopted.has(token)) adopted.set(token, { cells, owner: ownerIn(cells) });
}

/** The owner thread a buffer names, undefined while it names none (its owner could not read /proc yet, or ever). */
function ownerIn(cells: Int32Array): KernelThread | undefined {
  const tid = Atomics.load(cells, OWNER_AT);
  if (tid <= 0) return undefined;
  return { tid, start: (Atomics.load(cells, OWNER_AT + 1) >>> 0) * 2 ** 32 + (Atomics.load(cells, OWNER_AT + 2) >>> 0) };
}

/**
 * In a store actor's thread: the lowest seq above which the groups of the threads whose buffers it adopted need the
 * frames of `graphName` on a WAL of `store` (floorStoreOfBackend of the fold's backend; Infinity: none). Read right
 * after a fold listed its frames. A scan of every slot per adopted buffer (3,072 atomic reads at most, a few µs), and
 * a read of its owner's /proc stat: a buffer whose owner thread has ended is dropped, its floors with it (no group of
 * it lives on; its memory stores are gone).
 */
export function adoptedSharedWalFloor(store: string, graphName: string): number {
  const [hi, lo] = hashOf(keyOf(store, graphName));
  let floor = Number.POSITIVE_INFINITY;
  for (const [token, entry] of adopted) {
    const { cells } = entry;
    // An owner that named itself after its buffer was adopted (its first /proc read failed) is read again.
    const owner = entry.owner ?? ownerIn(cells);
    if (owner !== undefined && entry.owner === undefined) adopted.set(token, { cells, owner });
    if (owner !== undefined && kernelThreadEnded(owner)) {
      adopted.delete(token);
      continue;
    }
    const v = floorIn(cells, hi, lo);
    if (v !== NONE) floor = Math.min(floor, v);
  }
  return floor;
}
