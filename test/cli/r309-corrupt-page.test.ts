/**
 * Review r309 F8: on a SQLite store with a damaged page, verify, inspect and frames printed the driver's own code
 * (`error SQLITE_CORRUPT: …`) where export printed `backend-error` for the same store. Every command now says
 * `backend-error` (exit 4), the driver's error kept as the cause.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { buildStore } from "./fixtures/stores.js";
import { damageMiddlePage } from "../support/damaged-page.js";

const tmp = tempDir("r309-corrupt-page");
let store = "";
beforeAll(async () => {
  requireBuiltBin();
  store = tmp.path("s.db");
  await buildStore("sqlite", store, [{ name: "g", frameSeqs: Array.from({ length: 300 }, (_, i) => i + 2) }]);
  damageMiddlePage(store);
});
afterAll(() => tmp.remove());

describe("a SQLite store with a damaged page", () => {
  it("every read command says backend-error, exit 4", () => {
    for (const args of [["verify", store], ["inspect", store], ["frames", store, "--graph", "g"], ["export", store, "--graph", "g"]]) {
      const r = runCli(args);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(4);
      expect(r.stderr, args[0]).toMatch(/^error backend-error: sqlite read failed \(.*\): database disk image is malformed\n$/);
    }
  });
});
