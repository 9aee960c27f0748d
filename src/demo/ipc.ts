/** Messages between the demo and the processes it spawns (over the Node IPC channel), and a spawn helper. */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export type ChildMessage =
  /** The crash child restored, attached and made its first baseline durable; it now writes until killed. */
  | { type: "started"; restoredSeq: number; baselineSeq: number; pid: number }
  /** Everything up to `seq` is durable; `digest` is the graph's digest at `seq`. */
  | { type: "ack"; seq: number; digest: string }
  /** The fresh process restored to `targetSeq`: what it found. */
  | {
      type: "verified";
      digest: string;
      finalSeq: number;
      replayedFrames: number;
      skippedFrames: number;
      restoreMs: number;
      /** finalSeq of an unbounded restore: how far the store is durable (>= the last ack). */
      durableSeq: number;
    }
  | { type: "error"; message: string };

/** The compiled entry (run.js) next to this module: the demo spawns itself in another role. */
export const ENTRY = fileURLToPath(new URL("./run.js", import.meta.url));

export function spawnRole(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [ENTRY, ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

/** Sends to the parent and resolves once the message is handed to the OS (it survives our own SIGKILL). */
export function sendToParent(msg: ChildMessage): Promise<void> {
  const send = process.send?.bind(process);
  if (send === undefined) return Promise.reject(new TypeError("this role must be started by the demo (no IPC channel)"));
  return new Promise((resolve, reject) => {
    send(msg, undefined, {}, (err: Error | null) => (err ? reject(err) : resolve()));
  });
}

/** Runs a role's body; any failure is reported to the parent and ends the process with code 1. */
export async function runRole(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    await sendToParent({ type: "error", message }).catch(() => undefined);
    console.error(message);
    process.exitCode = 1;
  }
}
