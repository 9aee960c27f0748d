/** The closing summary: a two-column box table (plain text, so it reads the same on a terminal and in a log). */

export type SummaryRow = readonly [label: string, value: string] | "---";

export function renderTable(title: string, rows: readonly SummaryRow[]): string {
  const cells = rows.filter((r): r is readonly [string, string] => r !== "---");
  const w1 = Math.max(...cells.map(([l]) => l.length));
  const w2 = Math.max(title.length - w1 - 3, ...cells.map(([, v]) => v.length));
  const line = (l: string, m: string, r: string): string => `${l}${"─".repeat(w1 + 2)}${m}${"─".repeat(w2 + 2)}${r}`;
  const out = [
    `┌${"─".repeat(w1 + w2 + 5)}┐`,
    `│ ${title.padEnd(w1 + w2 + 3)} │`,
    line("├", "┬", "┤"),
  ];
  for (const row of rows) {
    if (row === "---") out.push(line("├", "┼", "┤"));
    else out.push(`│ ${row[0].padEnd(w1)} │ ${row[1].padStart(w2)} │`);
  }
  out.push(line("└", "┴", "┘"));
  return out.join("\n");
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}
