/**
 * CLI failures and exit codes. Every failure ends as one stderr line `error <code>: <message>` and a non-zero
 * exit, so scripts can branch on the exit code and people can read the line.
 */
import { CommanderError } from "commander";
import { terminalText } from "./output.js";

/** Exit codes (documented in the README and docs/api.md). verify uses 0 / 1 / 2 for its verdict, 5 / 6 when incomplete. */
export const EXIT = Object.freeze({
  ok: 0,
  /** verify: restorable, but restore skips damaged frames (a torn tail, or torn frames below the baseline). */
  restorable: 1,
  /** verify: restore would fail or silently lose data. */
  notRestorable: 2,
  /** Another process holds the store's writer lock. */
  locked: 3,
  /** Any other failure (missing store or graph, I/O, corrupt data, bad input file). */
  failed: 4,
  /** verify: nothing found wrong in what it read, but values over --scan-limit were not read (a baseline may be one). */
  incomplete: 5,
  /**
   * verify: both of 1 and 5: restore skips damaged frames in what it read, and values over --scan-limit were not read.
   * Its own code so that neither finding hides the other (5 stays "nothing found wrong"; 1 stays "read whole").
   */
  incompleteRestorable: 6,
  /** Bad command line (sysexits EX_USAGE; commander's own 1 would collide with verify's verdict). */
  usage: 64,
});

/** Codes the CLI itself raises; library errors keep their own `code`. */
export type CliErrorCode = "store-not-found" | "graph-not-found" | "usage" | "invalid-input" | "seq-out-of-range" | "store-unreadable";

export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    readonly code: CliErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The one line printed for `err`, and the exit code. */
export function describeFailure(err: unknown): { line: string; exitCode: number } {
  if (err instanceof CommanderError) {
    // Commander messages start with "error: "; the code replaces that prefix.
    return { line: `error usage: ${oneLine(err.message.replace(/^error:\s*/, ""))}`, exitCode: EXIT.usage };
  }
  const coded = err as { code?: unknown; message?: unknown; details?: { path?: unknown; reason?: unknown } } | null;
  // A store path whose `..` names two places (design §3.12) is a bad argument, as a file given for a file-backend
  // directory is: `usage`, exit 64 (it exited 4, "any other failure", though nothing failed).
  const badPath = coded?.code === "invalid-argument" && coded.details?.reason === "ambiguous-dotdot";
  const code = badPath ? "usage" : typeof coded?.code === "string" ? coded.code : "internal";
  const message = typeof coded?.message === "string" ? coded.message : String(err);
  const exitCode = code === "store-locked" ? EXIT.locked : code === "usage" ? EXIT.usage : EXIT.failed;
  // Node's system errors already start with their code ("ENOENT: no such file or directory, open 'x'").
  const text = message.startsWith(`${code}: `) ? message.slice(code.length + 2) : message;
  return { line: `error ${code}: ${oneLine(text)}`, exitCode };
}

/** `text` as one line a terminal shows as is (its control characters escaped: output.ts terminalText). */
function oneLine(text: string): string {
  return terminalText(text.replace(/\s*\n\s*/g, " ").trim(), true);
}
