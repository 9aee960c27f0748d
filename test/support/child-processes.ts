/** Ending the child processes a test started (holders of a store through their own engine, writers). */
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";

/** SIGKILLs every child of `children` still running and waits until each exited; empties the set (a test's afterEach). */
export async function killChildren(children: Set<ChildProcess>): Promise<void> {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = once(c, "exit");
      c.kill("SIGKILL");
      await gone;
    }
  }
  children.clear();
}
