/**
 * The widest integer the JSON codecs carry (docs/design.md §3.36). Writing an integer of n decimal digits costs
 * superlinear time (V8's BigInt toString: 1 M digits ~0.4 s, 3 M ~2.2 s) and so does reading one (BigInt(text)),
 * paid again by every checksum of a frame holding it: a stored value with a few such integers would make every
 * restore take minutes. No real use comes near: a u64 has 20 digits, a 4096-bit key 1,234. The bound is high (one
 * such integer costs under half a second) because decode applies it too: an integer encode accepted before the bound
 * existed must stay readable, and a fold re-encodes what it read. Layer 0.
 */
import { CodecError } from "../errors.js";

/** Decimal digits (the sign not counted) of the widest integer encode writes and decode reads. */
export const MAX_INTEGER_DIGITS = 1_000_000;

/** `details.reason` of the CodecError for a wider one ("encode-failed" or "decode-failed"). */
export const INTEGER_TOO_WIDE = "integer-too-wide";

// 10^MAX_INTEGER_DIGITS is ~415 KB and ~0.1 s to compute: made only when a value's bit length cannot decide.
// 2^FITS_BITS < 10^MAX_INTEGER_DIGITS < 2^(FITS_BITS + 1), so magnitudes below 2^FITS_BITS fit and those at or
// above 2^(FITS_BITS + 1) do not.
const FITS_BITS = BigInt(Math.floor(MAX_INTEGER_DIGITS * Math.log2(10)));
const SMALL = 1n << 64n;
let bound: bigint | undefined;

/** True when `value` has more than MAX_INTEGER_DIGITS digits; linear, never writes the digits. */
export function isTooWideInteger(value: bigint): boolean {
  if (value < SMALL && value > -SMALL) return false;
  const magnitude = value < 0n ? -value : value;
  if (magnitude >> FITS_BITS === 0n) return false;
  if (magnitude >> (FITS_BITS + 1n) !== 0n) return true;
  bound ??= 10n ** BigInt(MAX_INTEGER_DIGITS);
  return magnitude >= bound;
}

/** What an encode says of a too-wide integer (the path is the caller's). */
export function tooWideMessage(): string {
  return `an integer of more than ${MAX_INTEGER_DIGITS} digits (the codecs' limit, MAX_INTEGER_DIGITS)`;
}

/** Decode's refusal of an integer text of `digits` digits, when over the limit; undefined otherwise. */
export function tooWideToken(digits: number): CodecError | undefined {
  if (digits <= MAX_INTEGER_DIGITS) return undefined;
  return new CodecError("decode-failed", `an integer of ${digits} digits: over the codecs' limit of ${MAX_INTEGER_DIGITS} (MAX_INTEGER_DIGITS)`, {
    reason: INTEGER_TOO_WIDE,
    digits,
    max: MAX_INTEGER_DIGITS,
  });
}
