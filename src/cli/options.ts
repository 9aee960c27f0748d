/** Option parsers and the options every store command shares. */
import { CommanderError, InvalidArgumentError, Option, type Command } from "commander";
import { EXIT } from "./errors.js";
import { STORE_KINDS, type PathStoreKind } from "./store.js";

export interface StoreCommandOptions {
  backend?: PathStoreKind;
}

/** Commands with a progress bar; false after `--no-progress`. */
export interface ProgressOptions {
  progress: boolean;
}

/** `--scan-limit` of the commands that list every graph of a store (docs/design.md §3.36). */
export interface ScanOptions {
  scanLimit?: number;
}

export const SCAN_LIMIT_HELP =
  "read values other than WAL frames whole, to find baselines, only up to this many bytes; larger ones are named on stderr and not read (default 67108864: 64 MiB)";

/** Commander parser for a non-negative safe integer (seqs, counts). */
export function nonNegativeInt(text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new InvalidArgumentError("must be a non-negative integer");
  }
  return Number(text);
}

export function positiveInt(text: string): number {
  const n = nonNegativeInt(text);
  if (n === 0) throw new InvalidArgumentError("must be at least 1");
  return n;
}

/** `--backend` (forces the store kind), and `--no-progress` for commands that draw a bar. */
export function withStoreOptions(cmd: Command, progressBar = true): Command {
  cmd.addOption(new Option("--backend <kind>", "store kind (default: detected from the path)").choices(STORE_KINDS));
  return progressBar ? cmd.option("--no-progress", "never draw progress bars (they are only drawn when stderr is a terminal)") : cmd;
}

/**
 * Makes an option given twice (`--graph a --graph b`) a usage error: commander keeps the last value without a word,
 * so a script that appended a flag to a command line read another graph than the one it named first. Commander
 * has no setting for it; each option's own event (emitted once per occurrence, after commander took the value) counts.
 * Options in `repeatable` (compact's `--forget-store`, which collects its values) are left alone.
 */
export function refuseRepeatedOptions(cmd: Command, repeatable: ReadonlySet<string> = new Set()): Command {
  const given = new Map<string, unknown>();
  for (const option of cmd.options) {
    const name = option.name();
    if (repeatable.has(name)) continue;
    cmd.on(`option:${name}`, (value: unknown) => {
      if (!given.has(name)) {
        given.set(name, value);
        return;
      }
      const first = given.get(name);
      const values = typeof value === "string" && typeof first === "string" ? ` (${JSON.stringify(first)}, then ${JSON.stringify(value)})` : "";
      throw new CommanderError(EXIT.usage, "graphrefly.optionRepeated", `error: option '${option.flags}' given twice${values}: give it once`);
    });
  }
  return cmd;
}
