/**
 * The strict validation walk run before canonical JSON (docs/design.md §3.2): one pass that rejects every value JSON
 * cannot carry faithfully and, for the bigint codec, swaps bigints for `{"$bigint": "<radix-10>"}` tags.
 * Layer 0.
 */
import { randomUUID } from "node:crypto";
import { types } from "node:util";
import { CodecError } from "../errors.js";
import { INTEGER_TOO_WIDE, isTooWideInteger, MAX_INTEGER_DIGITS, tooWideMessage } from "./integer-limit.js";

/**
 * What the walk does with a bigint. "reject" (plain JSON): a wide integer (`isWideInteger`) is written as its
 * digits, which decoding reads back as that bigint (docs/protocol.md §2.6); any other bigint is refused, since it
 * would come back as a number. "tag": every bigint becomes a `$bigint` tag (docs/protocol.md §2.3).
 */
export type BigintMode = "reject" | "tag";

/**
 * The walk's bigint policy: a `BigintMode`; "keep" (accept bigints as they are: validation only, no copies); or
 * a `BigintDigits`, which is "reject" that also swaps each accepted bigint for a placeholder string.
 */
type WalkBigints = BigintMode | "keep" | BigintDigits;

/**
 * True for a wide integer: one no JSON number writes as the same digits (beyond 2^53 and not the shortest
 * digits of a double, or 10^21 and up, which numbers write with an exponent). The only bigints plain JSON
 * carries, and the only integers it reads as bigints, so values and integer texts both round-trip exactly
 * (docs/protocol.md §2.6).
 */
export function isWideInteger(value: bigint): boolean {
  return String(Number(value)) !== String(value);
}

/**
 * Lets `canonicalize` (which cannot write a bigint) produce the text of a value holding wide integers: the
 * walk swaps each for a string with a fresh random nonce, and `restore` turns those quoted strings into the
 * digits. A stored string cannot collide with a nonce drawn after it was written.
 */
export class BigintDigits {
  private readonly nonce = randomUUID();
  private readonly found: bigint[] = [];

  placeholder(value: bigint): string {
    this.found.push(value);
    return `${this.nonce}:${this.found.length - 1}`;
  }

  restore(text: string): string {
    if (this.found.length === 0) return text;
    return text.replace(new RegExp(`"${this.nonce}:(\\d+)"`, "g"), (_m, i: string) => String(this.found[Number(i)]));
  }
}

/**
 * Deepest nesting of arrays and objects a stored value may have (a value nested this deep is stored; one level
 * more is refused with CodecError("encode-failed") and its path). Every layer that walks a value recursively
 * (this walk, canonicalize, structured clone, JSON.parse) then stays far from a stack overflow, in worker threads
 * too, so deep values get one typed answer in every mode instead of an untyped RangeError.
 */
export const MAX_JSON_DEPTH = 1000;

/**
 * Thrown inside the walk and caught by each enclosing container, which appends its own key while the stack
 * unwinds. The success path therefore never builds or tracks a path.
 */
class WalkFailure {
  /** Path segments, innermost first. */
  readonly segments: (string | number)[] = [];
  constructor(
    readonly message: string,
    readonly cause?: unknown,
    /** `details.reason` of the CodecError, for a refusal callers tell apart (MAX_INTEGER_DIGITS). */
    readonly reason?: string,
  ) {}
}

// Node >= 20 ships String.prototype.isWellFormed; the ES2022 lib typings do not declare it.
type WellFormedString = string & { isWellFormed(): boolean };
const isWellFormed = (s: string): boolean => (s as WellFormedString).isWellFormed();

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Validates `value` for canonical JSON and returns what to canonicalize: `value` itself, or (bigint "tag" mode
 * only) a copy-on-write replacement in which only the containers holding bigints are copied.
 * Throws `CodecError("encode-failed", message, { path })`; `root` names the root of that path (default `$`).
 */
export function prepareJsonValue(value: unknown, bigints: BigintMode | BigintDigits, root = "$"): unknown {
  return prepare(value, bigints, root);
}

/**
 * The value rule alone: throws exactly the CodecError("encode-failed", …, { path }) that encoding `value` with
 * jsonCodec (`bigints` "reject") or bigintJsonCodec ("tag") would throw, and returns nothing when it would
 * encode. A validation walk only (no encoding, no copies), for refusing a value where it is accepted, e.g. by
 * a tier proxy before structured clone or by a graph at set time. `root` names the root in the error's path.
 */
