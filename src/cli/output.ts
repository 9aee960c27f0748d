/** Writing results: lines to stdout, aligned text tables, human-readable sizes and times. */

export function printLine(text = ""): void {
  process.stdout.write(text + "\n");
}

/** Left-aligned columns separated by two spaces; `rows` may be shorter than `header`. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    widths
      .map((w, i) => (cells[i] ?? "").padEnd(w))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** "1 frame", "2 frames": a count with its noun in the right number (nouns here take a plain -s). */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** ISO time of a nanosecond wall clock (precision beyond milliseconds is dropped). */
/** A baseline's timestamp may be an exact u64 (a bigint, protocol §2.6): milliseconds need no more precision. */
export function formatTimeNs(ns: number | bigint): string {
  const d = new Date(Math.floor(Number(ns) / 1e6));
  return Number.isNaN(d.getTime()) ? String(ns) : d.toISOString();
}
