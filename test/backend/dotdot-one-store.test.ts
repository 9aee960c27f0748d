/**
 * Task 246 (review r229): one store path, one store, whoever opens it. `<d>/link/../s.db` (link -> <e>/sub) is
 * `<e>/s.db` to the kernel and SQLite but `<d>/s.db` to path.resolve(), which the engine and the CLI named stores by:
 * one spelling opened two stores (two writers; after an upgrade, an empty store in place of the one written before),
 * and compaction's store identity (real path) missed the engine's store (text). Every opener now refuses a path whose
 * two meanings differ (StorageError invalid-argument, reason "ambiguous-dotdot") before anything is made; a `..`
 * both meanings agree on is opened as before, and a path through a link names its store by the real file (one lock).
 * Design §3.12. Real files, real symbolic links, a real engine (its workers load dist/: build first).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteLockPath } from "../../src/backend/lock.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStore } from "../../src/cli/store.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { compactGraphInEngine } from "../../src/persistence/compaction.js";
import { backendStoreId, specStoreId } from "../../src/tier/store-identity.js";
import { assertBuilt } from "../reliability/fixtures/crash-harness.js";

const root = realpathSync(mkdtempSync(join(tmpdir(), "grf-dotdot-one-")));
afterAll(() => rmSync(root, { recursive: true, force: true }));
beforeAll(() => assertBuilt());
let n = 0;

/** `<case>/d/link -> <case>/e/sub`: `via(rest)` is `<d>/link/../rest` (kernel: `<e>/rest`; resolve(): `<d>/rest`). */
function layout(): { d: string; e: string; via: (rest: string) => string } {
  const base = join(root, `c${n++}`);
  const d = join(base, "d");
  const e = join(base, "e");
  mkdirSync(join(e, "sub"), { recursive: true });
  mkdirSync(d, { recursive: true });
  symlinkSync(join(e, "sub"), join(d, "link"));
  // Concatenated, not joined: join() would drop the `..` by text.
  return { d, e, via: (rest) => `${join(d, "link")}/../${rest}` };
}

/** What `open` threw or rejected with (undefined: it opened, and `close` closed what it opened). */
async function refusal<T>(open: () => T | Promise<T>, close: (opened: T) => unknown): Promise<unknown> {
  try {
    const opened = await open();
    await close(opened);
    return undefined;
  } catch (err) {
    return err;
  }
}

function expectAmbiguous(err: unknown, kernelPath: string, textPath: string): void {
  expect(err).toBeInstanceOf(StorageError);
  expect(err).toMatchObject({ code: "invalid-argument", details: { reason: "ambiguous-dotdot", kernelPath, textPath } });
}

/** Nothing was made at either place the spelling could mean (beside `sub`, the link's target). */
function expectNothingMade(d: string, e: string): void {
  expect(readdirSync(d).sort()).toEqual(["link"]);
  expect(readdirSync(e).sort()).toEqual(["sub"]);
}

