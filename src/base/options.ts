/**
 * docs/design.md §3.3: an option bag's keys are checked where it reaches the library. A misspelt key (`debounce` for
 * `debounceMs`) was ignored without a word and the default ran instead (there: one fsync per save); TypeScript's
 * excess-property check catches it only for an object literal in a typed file.
 */

/**
 * Throws a TypeError naming the first key of `opts` that is not in `known`, with the known key it resembles when one
 * is close. `where` names the bag in the message (`a kv tier`, `postgresBackend`); `prefix` is the bag's path
 * (`lease.`) for a nested one.
 */
export function refuseUnknownKeys(opts: object, known: readonly string[], where: string, prefix = ""): void {
  for (const key of Object.keys(opts)) {
    if (known.includes(key)) continue;
    const near = nearestKey(key, known);
    const hint = near !== undefined ? `did you mean ${prefix}${near}?` : `options: ${known.join(", ")}`;
    throw new TypeError(`${prefix}${key} is not an option of ${where} (${hint})`);
  }
}

/**
 * The known key `key` most likely stands for: the same but for case, one starting with the other (`debounce`,
 * `debounceMs`), or a few edits away (about one in four characters); undefined when none is that close.
 */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const c = candidate.toLowerCase();
    const shorter = Math.min(k.length, c.length);
    let d: number;
    if (k === c) d = 0;
    else if (shorter >= 3 && (c.startsWith(k) || k.startsWith(c))) d = 1;
    else d = editDistance(k, c);
    const allowed = Math.max(1, Math.min(4, Math.floor(shorter / 4)));
    if (d <= allowed && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance with adjacent transpositions (one edit each). */
function editDistance(a: string, b: string): number {
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      row.push(d);
    }
    prev2 = prev;
    prev = row;
  }
  return prev[b.length]!;
}
