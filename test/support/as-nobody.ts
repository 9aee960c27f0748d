/**
 * Runs a child as nobody when this is root: root opens a FIFO read-write, where another user's SQLite opens it
 * read-only and blocks, so the hangs the side-file looks guard are only met as another user.
 */
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

/**
 * The command and arguments running `argv` as nobody when this is root (as is otherwise), with everything under `root`
 * (a test's temporary directory) opened to it: `root` itself passable, what is in it readable and writable.
 */
export function asNobody(root: string, argv: readonly string[]): [string, string[]] {
  execFileSync("chmod", ["711", root]);
  for (const name of readdirSync(root)) execFileSync("chmod", ["-R", "a+rwX", join(root, name)]);
  const all = process.getuid?.() === 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...argv] : [...argv];
  return [all[0]!, all.slice(1)];
}
