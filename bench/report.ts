/** Renders suite results as Markdown tables (paste-ready for the README) and writes latest.json. */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Cell, Column, GoalResult, SuiteResult } from "./lib/types.js";
import type { MachineFacts } from "./lib/machine.js";

export interface RunReport {
  readonly startedAt: string;
  readonly mode: "quick" | "full";
  readonly durationMs: number;
  readonly command: string;
  readonly machine: MachineFacts;
  readonly packages: Readonly<Record<string, string>>;
  readonly git: { commit: string; dirty: boolean } | undefined;
  readonly suites: readonly SuiteResult[];
  /** Every goal of every suite, in suite order (the summary lines). */
  readonly summary: ReadonlyArray<GoalResult & { suite: number }>;
}

export function formatNumber(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "—";
  const a = Math.abs(n);
  if (a >= 1000) return Math.round(n).toLocaleString("en-US");
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  if (a === 0) return "0";
  return n.toPrecision(2);
}

function formatCell(value: Cell, kind: Column["kind"]): string {
  if (typeof value === "string") return value;
  if (value === undefined) return "—";
  switch (kind) {
    case "ratio":
      return `${formatNumber(value)}×`;
    case "percent":
      return `${value.toFixed(0)}%`;
    default:
      return formatNumber(value);
  }
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|");
}

export function renderTable(columns: readonly Column[], rows: readonly Record<string, Cell>[]): string {
  const head = `| ${columns.map((c) => escapeCell(c.label)).join(" | ")} |`;
  const rule = `|${columns.map((c) => (c.kind === "text" || c.kind === undefined ? " --- " : " ---: ")).join("|")}|`;
  const body = rows.map((r) => `| ${columns.map((c) => escapeCell(formatCell(r[c.key], c.kind ?? "text"))).join(" | ")} |`);
  return [head, rule, ...body].join("\n");
}

const STATUS_MARK: Readonly<Record<GoalResult["status"], string>> = {
  met: "MET",
  missed: "MISSED",
  "not measured": "NOT MEASURED",
  info: "INFO",
};

export function renderGoal(g: GoalResult): string {
  return `- **${STATUS_MARK[g.status]}** ${g.goal}: ${g.detail}`;
}

export function renderSuite(s: SuiteResult): string {
  const parts = [`### ${s.id}. ${s.title}`, ""];
  for (const line of s.legend) parts.push(`> ${line}`);
  if (s.legend.length > 0) parts.push("");
  if (s.rows.length > 0) parts.push(renderTable(s.columns, s.rows), "");
  if (s.error !== undefined) parts.push(`**Suite failed:** ${s.error}`, "");
  for (const g of s.goals) parts.push(renderGoal(g));
  parts.push("", `_(${(s.durationMs / 1000).toFixed(1)} s)_`);
  return parts.join("\n");
}

export function renderHeader(r: Pick<RunReport, "mode" | "machine" | "packages" | "git" | "startedAt">): string {
  const m = r.machine;
  const peers = ["better-sqlite3", "lmdb", "classic-level", "tinybench"].map((p) => `${p} ${r.packages[p] ?? "?"}`).join(", ");
  const git = r.git ? `${r.git.commit.slice(0, 10)}${r.git.dirty ? " (dirty)" : ""}` : "unknown";
  return [
    `## graphrefly-storage benchmarks (${r.mode} run, ${r.startedAt})`,
    "",
    `Node ${m.node} on ${m.platform}/${m.arch}, ${m.cpus}× ${m.cpuModel}, ${Math.round(m.totalMemMb / 1024)} GiB; ` +
      `temp dir ${m.tmpdir} (${m.tmpdirFs}); main-thread CPU from ${m.mainThreadCpuSource}; load average ${m.loadAvg.join(" / ")} at start; commit ${git}.`,
    `Peers: ${peers}.`,
  ].join("\n");
}

export function renderSummary(summary: RunReport["summary"]): string {
  if (summary.length === 0) return "";
  return ["## Summary", "", ...summary.map((g) => renderGoal({ ...g, goal: `[${g.suite}] ${g.goal}` }))].join("\n");
}

export function writeReport(path: string, report: RunReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(report, null, 2) + "\n");
}
