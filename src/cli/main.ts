#!/usr/bin/env node
/**
 * `graphrefly-storage`: look inside, check, compact, export and import stores without writing code.
 * Each command lives in its own module; this file wires them up and turns every failure into one line.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { describeFailure, EXIT } from "./errors.js";
import { compactCommand } from "./compact.js";
import { exportCommand } from "./export.js";
import { framesCommand } from "./frames.js";
import { importCommand } from "./import.js";
import { inspectCommand } from "./inspect.js";
import { statsCommand } from "./stats.js";
import { refuseRepeatedOptions } from "./options.js";
import { hidePasswords } from "./store.js";
import { verifyCommand } from "./verify.js";

/** Options that collect every value given (`compact --forget-store A --forget-store B`). */
const REPEATABLE: ReadonlySet<string> = new Set(["forget-store"]);

const HELP_CODES: ReadonlySet<string> = new Set(["commander.help", "commander.helpDisplayed", "commander.version"]);

function packageVersion(): string {
  // dist/src/cli/main.js → the package root is three levels up.
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: unknown };
  return typeof pkg.version === "string" ? pkg.version : "0.0.0";
}

function buildProgram(): Command {
  const program = new Command("graphrefly-storage")
    .description(
      "inspect, verify, compact, export and import graphrefly-storage stores (SQLite files, file-backend directories, or PostgreSQL stores: postgres://user@host/db?store=NAME)",
    )
    .version(packageVersion())
    .showHelpAfterError(false)
    .exitOverride()
    // Commander's own error text is replaced by our one-line form (see describeFailure).
    .configureOutput({ outputError: () => undefined });
  for (const cmd of [
    inspectCommand(),
    verifyCommand(),
    framesCommand(),
    compactCommand(),
    exportCommand(),
    importCommand(),
    statsCommand(),
  ]) {
    program.addCommand(refuseRepeatedOptions(cmd, REPEATABLE).exitOverride().configureOutput({ outputError: () => undefined }));
  }
  return program;
}

async function main(argv: readonly string[]): Promise<void> {
  // A failing stderr (closed, a full disk) loses only messages: it must not turn into an uncaught exception, whose
  // exit 1 would read as verify's "restorable" (review r309 F1). The exit code stays the command's.
  process.stderr.on("error", () => undefined);
  // A closed pipe (`| head`) is a normal end of output, not an error.
  let outputFailed = false;
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    // Any other failure (ENOSPC on /dev/full or a full disk, EIO) lost output: that is a failed run, never a verdict.
    // It was rethrown as an uncaught exception: a stack trace and exit 1, verify's "restorable" (review r309 F1).
    // The command runs on to its end (a writing command releases its lock as usual); the exit code is the I/O one.
    if (outputFailed) return;
    outputFailed = true;
    const code = typeof err.code === "string" ? err.code : "internal";
    const reason = err.message.startsWith(`${code}: `) ? err.message.slice(code.length + 2) : err.message;
    const { line } = describeFailure(Object.assign(new Error(`cannot write output: ${reason}`), { code }));
    process.stderr.write(line + "\n");
    process.exitCode = EXIT.failed;
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError && HELP_CODES.has(err.code)) {
      // Help or version was printed; a bare `graphrefly-storage` prints help and is a usage error.
      process.exitCode = outputFailed ? EXIT.failed : err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    const { line, exitCode } = describeFailure(err);
    process.stderr.write(hidePasswords(line, argv) + "\n");
    process.exitCode = exitCode;
  }
  // The verdict a command set would claim output that was never written.
  if (outputFailed) process.exitCode = EXIT.failed;
}

await main(process.argv);
