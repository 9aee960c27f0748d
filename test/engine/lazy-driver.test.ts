/**
 * The PostgreSQL driver loads only with a PostgreSQL store: a process (and a store's worker) on SQLite or files
 * never pays for importing pg (~60 ms of CPU at each start). A child process on the compiled dist/ (the form a
 * user runs) saves through the engine to SQLite, reads it back, then says whether its main thread loaded pg (the
 * store's worker imports the same backend modules).
 */
import { execFileSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("lazy-driver");
afterAll(() => root.remove());

const ENGINE = new URL("../../dist/src/engine/index.js", import.meta.url).href;
const ENTRY = new URL("../../dist/src/index.js", import.meta.url).href;

// Runs in the child: the pg modules in a thread's CommonJS cache (pg is CommonJS, so an ESM import lands there too).
const CHILD = `
import { createRequire } from "node:module";
const pgLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => /[\\\\/]node_modules[\\\\/]pg[\\\\/]/.test(k));
await import(${JSON.stringify(ENTRY)});
const { openStorageEngine } = await import(${JSON.stringify(ENGINE)});
const engine = openStorageEngine();
const kv = engine.kv({ kind: "sqlite", path: process.argv[1] }, { name: "k" });
kv.save("a", { x: 1 });
await kv.flush();
const back = await kv.load("a");
await engine.close();
console.log(JSON.stringify({ main: pgLoaded(), back }));
`;

describe("the PostgreSQL driver is imported lazily", () => {
  it("a process saving to SQLite through the engine never loads pg on its main thread", () => {
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", CHILD, root.fresh("s.db")], { encoding: "utf8" });
    expect(JSON.parse(out.trim().split("\n").pop()!)).toEqual({ main: false, back: { x: 1 } });
  });
});
