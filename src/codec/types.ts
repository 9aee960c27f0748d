/** A synchronous value <-> bytes codec. Tiers encode before `backend.write` and decode after `backend.read`. */
export interface Codec<T> {
  readonly name: string;
  readonly version: number;
  /** Returns bytes the caller owns: the codec never writes to them again (a tier keeps them for a failed write's retries). */
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
  /**
   * How the engine carries this codec's values to a store's worker, when the codec runs there: as columns (one
   * array per field) instead of one object per value, cheaper to structured-clone (docs/design.md §3.15). Optional.
   */
  readonly columns?: ColumnarTransport<T>;
}

/**
 * Values laid out as columns `C` for the hop to a worker. The main thread calls `empty` and `push`, the worker
 * `at`, each with the same codec's transport; the engine keeps the keys beside the columns and never reads `C`.
 */
export interface ColumnarTransport<T, C = unknown> {
  /** New columns holding no value (C must survive structured clone: arrays of plain data). */
  empty(): C;
  /**
   * Appends `value` to `cols` (value number n for the n-th push, from 0); false when the value does not fit the
   * columns (a field `at` would not rebuild), leaving `cols` untouched: the value then travels as it is. Throwing
   * refuses the value, as a throwing `encode` does.
   */
  push(cols: C, value: T): boolean;
  /**
   * Value `i` rebuilt from the columns, equal to the one pushed (absent optional fields stay absent); after
   * `encodeAhead`, a value the codec encodes to the same bytes (e.g. parsed back from text).
   */
  at(cols: C, i: number): T;
  /**
   * Optional: called on the main thread at the end of a turn, before `cols` cross, when the worker trails the
   * writes posted to it: may turn values into a form the worker encodes faster (walFrameCodec: each payload's
   * canonical text). No push follows it; `at` and `encoder` read both forms.
   */
  encodeAhead?(cols: C): void;
  /**
   * Optional: an encoder of the values of `cols` straight from the columns (no value rebuilt), giving for value
   * `i` the bytes or the error the codec's encoding of `at(cols, i)` gives. The bytes may be pooled
   * (`pooledBytes`), or the encoder's scratch bytes that its next call, or any other encoding on this thread,
   * overwrites: copy them before encoding anything else.
   */
  encoder?(cols: C): (i: number) => Uint8Array;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
