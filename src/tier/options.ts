import { refuseUnknownKeys } from "../base/options.js";
import { isRecord } from "../base/records.js";
import type { StorageBackend } from "../backend/types.js";
import type { TierCommonOptions } from "./types.js";

/** How a value was given, for messages: `a string ("10")`, `undefined`, `an array`. */
export function described(v: unknown): string {
  if (v === undefined) return "undefined";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `a string (${JSON.stringify(v.length > 30 ? `${v.slice(0, 30)}…` : v)})`;
  if (typeof v === "number" || typeof v === "boolean") return `${typeof v} ${String(v)}`;
  return /^[aeiou]/.test(typeof v) ? `an ${typeof v}` : `a ${typeof v}`;
}


export type TierKind = "kv" | "snapshot" | "append-log";

const COMMON_OPTIONS = ["name", "debounceMs", "compactEvery", "onError", "onRecovered", "retry", "maxPendingBytes", "codec"];
/** Each kind's option keys (types.ts: KvStorageOptions, SnapshotStorageOptions, AppendLogStorageOptions). */
const TIER_OPTIONS: Readonly<Record<TierKind, readonly string[]>> = {
  kv: [...COMMON_OPTIONS, "filter"],
  snapshot: [...COMMON_OPTIONS, "filter", "keyOf"],
  "append-log": [...COMMON_OPTIONS, "keyOf", "mode", "layout"],
};

const tierName = (kind: TierKind, codecs: "object" | "module"): string =>
  codecs === "module" ? `an engine ${kind} tier` : `${kind === "append-log" ? "an" : "a"} ${kind} tier`;

/**
 * docs/design.md §3.3: a tier refuses nonsense arguments when it is created, naming what was wrong, instead of
 * failing at its first flush; a key that is none of its kind's options too (`storeKeys`: a factory's own, such as
 * `readOnly`). `codecs: "module"` also accepts `{ module }` codec references (engine tiers).
 */
export function validateTierOptions(
  opts: unknown,
  kind: TierKind,
  codecs: "object" | "module" = "object",
  storeKeys: readonly string[] = [],
): asserts opts is TierCommonOptions {
  if (!isRecord(opts)) throw new TypeError(`tier options must be an object, got ${described(opts)}`);
  refuseUnknownKeys(opts, [...TIER_OPTIONS[kind], ...storeKeys], tierName(kind, codecs));
  const { compactEvery, debounceMs, name, onError } = opts;
  if (compactEvery !== undefined) {
    if (typeof compactEvery !== "number") throw new TypeError(`compactEvery must be a number, got ${described(compactEvery)}`);
    if (!Number.isInteger(compactEvery) || compactEvery < 1) {
      throw new RangeError(`compactEvery must be an integer >= 1, got ${String(compactEvery)}`);
    }
  }
  if (debounceMs !== undefined) {
    if (typeof debounceMs !== "number") throw new TypeError(`debounceMs must be a number of milliseconds, got ${described(debounceMs)}`);
    if (!Number.isFinite(debounceMs) || debounceMs < 0) throw new RangeError(`debounceMs must be a finite number >= 0, got ${String(debounceMs)}`);
  }
  if (name !== undefined && typeof name !== "string") throw new TypeError(`name must be a string, got ${described(name)}`);
  for (const fn of ["filter", "keyOf"] as const) {
    if (opts[fn] !== undefined && typeof opts[fn] !== "function") throw new TypeError(`${fn} must be a function, got ${described(opts[fn])}`);
  }
  if (onError !== undefined && typeof onError !== "function") throw new TypeError(`onError must be a function, got ${described(onError)}`);
  if (opts.onRecovered !== undefined && typeof opts.onRecovered !== "function") {
    throw new TypeError(`onRecovered must be a function, got ${described(opts.onRecovered)}`);
  }
  if (opts.maxPendingBytes !== undefined) validateMaxPendingBytes(opts.maxPendingBytes);
  validateRetry(opts.retry);
  const codec = opts.codec;
  if (codec !== undefined) {
    const isCodec = isRecord(codec) && typeof codec.encode === "function" && typeof codec.decode === "function" && typeof codec.name === "string";
    const isModuleRef = codecs === "module" && isRecord(codec) && typeof codec.module === "string";
    if (!isCodec && !isModuleRef) {
      const shape = codecs === "module" ? "a Codec ({ name, version, encode, decode }) or { module, export? }" : "a Codec ({ name, version, encode, decode })";
      throw new TypeError(`codec must be ${shape}, got ${described(codec)}`);
    }
    // The worker import()s it from the library's own files: a relative specifier would find a file there, or none.
    if (isModuleRef && !isCodec && /^\.\.?(\/|$)/.test(codec.module as string)) {
      throw new TypeError(
        `codec.module must be an absolute file: URL or a package name, got the relative ${JSON.stringify(codec.module)} (use new URL(${JSON.stringify(codec.module)}, import.meta.url).href)`,
      );
    }
  }
  // An engine tier hears the engine's handlers and bound: one given here would be ignored without a word.
  if (codecs === "module") {
    for (const key of ENGINE_LEVEL_OPTIONS) {
      if (opts[key] !== undefined) throw new TypeError(`${key} of an engine tier is set on the engine: pass it to openStorageEngine()`);
    }
  }
}

