/**
 * The argument rules of every tier's public calls, in one place: inline tiers (kv.ts, snapshot.ts, append-log.ts)
 * and the engine's main-thread proxies (engine/proxies.ts) both call these, so a call is refused the same way in
 * either mode. One order for a write: writable (the caller) → arguments → filter / keyOf → room (the caller) →
 * value. A write that turns out to write nothing (filtered out, no entries) is never refused for backpressure.
 * Nothing here allocates on the kv save path. The shared key rule (backend/keys.ts) runs here and nowhere else on
 * the tier side: the cores (and a store actor applying a proxy's ops) check only the backend's own rule.
 */
import { refuseUnknownKeys } from "../base/options.js";
import { isRecord } from "../base/records.js";
import { assertValidKey } from "../backend/keys.js";
import { assertBucketKey } from "./append-layout.js";
import type { AppendLoadOptions, AppendLogLayout, AppendLogMode } from "./types.js";

/** A kv save's key checks, then its filter: false when the filter drops the write. */
export function kvSaveArgs<T>(key: string, value: T, filter: ((key: string, value: T) => boolean) | undefined): boolean {
  if (typeof key !== "string") throw new TypeError(`kv key must be a string, got ${typeof key}`);
  assertValidKey(key);
  return filter === undefined || filter(key, value);
}

/**
 * A saveMany call's entries: an array of [key, value] pairs (TypeError otherwise), every key checked before the
 * filter runs (all or nothing), then the entries the filter keeps (the caller's array itself without a filter).
 */
export function kvSaveManyArgs<T>(
  entries: ReadonlyArray<readonly [string, T]>,
  filter: ((key: string, value: T) => boolean) | undefined,
): ReadonlyArray<readonly [string, T]> {
  if (!Array.isArray(entries)) throw new TypeError(`saveMany needs an array of [key, value] entries, got ${typeof entries}`);
  for (const entry of entries as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) throw new TypeError("saveMany entries must be [key, value] pairs");
    const key: unknown = entry[0];
    if (typeof key !== "string") throw new TypeError(`kv key must be a string, got ${typeof key}`);
    assertValidKey(key);
  }
  return filter === undefined ? entries : entries.filter(([key, value]) => filter(key, value));
}

/**
 * A deleteMany call's keys: an array of valid keys (TypeError / StorageError "invalid-key" otherwise), copied so a
 * caller changing its array later changes nothing queued.
 */
export function kvDeleteManyArgs(keys: unknown): string[] {
  if (!Array.isArray(keys)) throw new TypeError(`deleteMany needs an array of keys, got ${typeof keys}`);
  const copy: string[] = [];
  for (const key of keys as unknown[]) {
    if (typeof key !== "string") throw new TypeError(`kv key must be a string, got ${typeof key}`);
    assertValidKey(key);
    copy.push(key);
  }
  return copy;
}

/** docs/design.md §3.6: a record's own `name` is its key, so a fresh process finds a graph's baseline by graph name. */
export function defaultSnapshotKey(value: unknown, fallback: string): string {
  if (typeof value === "object" && value !== null) {
    let n: unknown;
    try {
      n = (value as { name?: unknown }).name;
    } catch {
      // A `name` getter or Proxy trap that throws, a revoked Proxy: save threw that raw error. The value check refuses
      // such a value (CodecError, at the flush) as a kv save of it is refused; nothing is written under this key.
      return fallback;
    }
    if (typeof n === "string") return n;
  }
  return fallback;
}

/** A snapshot save's filter, then its key (keyOf, else the record's name, else `fallback`); undefined when filtered out. */
export function snapshotSaveKey<T>(
  snapshot: T,
  opts: { readonly filter?: (snapshot: T) => boolean; readonly keyOf?: (snapshot: T) => string },
  fallback: string,
): string | undefined {
  if (opts.filter && !opts.filter(snapshot)) return undefined;
  const key = opts.keyOf ? opts.keyOf(snapshot) : defaultSnapshotKey(snapshot, fallback);
  assertValidKey(key);
  return key;
}

/**
 * An appendEntries call's array check and, with keyOf, its buckets in first-appearance order (keyOf runs once per
 * entry, on the caller's thread). Every bucket key is checked before anything is appended: all or nothing.
 * undefined = one bucket (the tier's own).
 */
export function appendBuckets<T>(entries: readonly T[], keyOf: ((entry: T) => string) | undefined): Map<string, T[]> | undefined {
  if (!Array.isArray(entries)) throw new TypeError("appendEntries expects an array");
  if (!keyOf) return undefined;
  const out = new Map<string, T[]>();
  for (const e of entries) {
    const k = keyOf(e);
    const g = out.get(k);
    if (g) g.push(e);
    else out.set(k, [e]);
  }
  for (const bucket of out.keys()) assertBucketKey(bucket);
  return out;
}

/** An append-log's mode and layout, defaulted; anything else is refused at creation. */
export function appendLogShape(opts: { readonly mode?: unknown; readonly layout?: unknown }): { mode: AppendLogMode; layout: AppendLogLayout } {
  const mode = opts.mode ?? "append";
  if (mode !== "append" && mode !== "overwrite") throw new RangeError(`mode must be "append" or "overwrite", got ${String(mode)}`);
  const layout = opts.layout ?? "segments";
  if (layout !== "segments" && layout !== "array") throw new RangeError(`layout must be "segments" or "array", got ${String(layout)}`);
  return { mode, layout };
}

/** A loadEntries call's options: an unknown key (`pagesize`) would have read every entry without a word. */
export function appendLoadArgs(opts: AppendLoadOptions | undefined): void {
  if (opts === undefined) return;
  if (!isRecord(opts as unknown)) throw new TypeError("loadEntries options must be an object { cursor?, pageSize?, keyFilter? }");
  refuseUnknownKeys(opts, ["cursor", "pageSize", "keyFilter"], "loadEntries");
}