describe("a store path through link/.. whose text and kernel meanings differ is refused by every opener", () => {
  it("inline SQLite backend, writable and read-only", async () => {
    const { d, e, via } = layout();
    expectAmbiguous(await refusal(() => sqliteBackend(via("s.db")), (b) => b.close()), join(e, "s.db"), join(d, "s.db"));
    expectAmbiguous(await refusal(() => sqliteBackend(via("new/s.db")), (b) => b.close()), join(e, "new", "s.db"), join(d, "new", "s.db"));
    expectNothingMade(d, e);
    // A store written before at either place is not the one a read-only handle of the spelling would find.
    sqliteBackend(join(d, "s.db")).close();
    expectAmbiguous(await refusal(() => sqliteBackend(via("s.db"), { readOnly: true }), (b) => b.close()), join(e, "s.db"), join(d, "s.db"));
  });

  it("inline file backend, writable and read-only", async () => {
    const { d, e, via } = layout();
    expectAmbiguous(await refusal(() => fileBackend(via("store")), (b) => b.close()), join(e, "store"), join(d, "store"));
    expectNothingMade(d, e);
    const before = fileBackend(join(d, "store"));
    before.write("k", Uint8Array.of(1));
    before.close();
    expectAmbiguous(await refusal(() => fileBackend(via("store"), { readOnly: true }), (b) => b.close()), join(e, "store"), join(d, "store"));
  });

  it("the CLI's store opener (both kinds)", async () => {
    const { d, e, via } = layout();
    expectAmbiguous(await refusal(() => openStore(via("s.db"), { mode: "create" }), (s) => s.close()), join(e, "s.db"), join(d, "s.db"));
    expectAmbiguous(await refusal(() => openStore(via("store"), { mode: "create", kind: "file" }), (s) => s.close()), join(e, "store"), join(d, "store"));
    expectNothingMade(d, e);
  });

  it("an engine's store spec (both kinds), a compaction job of it, and its store identity", async () => {
    const { d, e, via } = layout();
    const specs: StoreSpec[] = [
      { kind: "sqlite", path: via("s.db") },
      { kind: "file", dir: via("store") },
      { kind: "sqlite", path: via("s.db"), readOnly: true },
    ];
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    try {
      for (const spec of specs) {
        const name = spec.kind === "sqlite" ? "s.db" : "store";
        const kv = await refusal(
          async () => {
            const tier = engine.kv<number>(spec, { name: "kv" });
            if (!("readOnly" in spec)) tier.save("k", 1);
            await tier.flush();
            return tier;
          },
          (tier) => tier.close(),
        );
        expectAmbiguous(kv, join(e, name), join(d, name));
        const job = await refusal(() => compactGraphInEngine(engine, spec, "g"), () => undefined);
        expectAmbiguous(job, join(e, name), join(d, name));
        // No id for a spelling no opener accepts: compaction's matcher of it matches no live tier's store.
        expect(specStoreId(spec as { kind: string; path?: string; dir?: string })).toBeUndefined();
      }
    } finally {
      await engine.close();
    }
    expectNothingMade(d, e);
  }, 60_000);
});

describe("paths every opener reads alike are accepted, and name one store", () => {
  it("`..` the kernel and the text agree on (no link before it, or a link whose target's parent is the text's)", async () => {
    const { d, e } = layout();
    mkdirSync(join(d, "plain"));
    symlinkSync(join(d, "plain"), join(d, "near")); // near/.. is d either way
    const plain = `${d}/plain/../a.db`;
    const near = `${d}/near/../a.db`;
    const a = sqliteBackend(plain);
    try {
      a.write("k", Uint8Array.of(1));
      expect(backendStoreId(a)).toBe(`sqlite:${join(d, "a.db")}`);
      expect(specStoreId({ kind: "sqlite", path: near })).toBe(`sqlite:${join(d, "a.db")}`);
      // One file, one lock (another process's writer of either spelling waits on the same lock file).
      expect(sqliteLockPath(near)).toBe(sqliteLockPath(plain));
    } finally {
      a.close();
    }
    const cli = await openStore(near, { mode: "read" });
    try {
      expect(cli.backend.read("k")).toEqual(Uint8Array.of(1));
    } finally {
      await cli.close();
    }
    const f = fileBackend(`${d}/near/../fs`);
    try {
      expect(f.dir).toBe(join(d, "fs"));
    } finally {
      f.close();
    }
    expect(existsSync(join(e, "a.db"))).toBe(false);
  });

  it("a path through a link without `..`: the engine, an inline handle and compaction's identity name the real file", async () => {
    const { d, e } = layout();
    const spelled = join(d, "link", "s.db");
    const spec: StoreSpec = { kind: "sqlite", path: spelled };
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    try {
      const kv = engine.kv<number>(spec, { name: "kv" });
      kv.save("k", 1);
      await kv.flush();
      expect(specStoreId(spec as { kind: string; path?: string })).toBe(`sqlite:${join(e, "sub", "s.db")}`);
      expect(sqliteLockPath(spelled)).toBe(sqliteLockPath(join(e, "sub", "s.db")));
      await kv.close();
    } finally {
      await engine.close();
    }
    // What the engine wrote through the link is in the real file an inline handle of the real path opens.
    const real = sqliteBackend(join(e, "sub", "s.db"), { readOnly: true });
    try {
      expect(backendStoreId(real)).toBe(specStoreId(spec as { kind: string; path?: string }));
      expect(real.list().length).toBeGreaterThan(0);
    } finally {
      real.close();
    }
  }, 60_000);
});
