/**
 * Checks of an import file beyond "a graph snapshot": what JSON.parse and the snapshot's shape let through, but
 * no one meant. Kept out of the codec's decode path: a store's own records never need them, and they cost a
 * second parse of the file.
 */
import { parse as parseLossless } from "lossless-json";
import { CodecError } from "../errors.js";
import { CliError } from "./errors.js";

/**
 * Throws CodecError `duplicate-key` when one object of the file holds a key twice with different values.
 * JSON.parse keeps the last silently (review r309 F7): which of the two the author meant cannot be told, and
 * `export` never writes such a file. A key repeated with the same value changes nothing and is let through.
 */
export function assertNoDuplicateKeys(bytes: Uint8Array, file: string): void {
  // Numbers stay their text (lossless-json's LosslessNumber), so values compare exactly. The decoder drops a BOM,
  // as parseJsonBytes does. Runs after the file parsed and passed the depth rule (this parser recurses).
  try {
    parseLossless(new TextDecoder().decode(bytes), null, {
      onDuplicateKey: ({ key, position }) => {
        throw new CodecError(
          "duplicate-key",
          `${file}: key ${JSON.stringify(key)} appears twice in one object with different values (at character ${position}): which one is meant cannot be told; nothing was written`,
          { key, position },
        );
      },
    });
  } catch (err) {
    if (err instanceof CodecError) throw err;
    throw new CliError("invalid-input", `${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

// Node >= 20 ships String.prototype.toWellFormed; the ES2022 lib typings do not declare it.
const wellFormed = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();

/**
 * Throws CliError `invalid-input` for a graph name no command line can pass: one holding NUL (an argument ends
 * there) or a lone surrogate (arguments arrive as UTF-8). Imported, such a graph could never be named to `export`,
 * `frames` or `compact` (review r309 F7).
 */
export function assertNameCanBeTyped(name: string, file: string): void {
  const why = name.includes("\u0000") ? "it holds a NUL character" : name !== wellFormed(name) ? "it holds a lone surrogate" : undefined;
  if (why !== undefined) {
    throw new CliError("invalid-input", `${file}: graph name ${JSON.stringify(name)} cannot be passed on a command line (${why}): no command could name the graph after the import; nothing was written`);
  }
}
