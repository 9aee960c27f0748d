/** A synchronous value <-> bytes codec. Tiers encode before `backend.write` and decode after `backend.read`. */
export interface Codec<T> {
  readonly name: string;
  readonly version: number;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
