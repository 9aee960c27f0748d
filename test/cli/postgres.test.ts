/**
 * The CLI on PostgreSQL stores (issue 15), run as a child process: a store is named `postgres://…?store=NAME`
 * (`&schema=`, `&table=`). Read commands use read-only handles (no lease: they work beside a live writer), commands
 * that write take the lease, and no output or error ever shows the password.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresBackend, type PostgresBackend } from "../../src/backend/postgres.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { requireBuiltBin, runCli, type CliRun } from "./fixtures/cli.js";
import { baselineSnapshot, setFrame } from "./fixtures/stores.js";

const database = useTestDatabase();
beforeAll(requireBuiltBin);

const open: PostgresBackend[] = [];
afterAll(async () => {
  for (const b of open.splice(0)) await b.close();
});

async function backend(store: string, readOnly = false): Promise<PostgresBackend> {
  const db = await database();
  const b = await postgresBackend({ url: db.url, schema: db.schema, store, readOnly });
  open.push(b);
  return b;
}

/** The store's CLI name: the test server's URL (with its password) plus the store options. */
async function storeUrl(store: string, url?: string): Promise<string> {
  const db = await database();
  const u = new URL(url ?? db.url);
  u.searchParams.set("store", store);
  u.searchParams.set("schema", db.schema);
  return u.href;
}

/** What the CLI shows for a store: server and store, no password. */
async function shown(store: string): Promise<string> {
  const db = await database();
  return `postgres://postgres@${new URL(db.url).host}/postgres?store=${encodeURIComponent(store)}&table=${db.schema}.graphrefly_storage`;
}

/** A graph "g": baseline at seq 1 (states a, b, derived sum) and frames 2..11 setting a. */
async function buildGraph(store: string): Promise<void> {
  const b = await backend(store);
  const snap = snapshotStorage<GraphCheckpointRecord>(b);
  snap.save({ name: "g", mode: "full", snapshot: baselineSnapshot("g"), seq: 1, timestamp_ns: 1_700_000_000_000_000_000, format_version: 1 });
  await snap.flush();
  const wal = kvStorage<WALFrame>(b, { codec: walFrameCodec });
  for (let s = 2; s <= 11; s++) wal.save(walFrameKey(graphWalPrefix("g"), s), setFrame(s, "a", s));
  await wal.flush();
  await b.close();
}

async function expectNoPassword(r: CliRun, ...secrets: string[]): Promise<void> {
  const db = await database();
  for (const secret of [db.password, ...secrets]) {
    expect(r.stdout).not.toContain(secret);
    expect(r.stderr).not.toContain(secret);
  }
}

