/** Goal verdicts for the summary lines: a missed goal is reported, never thrown. */
import type { GoalResult } from "./types.js";
import { formatNumber } from "../report.js";

/** `ok` undefined means an input figure was missing. */
export function verdict(id: string, goal: string, ok: boolean | undefined, detail: string): GoalResult {
  return { id, goal, status: ok === undefined ? "not measured" : ok ? "met" : "missed", detail };
}

export function info(id: string, goal: string, detail: string): GoalResult {
  return { id, goal, status: "info", detail };
}

export function notMeasured(id: string, goal: string, why: string): GoalResult {
  return { id, goal, status: "not measured", detail: why };
}

/** `a / b`, undefined when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}

export const fmt = formatNumber;
