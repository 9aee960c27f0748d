/**
 * Which kernel thread this is, and whether a thread of this process has ended, from Linux's procfs (task 228).
 *
 * A thread is named by its kernel thread id and its start time (field 22 of /proc/<pid>/task/<tid>/stat, clock ticks
 * since boot): ids are reused once a thread ends, a start time tells the new thread from the ended one. Everything
 * here says "unknown" rather than guess: without procfs, or when /proc is another PID namespace's (its pid is not
 * `process.pid`: `unshare --pid --fork` without --mount-proc, some sandboxes; there /proc/<process.pid>/task/<tid>
 * names no thread of this process, so every other thread would look ended), no identity is given and no thread is
 * said to have ended.
 *
 * Layer 0 (base): node:fs only. Users: the shared-WAL floors (an ended thread's floors are dropped) and the file
 * store (an ended thread's temp files are swept).
 */
import { existsSync, readFileSync, readlinkSync } from "node:fs";

/** A kernel thread of this process: its id and its start time (clock ticks since boot). */
export interface KernelThread {
  readonly tid: number;
  readonly start: number;
}

/** Field 22 (starttime) of a /proc stat line; the name in field 2 may hold spaces and parentheses, so count from its end. */
function startOf(stat: string): number | undefined {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = Number(fields[19]); // fields[0] is field 3 (state)
  return Number.isSafeInteger(start) && start >= 0 ? start : undefined;
}

/** This thread's id in this process's PID namespace's /proc; undefined when that cannot be told (above). */
function ownTid(): number | undefined {
  try {
    const m = /^(\d+)\/task\/(\d+)$/.exec(readlinkSync("/proc/thread-self"));
    return m !== null && Number(m[1]) === process.pid ? Number(m[2]) : undefined;
  } catch {
    return undefined;
  }
}

/** The calling thread's kernel id, read once per thread: undefined when procfs cannot tell it (above). */
export const KERNEL_THREAD_ID: number | undefined = ownTid();

/**
 * Whether thread `tid` of the running process `pid` (this one or another) has ended: its /proc entry is gone while
 * the process's task directory is there. False when that cannot be told (no usable procfs in this thread, the
 * process not visible). Ids only, no start time: for names that carry no start time (the file store's temp files).
 */
export function processThreadEnded(pid: number, tid: number): boolean {
  if (KERNEL_THREAD_ID === undefined) return false;
  return !existsSync(`/proc/${pid}/task/${tid}`) && existsSync(`/proc/${pid}/task`);
}

let own: KernelThread | undefined;

/**
 * The calling thread's identity, undefined when procfs cannot tell it. Only an answer is kept: a read failing
 * (EMFILE: out of descriptors for a moment) is tried again at the next call, so one failure does not turn the
 * callers' checks off for the thread's life (review r235).
 */
export function currentKernelThread(): KernelThread | undefined {
  if (own === undefined && KERNEL_THREAD_ID !== undefined) {
    try {
      const start = startOf(readFileSync(`/proc/${process.pid}/task/${KERNEL_THREAD_ID}/stat`, "latin1"));
      if (start !== undefined) own = { tid: KERNEL_THREAD_ID, start };
    } catch {
      // no identity this time
    }
  }
  return own;
}

/**
 * Whether the thread `thread` of this process has ended: its /proc entry is gone while this process's task
 * directory is there, or the thread at its id started at another time (the id was reused). False when that cannot be
 * told: no usable procfs in this thread (another PID namespace's /proc too), or a read failing otherwise.
 */
export function kernelThreadEnded(thread: KernelThread): boolean {
  if (currentKernelThread() === undefined) return false;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${process.pid}/task/${thread.tid}/stat`, "latin1");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT" && (err as NodeJS.ErrnoException).code !== "ESRCH") return false;
    try {
      readlinkSync("/proc/thread-self"); // the task directory still readable: the thread, not procfs, is gone
      return true;
    } catch {
      return false;
    }
  }
  const start = startOf(stat);
  return start !== undefined && start !== thread.start;
}
