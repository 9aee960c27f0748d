/**
 * About how many bytes a value takes when no codec rule walked it: the weight of a write an engine store's worker
 * encodes with a module codec (docs/design.md §3.19). Before, such a value weighed the store's average committed
 * write (a 100 KiB value counted ~200 B), so a burst of big values held many times maxPendingBytes on the main
 * thread, in the message to the actor and in the actor. The same figures as the JSON rule's walk (strict.ts
 * storableJsonSize) for plain data, so the two codecs weigh alike; binary data by its bytes. An estimate of what the
 * structured clone carries: what a codec makes of it is its own (the docs say so).
 */
import { UNKNOWN_SIZE } from "./value-check.js";

/** Holes an array walk meets before it walks the rest of that array by its own keys (see arraySize). */
const SPARSE_HOLES = 1024;

/** Objects a walk scans linearly before it indexes them in a Set (a Set per small value cost ~0.6 µs a save). */
const LINEAR_SEEN = 64;

/** Objects already counted: a linear list while it is short, then a Set of them. */
class Seen {
  private readonly list: object[] = [];
  private set: Set<object> | undefined;

  /** Whether `o` was counted before; marks it counted. */
  visit(o: object): boolean {
    const set = this.set;
    if (set !== undefined) {
      const before = set.size;
      return set.add(o).size === before; // one lookup, not has() then add()
    }
    if (this.list.includes(o)) return true;
    this.list.push(o);
    if (this.list.length > LINEAR_SEEN) this.set = new Set(this.list);
    return false;
  }

  clear(): void {
    this.list.length = 0;
    this.set = undefined;
  }
}

/** Walk state reused by every call (a small value's walk allocates nothing; a getter's nested walk gets its own). */
let busy = false;
const sharedSeen = new Seen();
const sharedStack: unknown[] = [];

/**
 * The value's estimated bytes, O(its size). Never throws: a value the walk cannot read (a throwing getter, a
 * revoked Proxy) weighs UNKNOWN_SIZE (the store's average), and its post fails as before. Shared objects and
 * cycles count once, as structured clone copies them once.
 */
export function cloneSize(value: unknown): number {
  if (typeof value !== "object" || value === null) return primitiveSize(value);
  const nested = busy;
  const seen = nested ? new Seen() : sharedSeen;
  const stack = nested ? [] : sharedStack;
  busy = true;
  try {
    return walk(value, seen, stack);
  } catch {
    return UNKNOWN_SIZE;
  } finally {
    seen.clear();
    stack.length = 0;
    busy = nested;
  }
}

function primitiveSize(value: unknown): number {
  switch (typeof value) {
    case "string":
      return value.length + 2;
    case "number":
      return 8;
    case "boolean":
      return 5;
    case "bigint":
      return 8 + Math.ceil(value.toString(16).length / 2);
    default:
      return 4; // null, undefined; functions and symbols do not clone (the post fails)
  }
}

function walk(root: object, seen: Seen, stack: unknown[]): number {
  let bytes = 0;
  stack.push(root);
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== "object" || v === null) {
      bytes += primitiveSize(v);
      continue;
    }
    if (seen.visit(v)) continue;
    bytes += 2;
    if (Array.isArray(v)) bytes += arraySize(v as unknown[], stack);
    else if (Object.getPrototypeOf(v) === Object.prototype) {
      const obj = v as Record<string, unknown>;
      for (const k of Object.keys(obj)) {
        bytes += k.length + 3;
        stack.push(obj[k]);
      }
    } else bytes += otherSize(v, seen, stack);
  }
  return bytes;
}

/**
 * An array's own bytes, its entries pushed. Holes cost structured clone next to nothing, and an array of length 2^32 - 1
 * with a few entries is a valid value: walking every index took seconds and gigabytes, and past V8's array limit
 * aborted the process. So after SPARSE_HOLES holes the rest is walked by its own keys (only the entries it holds).
 */
function arraySize(arr: unknown[], stack: unknown[]): number {
  const n = arr.length;
  let holes = 0;
  for (let i = 0; i < n; i++) {
    if (i in arr) stack.push(arr[i]);
    else if (++holes > SPARSE_HOLES) return i + keyedEntries(arr, i, stack);
  }
  return n - holes;
}

/** The entries of `arr` at index `from` and above, by its own keys (a sparse array's are few); their count. */
function keyedEntries(arr: unknown[], from: number, stack: unknown[]): number {
  let count = 0;
  for (const k of Object.keys(arr)) {
    const i = Number(k);
    if (!(i >= from)) continue; // below `from` (walked already), or a named property structured clone ignores
    stack.push(arr[i]);
    count++;
  }
  return count;
}

/** Anything but a plain object or array (apart, so the walk's common path stays small for the optimizer). */
function otherSize(v: object, seen: Seen, stack: unknown[]): number {
  // Structured clone copies the whole buffer a view looks into, once per buffer.
  if (ArrayBuffer.isView(v)) return seen.visit(v.buffer) ? 0 : v.buffer.byteLength;
  if (v instanceof ArrayBuffer) return v.byteLength;
  if (v instanceof Map) {
    for (const [k, x] of v) stack.push(k, x);
    return 0;
  }
  if (v instanceof Set) {
    for (const x of v) stack.push(x);
    return 0;
  }
  if (v instanceof Date) return 8;
  // Another object (null prototype, a class instance, an Error): structured clone copies its own enumerable fields.
  let bytes = 0;
  const obj = v as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    bytes += k.length + 3;
    stack.push(obj[k]);
  }
  return bytes;
}