/** Options an engine tier takes from its engine (EngineLevel in docs/api.md, less the codec, which it may set). */
const ENGINE_LEVEL_OPTIONS = ["onError", "onRecovered", "maxPendingBytes"] as const;

/**
 * The store options of the file and SQLite tier factories (`readOnly`, `sqlite`). A backend option given beside them
 * instead of inside `sqlite` (`{ synchronous: "NORMAL" }`) would be dropped silently, leaving the default in force.
 */
export function validateStoreTierOptions(opts: unknown, store: "file" | "sqlite"): void {
  if (!isRecord(opts)) return; // validateTierOptions says what is wrong with it
  if (store === "sqlite") {
    if (opts.sqlite !== undefined && !isRecord(opts.sqlite)) {
      throw new TypeError(`sqlite must be an object of sqliteBackend options ({ synchronous?, lock?, readOnly? }), got ${described(opts.sqlite)}`);
    }
    for (const key of ["synchronous", "lock"] as const) {
      if (opts[key] !== undefined) throw new TypeError(`${key} is an option of the SQLite backend: pass it as { sqlite: { ${key} } }`);
    }
  } else if (opts.lock !== undefined || opts.sqlite !== undefined) {
    throw new TypeError(`${opts.lock !== undefined ? "lock" : "sqlite"} is not an option of a file store's tier (its lock follows readOnly)`);
  }
}

/** A bound on pending bytes: a positive number (Infinity turns backpressure off). */
export function validateMaxPendingBytes(v: unknown): asserts v is number {
  if (typeof v !== "number") throw new TypeError(`maxPendingBytes must be a number of bytes, got ${described(v)}`);
  if (Number.isNaN(v) || v <= 0) throw new RangeError(`maxPendingBytes must be a number > 0, got ${String(v)}`);
}

function validateRetry(retry: unknown): void {
  if (retry === undefined) return;
  if (!isRecord(retry)) throw new TypeError(`retry must be an object { initialMs?, maxMs? }, got ${described(retry)}`);
  refuseUnknownKeys(retry, ["initialMs", "maxMs"], "a tier's retry", "retry.");
  for (const k of ["initialMs", "maxMs"] as const) {
    const v = retry[k];
    if (v === undefined) continue;
    if (typeof v !== "number") throw new TypeError(`retry.${k} must be a number of milliseconds, got ${described(v)}`);
    if (!Number.isFinite(v) || v <= 0) throw new RangeError(`retry.${k} must be a finite number > 0, got ${String(v)}`);
  }
  if (typeof retry.initialMs === "number" && typeof retry.maxMs === "number" && retry.maxMs < retry.initialMs) {
    throw new RangeError(`retry.maxMs (${retry.maxMs}) must be >= retry.initialMs (${retry.initialMs})`);
  }
}

/** A tier's backend must be a StorageBackend; anything else is refused at creation with what it was. */
export function validateBackend(backend: unknown): asserts backend is StorageBackend {
  if (!isRecord(backend) || typeof backend.read !== "function" || typeof backend.write !== "function") {
    throw new TypeError(`backend must be a StorageBackend (an object with read() and write()), got ${described(backend)}`);
  }
}