export function assertStorableJson(value: unknown, bigints: BigintMode = "reject", root = "$"): void {
  storableJsonSize(value, bigints, root);
}

/**
 * `assertStorableJson` that also returns about how many bytes the value's JSON takes (strings and keys by their
 * length, a few bytes per number and punctuation): a weight for backpressure where the value is accepted and
 * encoded later, elsewhere (docs/design.md §3.19). The same single walk; an estimate, never used as a length.
 */
export function storableJsonSize(value: unknown, bigints: BigintMode = "reject", root = "$"): number {
  prepare(value, bigints === "tag" ? "keep" : "reject", root);
  return lastWalkBytes;
}

/**
 * The running walk's approximate JSON bytes (`storableJsonSize`), and the last finished walk's. Each walk saves
 * and restores the count around itself, so it stays 0 between walks and a walk a getter starts inside another
 * neither resets nor inflates the outer count.
 */
let walkedBytes = 0;
let lastWalkBytes = 0;

/**
 * `prepareJsonValue(value, "reject", root)` that also copies: one walk, reading each property once, applies the
 * same rule with the same errors and builds a fresh plain copy from the values it read (properties holding
 * undefined left out, -0 as 0, wide-integer bigints kept). Validating and then copying would read every getter
 * twice, and the copy could hold a value the rule never saw. `depth` is the deepest container nesting (root
 * container: 1; 0 for a primitive). With `freeze`, every container of the copy but the root is frozen as it is
 * finished; the root is left to the caller, which may decorate it before freezing it.
 * A separate walk so the codec's own (`prepareJsonValue`, `assertStorableJson`) builds no copies.
 */
export function copyStorableJson(value: unknown, root = "$", freeze = false): { copy: unknown; depth: number } {
  if (value === undefined) throw undefinedRoot(root);
  // The spare state is taken while this walk runs, so a walk a getter starts inside it makes its own.
  const state = spareCopyState ?? { ancestors: [], deepest: 0, freeze };
  spareCopyState = undefined;
  state.deepest = 0;
  state.freeze = freeze;
  const outer = walkedBytes;
  try {
    const copy = copyValue(value, state);
    return { copy, depth: state.deepest };
  } catch (err) {
    state.ancestors.length = 0; // a walk that threw left its path on the stack
    throw walkError(err, root);
  } finally {
    walkedBytes = outer; // the primitives it walked counted (unused here)
    spareCopyState = state;
  }
}

/**
 * One copying walk's state kept for the next: a fresh one a call (the state, its ancestor stack and that stack's
 * backing store, ~120 bytes) is most of what a graph `set` allocates besides the copy itself.
 */
let spareCopyState: CopyState | undefined;

function prepare(value: unknown, bigints: WalkBigints, root: string): unknown {
  if (value === undefined) throw undefinedRoot(root);
  const outer = walkedBytes;
  walkedBytes = 0;
  try {
    return walk(value, bigints, []);
  } catch (err) {
    throw walkError(err, root);
  } finally {
    lastWalkBytes = walkedBytes;
    walkedBytes = outer;
  }
}

function undefinedRoot(root: string): CodecError {
  return new CodecError("encode-failed", `undefined cannot be encoded as JSON at ${root}`, { path: root });
}

/** The walk's failure (or a foreign error it let through) as the located CodecError("encode-failed"). */
function walkError(err: unknown, root: string): CodecError {
  const failure = err instanceof WalkFailure ? err : new WalkFailure(thrownMessage(err), err);
  const path = formatPath(root, failure.segments);
  const details = failure.reason === undefined ? { path } : { path, reason: failure.reason, max: MAX_INTEGER_DIGITS };
  return new CodecError("encode-failed", `${failure.message} at ${shortPath(path)}`, details, failure.cause);
}

/** A path as a message shows it: a value nested 1,000 deep would make a 4 KB line of a log (details.path keeps it whole). */
function shortPath(path: string): string {
  return path.length <= 240 ? path : `${path.slice(0, 120)}…(${path.length - 200} characters)…${path.slice(-80)}`;
}

