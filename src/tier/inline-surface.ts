/**
 * What every inline tier (kv.ts, snapshot.ts, append-log.ts) shares around its core: how it starts (backend and
 * options checked, the codec defaulted to JSON, its value rule on the core) and the surface that holds its name,
 * cadence options as passed, codec name, and the lifecycle calls straight to the core. Each tier adds only its own
 * calls (save, load, ...), which stay plain closures on the returned object: nothing is added to the save path.
 */
import { jsonCodecFor } from "../codec/json.js";
import type { Codec } from "../codec/types.js";
import type { StorageBackend } from "../backend/types.js";
import { handled, type TierCore } from "./core.js";
import { validateBackend, validateTierOptions, type TierKind } from "./options.js";
import { valueCheckFor } from "./value-check.js";
import { cloneSize } from "./clone-size.js";
import type { BaseStorageTier, TierCommonOptions } from "./types.js";
import { setTierBackend } from "./store-identity.js";

/** Checks `backend` and `opts` (refused before anything is made), then makes the core with the codec. */
export function inlineCore<V, Core extends TierCore<unknown>>(
  backend: StorageBackend,
  kind: TierKind,
  opts: TierCommonOptions & { readonly codec?: Codec<V> },
  make: (codec: Codec<V>) => Core,
): { core: Core; codec: Codec<V> } {
  validateBackend(backend);
  validateTierOptions(opts, kind);
  const codec = opts.codec ?? jsonCodecFor<V>();
  const core = make(codec);
  // A codec without a value rule: its values are weighed by a walk (clone-size.ts), not the tier's average write.
  core.valueCheck = valueCheckFor(codec) ?? cloneSize;
  return { core, codec };
}

/** The tier object: the shared part (BaseStorageTier) over `core`, plus the tier's `own` calls. */
export function inlineSurface<Tier extends BaseStorageTier>(
  backend: StorageBackend,
  core: TierCore<unknown>,
  opts: TierCommonOptions,
  codecName: string,
  own: Omit<Tier, keyof BaseStorageTier>,
): Tier {
  const shared: Required<Omit<BaseStorageTier, "readConsistent" | "settleBatches">> &
    Pick<BaseStorageTier, "readConsistent" | "settleBatches"> = {
    // A getter, as the core owns the name (read-only to callers).
    get name() {
      return core.name;
    },
    debounceMs: opts.debounceMs,
    compactEvery: opts.compactEvery,
    codecName,
    flush: () => core.flush(),
    writePending: () => handled(core.writePending()),
    drained: (weight?: number) => core.drained(weight),
    rollback: () => core.rollback(),
    compact: () => handled(core.compact()),
    close: () => core.close(),
    watchRefusals: (prefix, listener) => core.watchRefusals(prefix, listener),
  };
  // Only a read-only handle: a writer's point in time would hold back its own writes (PostgreSQL refuses it).
  const consistent = backend.readOnly === true ? backend.readConsistent?.bind(backend) : undefined;
  if (consistent !== undefined) {
    shared.readConsistent = <R>(fn: () => Promise<R>): Promise<R> => {
      if (typeof fn !== "function") return Promise.reject(new TypeError("readConsistent needs a function"));
      return consistent(fn);
    };
  }
  // A writer's own batches are synchronous to its reads: only a read-only handle reads another process's half done.
  const settle = backend.readOnly === true ? backend.settleBatches?.bind(backend) : undefined;
  if (settle !== undefined) shared.settleBatches = () => settle();
  // Typed by `own`: everything else in Tier is the shared part.
  const tier = Object.assign(shared, own) as unknown as Tier;
  setTierBackend(tier, backend); // which store it writes (graph attach tells tiers over one store apart)
  return tier;
}
