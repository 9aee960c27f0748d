/** The one test for "a plain JSON-like object" that parsers of stored and user input share. */

/** An object that is not null and not an array (a JSON object, or an options bag). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