function walk(value: unknown, bigints: WalkBigints, ancestors: object[]): unknown {
  switch (typeof value) {
    case "string":
      if (!isWellFormed(value)) throw new WalkFailure("string contains a lone surrogate (not valid Unicode)");
      walkedBytes += value.length + 2;
      return value;
    case "number":
      if (!Number.isFinite(value)) throw new WalkFailure(`${value} cannot be encoded as JSON`);
      walkedBytes += 8;
      return value;
    case "boolean":
      walkedBytes += 5;
      return value;
    case "bigint":
      walkedBytes += 24;
      // Before anything writes its digits (superlinear): in every mode, so a save refuses what a flush would.
      if (isTooWideInteger(value)) throw new WalkFailure(tooWideMessage(), undefined, INTEGER_TOO_WIDE);
      if (bigints === "tag") return { $bigint: value.toString() };
      if (bigints === "keep") return value;
      if (!isWideInteger(value)) {
        throw new WalkFailure(
          `bigint ${String(value)} is exactly a JSON number, which reads back as a number; store a number, or use bigintJsonCodec`,
        );
      }
      return bigints === "reject" ? value : bigints.placeholder(value);
    case "undefined":
      // Object properties holding undefined are skipped before we get here; arrays are not.
      throw new WalkFailure("undefined inside an array (JSON would silently turn it into null)");
    case "function":
      throw new WalkFailure("a function cannot be encoded as JSON");
    case "symbol":
      throw new WalkFailure("a symbol cannot be encoded as JSON");
    case "object":
      if (value === null) {
        walkedBytes += 4;
        return null;
      }
      walkedBytes += 2;
      return walkContainer(value, bigints, ancestors);
  }
}

function walkContainer(value: object, bigints: WalkBigints, ancestors: object[]): unknown {
  const isArray = checkContainer(value, ancestors);
  ancestors.push(value);
  const result = isArray
    ? walkArray(value as unknown[], bigints, ancestors)
    : walkObject(value as Record<string, unknown>, bigints, ancestors);
  ancestors.pop();
  return result;
}

/** The rule for a container about to be entered (both walks); returns whether it is an array. */
function checkContainer(value: object, ancestors: object[]): boolean {
  // A Proxy's traps decide what it looks like (and structured clone refuses it): not plain data.
  if (types.isProxy(value)) throw new WalkFailure("a Proxy is not plain JSON data (pass the plain data instead)");
  // Linear scan: ancestor chains are short in practice and this avoids a Set per encode.
  if (ancestors.includes(value)) throw new WalkFailure("cycle: value contains one of its own ancestors");
  if (ancestors.length >= MAX_JSON_DEPTH) {
    throw new WalkFailure(`value is nested deeper than ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH)`);
  }
  const isArray = Array.isArray(value);
  const proto: unknown = Object.getPrototypeOf(value);
  if (isArray ? proto !== Array.prototype : proto !== Object.prototype && proto !== null) {
    throw new WalkFailure(`${kindOf(value)} is not plain JSON data (convert it to plain objects/arrays first)`);
  }
  // canonicalize would call a hidden (non-enumerable) toJSON and encode something else entirely.
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
    throw new WalkFailure("object has a toJSON method; pass the plain data instead");
  }
  return isArray;
}

function walkArray(arr: unknown[], bigints: WalkBigints, ancestors: object[]): unknown[] {
  let out: unknown[] | undefined;
  let i = 0;
  try {
    walkedBytes += arr.length;
    for (; i < arr.length; i++) {
      const item = arr[i];
      const next = walk(item, bigints, ancestors);
      if (next !== item) {
        out ??= arr.slice();
        out[i] = next;
      }
    }
  } catch (err) {
    throw located(err, i);
  }
  return out ?? arr;
}

function walkObject(
  obj: Record<string, unknown>,
  bigints: WalkBigints,
  ancestors: object[],
): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  const keys = Object.keys(obj);
  let key = "";
  try {
    for (let k = 0; k < keys.length; k++) {
      key = keys[k] as string;
      if (!isWellFormed(key)) throw new WalkFailure("object key contains a lone surrogate (not valid Unicode)");
      const item = obj[key];
      if (item === undefined) continue;
      walkedBytes += key.length + 4;
      const next = walk(item, bigints, ancestors);
      if (next !== item) {
        // The spread copies every own key, so this assignment never reaches a "__proto__" setter.
        out ??= { ...obj };
        out[key] = next;
      }
    }
  } catch (err) {
    throw located(err, key);
  }
  return out ?? obj;
}

/** The copying walk's state, owned by one `copyStorableJson` call at a time (a getter may start another). */
interface CopyState {
  readonly ancestors: object[];
  deepest: number;
  freeze: boolean;
}

