/** A child process's output read line by line (node:readline does the splitting), for tests that follow a child. */
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";

/** Calls `onLine` with each whole line `stream` gives, in order; nothing when the child has no such stream. */
export function eachLine(stream: Readable | null, onLine: (line: string) => void): void {
  if (stream === null) return;
  createInterface({ input: stream, crlfDelay: Infinity }).on("line", onLine);
}
