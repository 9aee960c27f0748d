/** tinybench plumbing shared by the suites: budgets, per-task latency figures, batched sub-µs timing. */
import { Bench, type FnReturnedObject, type Task } from "tinybench";

export interface Budget {
  /** Time budget per task (ms); a task also runs at least `iterations` times. */
  readonly time: number;
  readonly iterations: number;
  readonly warmupTime: number;
  readonly warmupIterations: number;
}

export function newBench(name: string, budget: Budget): Bench {
  return new Bench({
    name,
    time: budget.time,
    iterations: budget.iterations,
    warmupTime: budget.warmupTime,
    warmupIterations: budget.warmupIterations,
    // A failing task must fail its suite loudly, not print an "errored" row.
    throws: true,
    timestampProvider: "hrtimeNow",
  });
}

/** Latency of one tinybench task, in the unit its samples were recorded in (ms). */
export interface Latency {
  readonly samples: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Relative margin of error of the mean, percent. */
  readonly rme: number;
}

export function latencyOf(task: Task): Latency {
  const r = task.result;
  if (r.state !== "completed" && r.state !== "aborted-with-statistics") {
    const why = r.state === "errored" ? r.error.message : r.state;
    throw new Error(`bench task "${task.name}" has no statistics (${why})`);
  }
  const l = r.latency;
  return { samples: l.samplesCount, meanMs: l.mean, p50Ms: l.p50, p99Ms: l.p99, maxMs: l.max, rme: l.rme };
}

/** Defeats dead-code elimination of results the timed loops compute and drop. */
export const sink = { n: 0 };

/**
 * A task body that runs `fn` `inner` times per sample and records the mean per call (README "Iteration cost"):
 * a single call of a µs-scale function is below the timer's useful resolution.
 */
export function batched(inner: number, fn: (i: number) => number): () => FnReturnedObject {
  let next = 0;
  return () => {
    const start = performance.now();
    let acc = 0;
    for (let k = 0; k < inner; k++) acc += fn(next++);
    const elapsed = performance.now() - start;
    sink.n += acc;
    return { overriddenDuration: elapsed / inner, overriddenIterationCost: elapsed };
  };
}