function copyValue(value: unknown, state: CopyState): unknown {
  if (typeof value !== "object" || value === null) {
    // Primitives: the codec walk's own rule ("reject" returns the value it was given).
    const v = walk(value, "reject", state.ancestors);
    return v === 0 ? 0 : v;
  }
  const { ancestors } = state;
  const isArray = checkContainer(value, ancestors);
  ancestors.push(value);
  if (ancestors.length > state.deepest) state.deepest = ancestors.length;
  const copy = isArray ? copyArray(value as unknown[], state) : copyObject(value as Record<string, unknown>, state);
  ancestors.pop();
  if (state.freeze && ancestors.length > 0) Object.freeze(copy);
  return copy;
}

/**
 * Arrays up to this length are copied into one allocated at their length: `[]` and `push` give a backing store of
 * 17 slots at the first push (~184 bytes for a 2-item array against ~64), and the graph keeps each copy until the
 * node's next write, so the slack is copied by every scavenge it survives (design §3.47). Longer arrays grow by
 * push: `new Array(n)` makes a dictionary-mode array past V8's fast-elements bound.
 */
const PRESIZED_ARRAY_MAX = 1024;

function copyArray(arr: unknown[], state: CopyState): unknown[] {
  const n = arr.length;
  let i = 0;
  if (n <= PRESIZED_ARRAY_MAX) {
    // Filled in order below, so no hole is left (a throw discards the array).
    const out = new Array<unknown>(n);
    try {
      for (; i < n; i++) out[i] = copyValue(arr[i], state);
    } catch (err) {
      throw located(err, i);
    }
    return out;
  }
  const out: unknown[] = [];
  try {
    for (; i < arr.length; i++) out.push(copyValue(arr[i], state));
  } catch (err) {
    throw located(err, i);
  }
  return out;
}

/**
 * The copy's objects are made by `new` of a function whose `prototype` is Object.prototype: the same plain object
 * as `{}` (Object.prototype, the keys assigned in the same order), but V8's slack tracking gives it room in the object
 * itself for the keys its first few copies held and a mark the graph adds to a root (`CheckedJson`), where an empty
 * literal has four slots and a fifth property allocates an out-of-object store (~65 bytes a graph `set`).
 */
const PlainObject = function (this: object) {} as unknown as new () => Record<string, unknown>;
PlainObject.prototype = Object.prototype;

function copyObject(obj: Record<string, unknown>, state: CopyState): Record<string, unknown> {
  const out = new PlainObject();
  let key = "";
  try {
    // Own enumerable keys in Object.keys's order, without its array: for-in over a plain object runs from V8's
    // enum cache, and a key a getter deletes before its turn is skipped as Object.keys's undefined read would be (an
    // inherited key of the same name is not read, unlike Object.keys + get; enumerable inherited keys never are).
    for (key in obj) {
      if (!hasOwn.call(obj, key)) continue;
      if (!isWellFormed(key)) throw new WalkFailure("object key contains a lone surrogate (not valid Unicode)");
      const item = obj[key];
      if (item === undefined) continue;
      const next = copyValue(item, state);
      // Plain assignment of "__proto__" would set the copy's prototype instead of adding a property.
      if (key === "__proto__") {
        Object.defineProperty(out, key, { value: next, writable: true, enumerable: true, configurable: true });
      } else {
        out[key] = next;
      }
    }
  } catch (err) {
    throw located(err, key);
  }
  return out;
}

const hasOwn = Object.prototype.hasOwnProperty;

/** Records `segment` on the failure; any foreign error (a throwing getter, stack overflow) becomes one. */
function located(err: unknown, segment: string | number): WalkFailure {
  const failure = err instanceof WalkFailure ? err : new WalkFailure(thrownMessage(err), err);
  failure.segments.push(segment);
  return failure;
}

function thrownMessage(err: unknown): string {
  return `reading the value threw: ${err instanceof Error ? err.message : String(err)}`;
}

function kindOf(value: object): string {
  const ctor = (Object.getPrototypeOf(value) as { constructor?: unknown } | null)?.constructor;
  if (typeof ctor === "function" && ctor.name !== "") return ctor.name;
  return Object.prototype.toString.call(value).slice(8, -1);
}

function formatPath(root: string, innermostFirst: readonly (string | number)[]): string {
  let path = root;
  for (let i = innermostFirst.length - 1; i >= 0; i--) {
    const seg = innermostFirst[i] as string | number;
    if (typeof seg === "number") path += `[${seg}]`;
    else if (IDENTIFIER.test(seg)) path += `.${seg}`;
    else path += `[${JSON.stringify(seg)}]`;
  }
  return path;
}
