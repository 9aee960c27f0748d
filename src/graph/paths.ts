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

