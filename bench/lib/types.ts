/** Shapes shared by the bench runner, its suites and the report. */

export type Cell = number | string | undefined;

/** One table column: `key` into a row, `label` as printed, `kind` chooses the number format. */
export interface Column {
  readonly key: string;
  readonly label: string;
  readonly kind?: "text" | "number" | "ratio" | "percent";
}

export type Row = Record<string, Cell>;

/** "info" = a figure the issue asks for without a target; "not measured" = its inputs were unavailable. */
export type GoalStatus = "met" | "missed" | "not measured" | "info";

export interface GoalResult {
  readonly id: string;
  readonly goal: string;
  readonly status: GoalStatus;
  readonly detail: string;
}

export interface SuiteOutput {
  readonly title: string;
  /** What an "op" and a latency sample mean in this suite's table, and how figures were taken. */
  readonly legend: readonly string[];
  readonly columns: readonly Column[];
  readonly rows: readonly Row[];
  readonly goals: readonly GoalResult[];
  /** Sizes and options the suite ran with. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Raw figures beyond the table (meter readings, per-size details), kept for latest.json. */
  readonly figures?: Readonly<Record<string, unknown>>;
  /** A part of the suite failed (the rest was still measured); the run exits non-zero. */
  readonly error?: string;
}

export interface SuiteResult extends SuiteOutput {
  readonly id: number;
  readonly durationMs: number;
}

export interface SuiteContext {
  /** Small sizes and short time budgets (the whole run under a minute). */
  readonly quick: boolean;
  /** A fresh directory under os.tmpdir(), removed when the run ends. */
  tempDir(label: string): string;
  /** Progress line on stderr (stdout carries the tables). */
  log(line: string): void;
}

export interface Suite {
  readonly id: number;
  readonly title: string;
  run(ctx: SuiteContext): Promise<SuiteOutput>;
}
