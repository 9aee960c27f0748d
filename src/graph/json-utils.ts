/**
 * JSON value helpers for the graph: the codec's value rule + private frozen copies on the way in, plain deep
 * copies on the way out, and the one deep-equality used for DATA vs RESOLVED (graph-model §6.25).
 * Layer 4 (graph).
 */
import { copyStorableJson, MAX_JSON_DEPTH, prepareJsonValue } from "../codec/strict.js";
import type { JsonValue } from "../codec/types.js";
import { CodecError } from "../errors.js";

/** True for values the strict JSON codec stores (the rule `toFrozenJson` applies). */
export function isJsonValue(value: unknown): value is JsonValue {
  try {
    assertStorable(value, "value");
    return true;
  } catch {
    return false;
  }
}

/**
 * Throws unless the strict JSON codec would store `value` (DESIGN §3.2, §3.16): the graph holds only what
 * storage can hold, so a value is refused when it enters the graph, never later by a tier. The rule is the
 * codec's own walk; the error is its CodecError('encode-failed') (`details.path` a JSON path from `$`), with
 * `what` named in the message.
 */
export function assertStorable(value: unknown, what: string): void {
  try {
    prepareJsonValue(value, "reject", "$");
  } catch (err) {
    throw named(err, what);
  }
}

/** The codec's CodecError with `what` named in its message; anything else as it is. */
function named(err: unknown, what: string): unknown {
  if (!(err instanceof CodecError)) return err;
  return new CodecError(err.code, `${what} cannot be stored: ${err.message}`, err.details, err.cause);
}

/**
 * Containers around a node's value (or meta) in a stored baseline: the record, its snapshot, `nodes`, the node's
 * slice. A WAL frame holds a value less deep, so a value that fits a baseline fits every record.
 */
const BASELINE_ENVELOPE_DEPTH = 4;

/**
 * Deepest nesting a graph value or meta may have: the codec counts depth from a record's root, so a value that
 * used all of MAX_JSON_DEPTH was acknowledged in a frame but could never be written in a baseline (compaction and
 * every later attach refused it).
 */
export const MAX_GRAPH_VALUE_DEPTH = MAX_JSON_DEPTH - BASELINE_ENVELOPE_DEPTH;

/**
 * `assertStorable` and a deep, frozen private copy, in one walk that reads each property once (-0 becomes 0 and
 * properties holding undefined are left out, as the codec writes them): the copy holds exactly the values the
 * rule accepted, whatever a getter would answer on a second read. Frozen so the graph can hand its own values to
 * derived functions without copying and without being corrupted by them. Symbol-keyed and non-enumerable
 * properties are ignored, as JSON.stringify does. Nesting is bounded by MAX_GRAPH_VALUE_DEPTH, not the codec's own.
 * With `path`, the value is named `<what>("<path>") value` in an error: built only when one is thrown, since a
 * `set` on the hot path would otherwise make that string for every write.
 */
export function toFrozenJson(value: unknown, what: string, path?: string): JsonValue {
  let copied: { copy: unknown; depth: number };
  try {
    copied = copyStorableJson(value, "$", true);
  } catch (err) {
    throw named(err, valueName(what, path));
  }
  const { copy, depth } = copied;
  if (depth > MAX_GRAPH_VALUE_DEPTH) {
    throw new CodecError(
      "encode-failed",
      `${valueName(what, path)} cannot be stored: value is nested ${depth} levels deep; a graph value may nest at most ${MAX_GRAPH_VALUE_DEPTH} (MAX_JSON_DEPTH less the ${BASELINE_ENVELOPE_DEPTH} levels of the baseline record around it)`,
      { path: "$" },
    );
  }
  if (typeof copy === "object" && copy !== null) {
    // The depth is this call's own (a getter may have set another node meanwhile); marked before it is frozen.
    if (depth <= CHECKED_DEPTH) CheckedJson.mark(copy);
    Object.freeze(copy);
  }
  return copy as JsonValue;
}

function valueName(what: string, path: string | undefined): string {
  return path === undefined ? what : `${what}("${path}") value`;
}

/** A constructor that returns the object it is given: `new` of a subclass then adds the subclass's private field to it. */
class Decorated {
  constructor(target: object) {
    return target as Decorated;
  }
}

/**
 * The mark on containers `toFrozenJson` returned: deeply frozen private copies that passed the strict JSON rule
 * ("reject"), so a tier may take them without walking them again (`isCheckedJson`). A private field: invisible to
 * every reader (keys, JSON, structured clone) and added by this module only, so it cannot be forged. Cheaper than
 * a WeakSet, whose add costs ~1 µs per short-lived value.
 */
class CheckedJson extends Decorated {
  #checked = true;

  static mark(target: object): void {
    new CheckedJson(target);
  }

  static has(value: object): boolean {
    return #checked in value;
  }
}

/**
 * Deepest nesting a checked value may have: the value rule counts depth from the stored record's root, and a
 * value is stored a few containers down (a WAL frame's envelope and payload), so deeper values are walked.
 */
const CHECKED_DEPTH = MAX_JSON_DEPTH - 8;

/**
 * True when `value` is known to pass the strict JSON rule ("reject") without a walk: a container `toFrozenJson`
 * returned (immutable, checked when it entered the graph) or a primitive that passes it. False means unknown.
 */
export function isCheckedJson(value: unknown): boolean {
  switch (typeof value) {
    case "string":
      return (value as string & { isWellFormed(): boolean }).isWellFormed();
    case "number":
      return Number.isFinite(value);
    case "boolean":
      return true;
    case "object":
      return value === null || CheckedJson.has(value);
    default:
      return false;
  }
}

/** Plain (unfrozen) deep copy of a value already known to be JSON. */
export function cloneJson<T extends JsonValue>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => cloneJson(v)) as T;
  const out: { [key: string]: JsonValue } = {};
  for (const key of Object.keys(value)) setOwn(out, key, cloneJson(value[key] as JsonValue));
  return out as T;
}

/** Structural JSON equality: key-order-insensitive, `undefined` (sentinel) equals only itself. */
export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  // Own keys by for-in, not Object.keys: no key arrays per compared object (every set and every persisted wave
  // compares a value or two).
  let keys = 0;
  for (const key in a) {
    if (!hasOwn(a, key)) continue;
    if (!hasOwn(b, key) || !jsonEqual(a[key], b[key])) return false;
    keys++;
  }
  for (const key in b) if (hasOwn(b, key) && --keys < 0) return false;
  return keys === 0;
}

const hasOwn = (obj: object, key: string): boolean => Object.prototype.hasOwnProperty.call(obj, key);

/** Assigns an own data property; plain assignment of "__proto__" would change the prototype instead. */
export function setOwn<V>(obj: Record<string, V>, key: string, value: V): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}