describe("CLI on PostgreSQL stores", () => {
  it("inspect, verify, frames and export read a store named by its URL, showing it without the password", async () => {
    await buildGraph("read");
    const url = await storeUrl("read");
    const inspect = runCli(["inspect", url]);
    expect(inspect.stderr).toBe("");
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toContain(`store ${await shown("read")} (postgres), 1 graph`);
    expect(inspect.stdout).toMatch(/ {2}wal +10 frames, .*seq 2\.\.11/);
    await expectNoPassword(inspect);

    const verify = runCli(["verify", url, "--json"]);
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ exitCode: 0, store: { kind: "postgres", path: await shown("read") } });

    const frames = runCli(["frames", url, "--graph", "g", "--limit", "3"]);
    expect(frames.code).toBe(0);
    expect(frames.stdout.trim().split("\n")).toHaveLength(3);

    const exported = runCli(["export", url, "--graph", "g"]);
    expect(exported.code).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ name: "g", nodes: { a: { value: 11 } } });
    for (const r of [verify, frames, exported]) await expectNoPassword(r);
  });

  it("read commands take no lease and work beside a live writer; compact needs the lease (store-locked, exit 3)", async () => {
    const db = await database();
    await buildGraph("live");
    const writer = await backend("live");
    const url = await storeUrl("live");
    const raw = await db.raw();
    const lease = async () =>
      (await raw.query<{ holder: string; epoch: string }>(`SELECT holder, epoch FROM "${db.schema}".graphrefly_storage_lease WHERE store = 'live'`)).rows;
    const before = await lease();

    for (const args of [["inspect", url], ["verify", url], ["export", url, "--graph", "g"]]) {
      const r = runCli(args);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
    }
    expect(await lease()).toEqual(before); // no lease taken or released by the readers

    const compact = runCli(["compact", url, "--graph", "g"]);
    expect(compact.code).toBe(3);
    expect(compact.stderr).toMatch(/^error store-locked: /);
    await expectNoPassword(compact);
    await writer.close();

    const compacted = runCli(["compact", url, "--graph", "g", "--json"]);
    expect(compacted.code, compacted.stderr).toBe(0);
    expect(JSON.parse(compacted.stdout)).toMatchObject({ graphName: "g", baselineSeq: 11, atomic: true });
    const reader = await backend("live", true);
    expect(await reader.list(`${graphWalPrefix("g")}/`)).toEqual([]);
    expect(runCli(["verify", url]).code).toBe(0);
  });

  it("import writes a baseline into a new PostgreSQL store, taking the lease and releasing it", async () => {
    await buildGraph("source");
    const exported = runCli(["export", await storeUrl("source"), "--graph", "g"]);
    expect(exported.code).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), "grf-cli-pg-"));
    try {
      const file = join(dir, "g.json");
      writeFileSync(file, exported.stdout);
      const imported = runCli(["import", file, await storeUrl("target"), "--json"]);
      expect(imported.code, imported.stderr).toBe(0);
      expect(JSON.parse(imported.stdout)).toMatchObject({ graph: "g", baselineSeq: 1 });
      const again = runCli(["export", await storeUrl("target"), "--graph", "g"]);
      expect(JSON.parse(again.stdout)).toEqual(JSON.parse(exported.stdout));
      // The lease was released: a writer can take the store at once.
      await backend("target");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("stats runs its load through the engine on a PostgreSQL store, reports it without the password, and removes it", async () => {
    const url = await storeUrl("stats");
    const r = runCli(["stats", url, "--frames", "300", "--batch", "100", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { load: { frames: number }; stats: Array<{ store: { kind: string; url: string; store: string } }> };
    expect(doc.load.frames).toBe(300);
    expect(doc.stats[0]?.store).toMatchObject({ kind: "postgres", store: "stats" });
    await expectNoPassword(r);
    const reader = await backend("stats", true);
    expect(await reader.list()).toEqual([]);
  });

  it("failures name their cause and never the password: wrong password, unknown graph, missing store name, bad schema", async () => {
    const db = await database();
    const wrong = "Wr0ng-pass-7734";
    const u = new URL(db.url);
    u.password = wrong;
    const auth = runCli(["inspect", await storeUrl("read", u.href)]);
    expect(auth.code).toBe(4);
    expect(auth.stderr).toMatch(/^error backend-error: .*authentication failed/);
    await expectNoPassword(auth, wrong);

    const noGraph = runCli(["frames", await storeUrl("read"), "--graph", "nope"]);
    expect(noGraph.code).toBe(4);
    expect(noGraph.stderr).toContain(`error graph-not-found: no graph "nope" in ${await shown("read")}`);
    await expectNoPassword(noGraph);

    const noStore = runCli(["inspect", db.url]);
    expect(noStore.code).toBe(64);
    expect(noStore.stderr).toMatch(/^error usage: .*\?store=NAME/);
    await expectNoPassword(noStore);

    const badSchema = new URL(await storeUrl("read"));
    badSchema.searchParams.set("schema", 'x"; drop table t; --');
    const hostile = runCli(["inspect", badSchema.href]);
    expect(hostile.code).toBe(4);
    expect(hostile.stderr).toMatch(/^error invalid-argument: schema must be a plain SQL identifier/);
    await expectNoPassword(hostile);
  });
});
