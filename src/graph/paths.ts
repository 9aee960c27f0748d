/**
 * `::` path rules for graph names, node names and mount names, plus code-point ordering.
 * Layer 4 (graph); no imports.
 */

export const PATH_SEP = "::";
/** Reserved by the reference for meta companions; never a graph, node or mount name. */
export const META_SEGMENT = "__meta__";

/** Graph name rules (docs/graph-model.md §1.1): non-empty, no `::`, not `__meta__`. */
export function checkGraphName(name: unknown): string {
  if (typeof name !== "string" || name.length === 0) throw new TypeError("graph name must be a non-empty string");
  if (name.includes(PATH_SEP)) throw new TypeError(`graph name "${name}" must not contain "::"`);
  if (name === META_SEGMENT) throw new TypeError(`graph name must not be "${META_SEGMENT}"`);
  return name;
}

/**
 * Splits a relative path into validated segments. Besides the reference rules, a segment may not start or end
 * with ":" because `a:` + `::` + `b` and `a` + `::` + `:b` would both spell `a:::b`.
 */
export function splitPath(path: unknown, arg: string): string[] {
  if (typeof path !== "string" || path.length === 0) throw new TypeError(`${arg} must be a non-empty string`);
  const segments = path.split(PATH_SEP);
  for (const seg of segments) {
    if (seg.length === 0) throw new TypeError(`${arg} "${path}" has an empty segment`);
    if (seg === META_SEGMENT) throw new TypeError(`${arg} "${path}" uses the reserved name "${META_SEGMENT}"`);
    if (seg.startsWith(":") || seg.endsWith(":")) {
      throw new TypeError(`${arg} "${path}" has a segment starting or ending with ":"`);
    }
  }
  return segments;
}

/** Joins a mount prefix ("" = root) and a relative path. */
export function joinPath(prefix: string, rel: string): string {
  return prefix === "" ? rel : prefix + PATH_SEP + rel;
}

/** Parent mount of a qualified path ("" when it is top level). Assumes a validated path. */
export function parentPath(path: string): string {
  const i = path.lastIndexOf(PATH_SEP);
  return i < 0 ? "" : path.slice(0, i);
}

/** Last segment of a qualified path. Assumes a validated path. */
export function localName(path: string): string {
  const i = path.lastIndexOf(PATH_SEP);
  return i < 0 ? path : path.slice(i + PATH_SEP.length);
}

/** True when `path` lies strictly inside mount `prefix` ("" = root contains everything). */
export function isInside(path: string, prefix: string): boolean {
  return prefix === "" || (path.length > prefix.length + 2 && path.startsWith(prefix) && path.startsWith(PATH_SEP, prefix.length));
}

/** `path` relative to mount `prefix`; caller guarantees `isInside(path, prefix)`. */
export function relativeTo(path: string, prefix: string): string {
  return prefix === "" ? path : path.slice(prefix.length + PATH_SEP.length);
}

/**
 * Code-point order. Plain `<` on JS strings is UTF-16 code-unit order, which differs only when a surrogate
 * (U+D800–DFFF, i.e. an astral character) meets a code unit in U+E000–FFFF; this remaps that case.
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) return fixup(x) - fixup(y);
      return x - y;
    }
  }
  return a.length - b.length;
}

function fixup(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  return unit + 0x2000; // surrogate: sorts above every BMP code unit
}
