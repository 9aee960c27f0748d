/**
 * Review r229 (of f4b659e): a file store spelled `<d>/link/../store` (link -> <e>/sub) is one store however it is
 * opened. f4b659e named an inline fileBackend by the kernel's path (<e>/store) while the engine (storeKey, normalise)
 * and the CLI (openStore) name it by text (<d>/store): one spelling, two stores; and a store made at <d>/store before
 * the upgrade was opened as a new, empty one at <e>/store without a word. The file store is named by text again
 * (design §3.12). Real files, real symbolic links, a real engine (its workers load dist/: build first).
 */
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { openStore } from "../../src/cli/store.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { assertBuilt } from "../reliability/fixtures/crash-harness.js";

const root = realpathSync(mkdtempSync(join(tmpdir(), "grf-dotdot-naming-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeAll(() => assertBuilt());
let n = 0;

/** `<case>/d/link -> <case>/e/sub`; `spelled` is `<d>/link/../store` (the kernel: <e>/store; resolve(): <d>/store). */
function layout(): { d: string; e: string; spelled: string } {
  const base = join(root, `case-${n++}`);
  const d = join(base, "d");
  const e = join(base, "e");
  mkdirSync(join(e, "sub"), { recursive: true });
  mkdirSync(d, { recursive: true });
  symlinkSync(join(e, "sub"), join(d, "link"));
  // Concatenated, not joined: join() would drop the `..` by text.
  return { d, e, spelled: `${d}/link/../store` };
}

describe("a file store spelled through link/.. is one store", () => {
  it("a store made at the text's place before keeps being found through the same spelling", () => {
    const { d, spelled } = layout();
    const before = fileBackend(join(d, "store"));
    before.write("k", Uint8Array.of(1));
    before.close();
    const after = fileBackend(spelled);
    try {
      expect(after.dir).toBe(join(d, "store"));
      expect(after.read("k")).toEqual(Uint8Array.of(1));
    } finally {
      after.close();
    }
  });

  it("the CLI opens the store the library wrote, for the same argument", async () => {
    const { spelled } = layout();
    const lib = fileBackend(spelled);
    lib.write("k", Uint8Array.of(1));
    lib.close();
    const s = await openStore(spelled, { mode: "read" });
    try {
      expect((s.backend as { dir?: string }).dir).toBe(lib.dir);
      expect(s.backend.read("k")).toEqual(Uint8Array.of(1));
    } finally {
      await s.close();
    }
  });

  it("an inline handle reads what an engine wrote to the same spelling", async () => {
    const { e, spelled } = layout();
    const spec: StoreSpec = { kind: "file", dir: spelled };
    const engine = openStorageEngine({ threads: 1 });
    try {
      const kv = engine.kv<number>(spec, { name: "kv" });
      kv.save("k", 1);
      await kv.flush();
    } finally {
      await engine.close();
    }
    const inline = fileBackend(spelled, { readOnly: true });
    try {
      expect(inline.list().length).toBeGreaterThan(0);
    } finally {
      inline.close();
    }
    expect(existsSync(join(e, "store"))).toBe(false);
  });
});
