/**
 * Fast path for RFC 8785 canonical JSON: one pass that validates and writes plain JSON data. It never throws
 * and never decides an error: anything unusual (invalid content, exotic objects, deep nesting, a cycle, a
 * throwing getter) yields `undefined`, and the caller runs the reference path (strict walk + `canonicalize`),
 * which then produces the same text or the located `CodecError`. So the fast path only has to be right where
 * it answers. Layer 0.
 */
import type { BigintMode } from "./strict.js";

// Deeper values (and cycles, which are infinitely deep) go to the reference path, which detects cycles exactly.
const MAX_DEPTH = 64;
// Up to this many keys an insertion sort beats Array#sort's call overhead several times over.
const SMALL_OBJECT = 16;
// Up to this length a char loop beats a regex or JSON.stringify call; longer strings use the native calls.
const SHORT_STRING = 32;

/**
 * `"key":` for recently seen object keys. Key sets repeat across values (the same record shapes over and over),
 * and quoting + joining a key costs more than the rest of a small object's serialization. A pure function of
 * the key, so it cannot change any output; bounded in entries and key length, and simply cleared when full.
 */
const keyPrefixes = new Map<string, string>();
const KEY_CACHE_ENTRIES = 1024;
const KEY_CACHE_KEY_LENGTH = 64;

// Node >= 20 ships String.prototype.isWellFormed; the ES2022 lib typings do not declare it.
type WellFormedString = string & { isWellFormed(): boolean };

/**
 * JSON string literal of `s`, or `undefined` when `s` holds a lone surrogate (which RFC 8785 cannot encode).
 * For well-formed strings `JSON.stringify` escapes exactly what RFC 8785 escapes (`"`, `\`, U+0000–U+001F,
 * short forms where they exist, lowercase `\u00xx` otherwise), so it is the reference for the escaped case.
 */
export function quoteJsonString(s: string): string | undefined {
  const n = s.length;
  if (n <= SHORT_STRING) {
    let plain = true;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      // Quote, backslash, controls, and any surrogate half (pairs are fine but are checked by the slow branch).
      if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) {
        plain = false;
        break;
      }
    }
    if (plain) return `"${s}"`;
  }
  return (s as WellFormedString).isWellFormed() ? JSON.stringify(s) : undefined;
}

/**
 * RFC 8785 text of `value` under the strict rules (DESIGN §3.2), or `undefined` when the reference path must
 * decide. Identical to `canonicalize(prepareJsonValue(value, bigints))` wherever it answers.
 */
export function fastCanonicalJson(value: unknown, bigints: BigintMode): string | undefined {
  try {
    return valueText(value, bigints, 0);
  } catch {
    // A getter or proxy trap threw: the reference path reads the value again and reports where.
    return undefined;
  }
}

function valueText(value: unknown, bigints: BigintMode, depth: number): string | undefined {
  switch (typeof value) {
    case "string":
      return quoteJsonString(value);
    case "number":
      // ES Number::toString is exactly RFC 8785's number form (and writes -0 as 0).
      return Number.isFinite(value) ? String(value) : undefined;
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return bigints === "tag" ? bigintTagText(value) : undefined;
    case "object":
      if (value === null) return "null";
      if (depth >= MAX_DEPTH) return undefined;
      return Array.isArray(value)
        ? arrayText(value as unknown[], bigints, depth + 1)
        : objectText(value as Record<string, unknown>, bigints, depth + 1);
    default:
      return undefined;
  }
}

/** `{"$bigint":"<radix-10>"}`, the tag the strict walk substitutes (protocol §2.3). */
function bigintTagText(value: bigint): string | undefined {
  // toString() rather than String(): the walk calls the method, so a patched one must give the same text.
  const digits: unknown = value.toString();
  const quoted = typeof digits === "string" ? quoteJsonString(digits) : undefined;
  return quoted === undefined ? undefined : `{"$bigint":${quoted}}`;
}

function arrayText(arr: unknown[], bigints: BigintMode, depth: number): string | undefined {
  // Same plain-data rules as the strict walk: no subclasses, no toJSON (canonicalize would call it).
  if (Object.getPrototypeOf(arr) !== Array.prototype || typeof (arr as { toJSON?: unknown }).toJSON === "function") {
    return undefined;
  }
  const n = arr.length;
  if (n === 0) return "[]";
  // A hole or undefined item reads as undefined, which valueText refuses (the walk rejects it too).
  let out = valueText(arr[0], bigints, depth);
  if (out === undefined) return undefined;
  for (let i = 1; i < n; i++) {
    const item = valueText(arr[i], bigints, depth);
    if (item === undefined) return undefined;
    out += "," + item;
  }
  return `[${out}]`;
}

function objectText(obj: Record<string, unknown>, bigints: BigintMode, depth: number): string | undefined {
  const proto: unknown = Object.getPrototypeOf(obj);
  if ((proto !== Object.prototype && proto !== null) || typeof obj.toJSON === "function") return undefined;
  const keys = sortedKeys(obj);
  const n = keys.length;
  let out = "";
  for (let i = 0; i < n; i++) {
    const key = keys[i] as string;
    // Checked even when the value is skipped: the walk rejects a lone-surrogate key regardless of its value.
    const prefix = keyPrefix(key);
    if (prefix === undefined) return undefined;
    const item = obj[key];
    if (item === undefined) continue;
    const itemText = valueText(item, bigints, depth);
    if (itemText === undefined) return undefined;
    out += out === "" ? prefix + itemText : "," + prefix + itemText;
  }
  return `{${out}}`;
}

/** `"key":`, or `undefined` for a key holding a lone surrogate. */
function keyPrefix(key: string): string | undefined {
  const cached = keyPrefixes.get(key);
  if (cached !== undefined) return cached;
  const quoted = quoteJsonString(key);
  if (quoted === undefined) return undefined;
  const prefix = quoted + ":";
  if (key.length <= KEY_CACHE_KEY_LENGTH) {
    if (keyPrefixes.size >= KEY_CACHE_ENTRIES) keyPrefixes.clear();
    keyPrefixes.set(key, prefix);
  }
  return prefix;
}

/**
 * Own enumerable keys in UTF-16 code-unit order (RFC 8785; `<` on strings and `Array#sort` both compare code
 * units, and keys are distinct, so any correct sort gives the same order). Keys often arrive sorted already.
 */
function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  const n = keys.length;
  if (n > SMALL_OBJECT) {
    for (let i = 1; i < n; i++) {
      if (!((keys[i - 1] as string) < (keys[i] as string))) return keys.sort();
    }
    return keys;
  }
  for (let i = 1; i < n; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    if (!((keys[j] as string) > key)) continue;
    do {
      keys[j + 1] = keys[j] as string;
      j--;
    } while (j >= 0 && (keys[j] as string) > key);
    keys[j + 1] = key;
  }
  return keys;
}
