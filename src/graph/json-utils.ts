/**
 * JSON value helpers for the graph: strict validation + private frozen copies on the way in, plain deep copies
 * on the way out, and the one deep-equality used for DATA vs RESOLVED (docs/graph-model.md §6.25).
 * Layer 4 (graph).
 */
import type { JsonValue } from "../codec/types.js";

/** True for values JSON carries faithfully: null, booleans, strings, finite numbers, arrays, plain objects. */
export function isJsonValue(value: unknown): value is JsonValue {
  try {
    toFrozenJson(value, "value");
    return true;
  } catch {
    return false;
  }
}

/**
 * Validates `value` and returns a deep, frozen private copy (-0 becomes 0, as JSON writes it). Frozen so the
 * graph can hand its own values to derived functions without copying and without being corrupted by them.
 * Throws TypeError naming `what` and the offending location. Symbol-keyed and non-enumerable properties are
 * ignored, as JSON.stringify does.
 */
export function toFrozenJson(value: unknown, what: string): JsonValue {
  return copyIn(value, what, "", null);
}

function copyIn(value: unknown, what: string, at: string, ancestors: Set<object> | null): JsonValue {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) throw notJson(what, at, String(value));
      return value === 0 ? 0 : value;
    case "object":
      break;
    default:
      throw notJson(what, at, typeof value);
  }
  if (value === null) return null;
  const seen = ancestors ?? new Set<object>();
  if (seen.has(value)) throw notJson(what, at, "a cycle");
  seen.add(value);
  let out: JsonValue;
  if (Array.isArray(value)) {
    const arr: JsonValue[] = new Array<JsonValue>(value.length);
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) throw notJson(what, `${at}[${i}]`, "a hole in a sparse array");
      arr[i] = copyIn(value[i], what, `${at}[${i}]`, seen);
    }
    out = Object.freeze(arr) as JsonValue[];
  } else {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
      throw notJson(what, at, `a non-plain object (${typeof ctor === "string" ? ctor : "unknown class"})`);
    }
    const obj: { [key: string]: JsonValue } = {};
    const src = value as Record<string, unknown>;
    for (const key of Object.keys(src)) {
      setOwn(obj, key, copyIn(src[key], what, `${at}.${key}`, seen));
    }
    out = Object.freeze(obj);
  }
  seen.delete(value);
  return out;
}

function notJson(what: string, at: string, found: string): TypeError {
  return new TypeError(`${what} is not a JSON value: ${at === "" ? "it" : `value${at}`} is ${found}`);
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
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    if (!Object.prototype.hasOwnProperty.call(b, key) || !jsonEqual(a[key], b[key])) return false;
  }
  return true;
}

/** Assigns an own data property; plain assignment of "__proto__" would change the prototype instead. */
export function setOwn<V>(obj: Record<string, V>, key: string, value: V): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}
