/**
 * `import` of a snapshot file holding a value no store can hold (a number JSON cannot write, a lone surrogate,
 * nesting past MAX_JSON_DEPTH): one typed line, exit 4, and nothing of the store touched. It used to open (create)
 * the store before encoding the record, so a refused import left an empty store and its -lock file behind.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, storePath } from "./fixtures/stores.js";

const tmp = tempDir("import-refusals");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const slice = (value: string): string => `{"type":"state","deps":[],"status":"settled","meta":{},"value":${value}}`;
const snapText = (nodes: string): string => `{"name":"g","version":1,"nodes":{${nodes}},"edges":[],"subgraphs":[]}`;

const REFUSED: ReadonlyArray<[string, string, RegExp]> = [
  ["a number past the doubles (1e400)", snapText(`"a":${slice("1e400")}`), /Infinity cannot be encoded as JSON at \$\.snapshot\.nodes\.a\.value/],
  ["a lone surrogate in a value", snapText(`"a":${slice('"\\ud800"')}`), /lone surrogate .* at \$\.snapshot\.nodes\.a\.value/],
  ["a lone surrogate in a path", snapText(`"\\udc00":${slice("1")}`), /object key contains a lone surrogate/],
  ["nesting 5000 deep", snapText(`"a":${slice("[".repeat(5000) + "]".repeat(5000))}`), /nested deeper than 1000 levels/],
  ["nesting 200000 deep", snapText(`"a":${slice("[".repeat(200000) + "]".repeat(200000))}`), /nested deeper than 1000 levels/],
];

describe.each(KINDS)("import refusals (%s store)", (kind) => {
  it.each(REFUSED)("%s: one typed line, exit 4, no store created", (_label, text, why) => {
    const file = tmp.path("snap.json");
    writeFileSync(file, text);
    const store = storePath(kind, tmp.path("new"));
    const r = runCli(["import", file, store, "--backend", kind]);
    expect(r.code).toBe(4);
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/^error encode-failed: /);
    expect(r.stderr).toMatch(why);
    // Neither the store nor any sidecar of it (-lock, -wal, -shm) was created.
    const base = store.slice(dirname(store).length + 1);
    expect(readdirSync(dirname(store)).filter((n) => n.startsWith(base))).toEqual([]);
  });

  it("a refused import leaves an existing store and its sidecar files byte for byte as they were", async () => {
    const store = storePath(kind, tmp.path("existing"));
    await buildStore(kind, store, [{ name: "g" }]);
    const snapshotOf = (): Record<string, string> => {
      const names = kind === "sqlite" ? readdirSync(dirname(store)).filter((n) => n.startsWith(store.slice(dirname(store).length + 1))) : readdirSync(store);
      const root = kind === "sqlite" ? dirname(store) : store;
      return Object.fromEntries(names.sort().map((n) => [n, readFileSync(`${root}/${n}`).toString("base64")]));
    };
    const before = snapshotOf();
    const file = tmp.path("snap.json");
    writeFileSync(file, REFUSED[1]![1]);
    const r = runCli(["import", file, store]);
    expect(r.code).toBe(4);
    expect(Object.keys(before).length).toBeGreaterThan(1);
    expect(snapshotOf()).toEqual(before);
  });
});
