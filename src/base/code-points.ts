/**
 * The one string order of the project: by Unicode code point (= UTF-8 byte order = SQLite BINARY = PostgreSQL
 * COLLATE "C" on UTF-8 text), not JS's UTF-16 code-unit order. Store keys list in it and graph paths sort in it,
 * so every process and backend agrees on one order (docs/protocol.md §1).
 */

/**
 * Maps a UTF-16 code unit so that comparing mapped units gives code point order:
 * surrogates (U+D800–DFFF, parts of code points ≥ U+10000) must sort after U+E000–FFFF.
 */
function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

/** Total order by code point; negative, 0 or positive as `Array.prototype.sort` expects. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    // At the first difference both strings agree on everything before, so in well-formed
    // strings either both units are high surrogates or neither is a low surrogate.
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}
