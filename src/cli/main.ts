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
import { hidePasswords } from "./store.js";
import { verifyCommand } from "./verify.js";

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
    program.addCommand(cmd.exitOverride().configureOutput({ outputError: () => undefined }));
  }
  return program;
}

async function main(argv: readonly string[]): Promise<void> {
  // A closed pipe (`| head`) is a normal end of output, not an error.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError && HELP_CODES.has(err.code)) {
      // Help or version was printed; a bare `graphrefly-storage` prints help and is a usage error.
      process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    const { line, exitCode } = describeFailure(err);
    process.stderr.write(hidePasswords(line, argv) + "\n");
    process.exitCode = exitCode;
  }
}

await main(process.argv);
