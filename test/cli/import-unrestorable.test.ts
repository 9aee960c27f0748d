/**
 * `import` of a snapshot file no graph can restore, whatever its code: it was stored as the graph's new baseline and
 * reported imported (exit 0), and from then on every restore failed (phase-failed, derived-mismatch), the store's
 * good baseline superseded. So was an import into a store whose highest seq is 2^53 - 1: the baseline went in at
 * 2^53, which every reader refuses (baseline-missing). Each is now one typed line, exit 4, the store as it was.
 */
import { Buffer } from "node:buffer";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, openBackend, setFrame, storePath, restoreOutcome as restored, type Kind } from "./fixtures/stores.js";
import { createGraph } from "../../src/graph/graph.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";

const tmp = tempDir("import-unrestorable");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const state = (value: string): string => `{"type":"state","deps":[],"status":"settled","meta":{},"value":${value}}`;
const snap = (nodes: string, subgraphs = "[]", name = "g"): string =>
  `{"name":${JSON.stringify(name)},"version":1,"nodes":{${nodes}},"edges":[],"subgraphs":${subgraphs}}`;

const UNRESTORABLE: ReadonlyArray<[string, string, RegExp]> = [
  ["a node path with an empty segment", snap(`"a":${state("1")},"x::":${state("2")}`), /"x::" has an empty segment/],
  ["the reserved name __meta__", snap(`"__meta__":${state("1")}`), /reserved name "__meta__"/],
  ["a node under a mount the snapshot does not list", snap(`"m::x":${state("1")}`), /parent mount "m" of "m::x" does not exist/],
  ["a mount where a node is", snap(`"a":${state("1")}`, `["a"]`), /a mount already exists at "a"/],
  ["a node of a type no code builds", snap(`"a":{"type":"banana","deps":[],"status":"settled","meta":{},"value":1}`), /type "banana"/],
  ["a graph name no graph may have", snap(`"a":${state("1")}`, "[]", "g::h"), /must not contain "::"/],
];

/** Every file of the store (SQLite: the database and its sidecars; file: the directory), name → bytes. */
function storeFiles(kind: Kind, store: string): Record<string, string> {
  const root = kind === "sqlite" ? dirname(store) : store;
  const base = store.slice(dirname(store).length + 1);
  const names = kind === "sqlite" ? readdirSync(root).filter((n) => n.startsWith(base)) : readdirSync(root);
  return Object.fromEntries(names.sort().map((n) => [n, readFileSync(`${root}/${n}`).toString("base64")]));
}

/** Every key of the store and its value. */
function storeContents(kind: Kind, store: string): Record<string, string> {
  const backend = openBackend(kind, store);
  try {
    return Object.fromEntries(backend.list().map((k) => [k, Buffer.from(backend.read(k) ?? []).toString("base64")]));
  } finally {
    backend.close();
  }
}

/** The library's restore: "ok" and the value of a, or the error's code. */
async function restoreOutcome(kind: Kind, store: string): Promise<string> {
  const r = await restored(kind, store);
  return r.code === "ok" ? `ok a=${JSON.stringify(r.a)}` : r.code;
}

function expectRefused(r: { code: number | null; stdout: string; stderr: string }, code: string, why: RegExp): void {
  expect(r.code, r.stderr).toBe(4);
  expect(r.stdout).toBe("");
  expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
  expect(r.stderr).toMatch(new RegExp(`^error ${code}: `));
  expect(r.stderr).toMatch(why);
}

describe.each(KINDS)("import of what no graph can restore (%s store)", (kind) => {
  it.each(UNRESTORABLE)("%s: invalid-input, exit 4, the store as it was and still restorable", async (_label, text, why) => {
    const store = storePath(kind, tmp.path("s"));
    await buildStore(kind, store, [{ name: "g" }]);
    expect(await restoreOutcome(kind, store)).toBe("ok a=11");
    const before = storeFiles(kind, store);
    const file = tmp.path("snap.json");
    writeFileSync(file, text);
    expectRefused(runCli(["import", file, store]), "invalid-input", why);
    expect(storeFiles(kind, store)).toEqual(before);
    expect(await restoreOutcome(kind, store)).toBe("ok a=11");
  });

  it("a store whose highest seq is 2^53 - 1: seq-out-of-range, nothing written", async () => {
    const store = storePath(kind, tmp.path("top"));
    await buildStore(kind, store, [{ name: "g" }]);
    const top = Number.MAX_SAFE_INTEGER;
    const backend = openBackend(kind, store);
    const wal = kvStorage(backend, { codec: walFrameCodec });
    wal.save(walFrameKey(graphWalPrefix("g"), top), setFrame(top, "a", 5));
    await wal.flush();
    await wal.close();
    backend.close();
    const before = storeContents(kind, store);
    const file = tmp.path("snap.json");
    writeFileSync(file, snap(`"a":${state("1")},"b":${state("2")}`));
    expectRefused(runCli(["import", file, store]), "seq-out-of-range", /highest stored seq is 9007199254740991/);
    // The store was opened as a writer (its lock taken and let go): its keys and values are what they were.
    expect(storeContents(kind, store)).toEqual(before);
  });

  it("a snapshot every graph of its name can restore is still imported (mounts, prototype-named nodes)", async () => {
    const store = storePath(kind, tmp.path("ok"));
    await buildStore(kind, store, [{ name: "g" }]);
    const file = tmp.path("snap.json");
    const sum = `{"type":"derived","deps":["a","b"],"status":"settled","meta":{},"value":8}`;
    const nodes = `"a":${state("7")},"b":${state("1")},"sum":${sum},"m::n::x":${state("[1]")},"__proto__":${state("3")},"constructor":${state("4")}`;
    writeFileSync(file, snap(nodes, `["m","m::n"]`));
    const r = runCli(["import", file, store]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(await restoreOutcome(kind, store)).toBe("ok a=7");
  });
});
