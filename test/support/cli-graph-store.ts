/**
 * A CLI test file's store: a SQLite file holding graph "g" (baseline seq 1 and frames 2..11, as buildStore writes
 * them) in a temp directory of its own, made before the file's tests (the bin checked built) and removed after.
 */
import { afterAll, beforeAll } from "vitest";
import { requireBuiltBin, tempDir, type TempDir } from "../cli/fixtures/cli.js";
import { buildStore } from "../cli/fixtures/stores.js";

export interface CliGraphStore {
  readonly tmp: TempDir;
  /** The store's path; set once the file's beforeAll ran. */
  readonly store: string;
}

export function cliGraphStore(prefix: string): CliGraphStore {
  const tmp = tempDir(prefix);
  const fixture = { tmp, store: "" };
  beforeAll(async () => {
    requireBuiltBin();
    fixture.store = tmp.path("s.db");
    await buildStore("sqlite", fixture.store, [{ name: "g" }]);
  });
  afterAll(() => tmp.remove());
  return fixture;
}
