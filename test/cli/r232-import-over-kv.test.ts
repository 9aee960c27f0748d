/**
 * r232 attack: `import` writes the snapshot's baseline under key = its `name` without looking at what that key
 * holds (src/cli/import.ts storedSeqs + tier.save). A snapshot file named like a kv tier's key (or an append-log
 * bucket's) overwrites that acknowledged value, exit 0, and says only "0 stored frames now superseded": `inspect`
 * listed no graph of that name just before. Real SQLite and file stores, the compiled bin.
 */
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kvStorage } from "../../src/tier/kv.js";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, openBackend, storePath, writeRaw } from "./fixtures/stores.js";

const tmp = tempDir("r232-import-over-kv");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const SETTINGS = { theme: "dark", important: [1, 2, 3] };

describe.each(KINDS)("import over a kv value (%s store)", (kind) => {
  it("refuses (typed error, non-zero exit) and leaves the kv value as acknowledged", async () => {
    const store = storePath(kind, tmp.path("kv"));
    const writer = openBackend(kind, store);
    const kv = kvStorage<unknown>(writer);
    kv.save("settings", SETTINGS);
    await kv.flush(); // acknowledged as durable
    await kv.close();
    await writer.close();
    expect(runCli(["inspect", store]).stdout).toMatch(/0 graphs/);

    const file = tmp.path("settings.json");
    writeFileSync(file, '{"name":"settings","version":1,"nodes":{},"edges":[],"subgraphs":[]}');
    const r = runCli(["import", file, store]);

    const reader = openBackend(kind, store);
    const after = await kvStorage<unknown>(reader).load("settings");
    await reader.close();
    expect(after).toEqual(SETTINGS);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/^error usage: .*"settings".*not a graph's record.*nothing was written/);
  });

  it("still replaces a broken baseline of that name (import is how one is recovered)", async () => {
    const store = storePath(kind, tmp.path("broken"));
    const writer = openBackend(kind, store);
    await writer.close();
    // A checkpoint record whose snapshot is gone: restore refuses it (baseline-missing); import must not.
    writeRaw(kind, store, "settings", new TextEncoder().encode('{"format_version":1,"mode":"full","name":"settings","seq":4}'));
    const file = tmp.path("settings-good.json");
    writeFileSync(file, '{"name":"settings","version":1,"nodes":{},"edges":[],"subgraphs":[]}');
    const r = runCli(["import", file, store, "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ baselineSeq: 5, graph: "settings", supersededFrames: 0 });
  });
});
