/**
 * openStorageEngine's options, checked when the engine opens (docs/design.md §3.3, as tier options are): a handler
 * that is not a function was called inside a try and its TypeError swallowed, so every background failure went
 * unheard; an autoCompact rule of the wrong shape ran on every commit (everyFrames -1) or never (a typo).
 */
import { refuseUnknownKeys } from "../base/options.js";
import { isRecord } from "../base/records.js";
import { described } from "../tier/options.js";
import { validTurnRingBytes } from "./ring.js";

/** StorageEngineOptions' keys (engine.ts). */
const ENGINE_OPTIONS = [
  "threads",
  "idleTimeoutMs",
  "synchronous",
  "onError",
  "onRecovered",
  "resourceLimits",
  "autoCompact",
  "maxPendingBytes",
  "watchdogMs",
  "closeTimeoutMs",
  "turnRingBytes",
  "idleStoreCloseMs",
  "checkpointThread",
];

export function validateEngineOptions(opts: unknown): void {
  if (!isRecord(opts)) throw new TypeError(`engine options must be an object, got ${described(opts)}`);
  refuseUnknownKeys(opts, ENGINE_OPTIONS, "openStorageEngine");
  if (opts.threads !== undefined && typeof opts.threads !== "number") throw new TypeError(`threads must be a number, got ${described(opts.threads)}`);
  for (const key of ["onError", "onRecovered"] as const) {
    if (opts[key] !== undefined && typeof opts[key] !== "function") throw new TypeError(`${key} must be a function, got ${described(opts[key])}`);
  }
  const idle = opts.idleTimeoutMs;
  if (idle !== undefined && (typeof idle !== "number" || Number.isNaN(idle) || idle < 0)) {
    throw new RangeError(`idleTimeoutMs must be a number of milliseconds >= 0 (or Infinity), got ${described(idle)}`);
  }
  const idleStore = opts.idleStoreCloseMs;
  if (idleStore !== undefined && (typeof idleStore !== "number" || Number.isNaN(idleStore) || idleStore < 0)) {
    throw new RangeError(`idleStoreCloseMs must be a number of milliseconds >= 0 (or Infinity), got ${described(idleStore)}`);
  }
  const limits = opts.resourceLimits;
  if (limits !== undefined) {
    if (!isRecord(limits)) throw new TypeError(`resourceLimits must be an object, got ${described(limits)}`);
    for (const [k, v] of Object.entries(limits)) {
      refuseUnknownKeys({ [k]: v }, ["maxOldGenerationSizeMb", "maxYoungGenerationSizeMb"], "resourceLimits", "resourceLimits.");
      if (v !== undefined && (typeof v !== "number" || !(v > 0))) throw new RangeError(`resourceLimits.${k} must be a number of MB > 0, got ${described(v)}`);
    }
  }
  if (opts.checkpointThread !== undefined && typeof opts.checkpointThread !== "boolean") {
    throw new TypeError(`checkpointThread must be a boolean, got ${described(opts.checkpointThread)}`);
  }
  validateAutoCompact(opts.autoCompact);
  if (opts.turnRingBytes !== undefined && !validTurnRingBytes(opts.turnRingBytes)) {
    throw new RangeError(`turnRingBytes must be 0 (off) or a power of two from 1024 to 2^30, got ${described(opts.turnRingBytes)}`);
  }
}

function validateAutoCompact(auto: unknown): void {
  if (auto === undefined) return;
  if (!isRecord(auto)) throw new TypeError(`autoCompact must be an object { everyFrames?, everyBytes?, keepFrames? }, got ${described(auto)}`);
  for (const [k, v] of Object.entries(auto)) {
    refuseUnknownKeys({ [k]: v }, ["everyFrames", "everyBytes", "keepFrames"], "autoCompact", "autoCompact.");
    if (v === undefined) continue;
    if (typeof v !== "number") throw new TypeError(`autoCompact.${k} must be a number, got ${described(v)}`);
    const least = k === "keepFrames" ? 0 : 1;
    if (!Number.isSafeInteger(v) || v < least) throw new RangeError(`autoCompact.${k} must be an integer >= ${least}, got ${v}`);
  }
  if (auto.everyFrames === undefined && auto.everyBytes === undefined) throw new RangeError("autoCompact needs everyFrames or everyBytes (without either it never runs)");
}
