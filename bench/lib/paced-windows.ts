/**
 * Suite 1's paced rows read several windows per process, one after another, and keep the one with the median
 * main-thread CPU per change. A window of ~2,000 paced changes is ~10 ms of main-thread CPU, and on a shared 2-core
 * machine one window in five or so is preempted often enough to read 30–60 % dearer (the process's other threads
 * and other processes take the core; design §3.56): the median of a process's windows drops that window where the
 * median of three processes' single windows could not.
 */
import { usPerOp, type MeterReading } from "./meter.js";

export interface PacedWindow {
  readonly reading: MeterReading;
}

/** Main-thread CPU µs per change of a window (event-loop active time where there is no per-thread clock). */
export function mainUsPerChange(reading: MeterReading, changes: number): number | undefined {
  return usPerOp(reading.mainCpuMs, changes) ?? usPerOp(reading.eluActiveMs, changes);
}

/**
 * Runs `measure` `count` times in a row; returns the window with the median main-thread CPU per change (the upper
 * one of an even count) and every window's figure in order.
 */
export async function medianWindow<W extends PacedWindow>(
  count: number,
  measure: () => Promise<W>,
  changes: (w: W) => number,
): Promise<{ median: W; windowsUs: number[] }> {
  const windows: W[] = [];
  for (let i = 0; i < Math.max(1, count); i++) windows.push(await measure());
  const us = windows.map((w) => mainUsPerChange(w.reading, changes(w)) ?? Number.NaN);
  const order = windows.map((_, i) => i).sort((a, b) => (us[a] as number) - (us[b] as number));
  return { median: windows[order[Math.floor(order.length / 2)] as number] as W, windowsUs: us };
}
