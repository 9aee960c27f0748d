/**
 * The WAL's store records which other snapshot stores restore from it (pairs of one attach sharing a WAL tier,
 * docs/design.md §3.10): a compaction in any process keeps the frames above their baselines without being told
 * (before, only a live handle in the compacting process was seen, else `keepAboveSeq` by hand: forgetting it left
 * the other store failing with wal-gap). Another process writes (a forked child that attaches and exits); this one
 * compacts inline, through an engine, or through the CLI. Real parts: SQLite files, child processes, an engine's
 * worker thread.
 */
import { fork } from "node:child_process";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { compactGraph, compactGraphInEngine } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { sharedWalRecordKey } from "../../src/persistence/shared-wal-record.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { requireBuiltBin, runCli } from "../cli/fixtures/cli.js";
import { tempDir } from "../graph-compaction/fixtures.js";
import { build, restoredFrom, storedSeqs } from "./fixtures/shared-wal.js";

const tmp = tempDir("shared-wal-record");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const WRITER = fileURLToPath(new URL("./fixtures/shared-wal-writer.mjs", import.meta.url));

interface Written {
  one: string;
  two: string;
  wal: string;
  state: unknown;
}

/**
 * Runs the writer in a child process (fixtures/shared-wal-writer.mjs): session 1 of store one's pair alone (frames
 * 2..41), session 2 pairs {one, W} and {two, W} (attach baselines at 42, frames 43..102). Resolves once it exited.
 */
function writeInChild(name: string, opts: { mode: "inline" | "engine"; end: "dispose" | "exit"; walApart?: boolean; oneEvery?: number; twoEvery?: number }): Promise<Written> {
  const one = tmp.path(`${name}-one.db`);
  const two = tmp.path(`${name}-two.db`);
  const wal = opts.walApart === true ? tmp.path(`${name}-wal.db`) : one;
  const child = fork(WRITER, [JSON.stringify({ one, two, wal, ...opts })], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let state: unknown;
  child.on("message", (m: { state: unknown }) => (state = m.state));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 && state !== undefined ? resolve({ one, two, wal, state }) : reject(new Error(`writer exited ${String(code)}`))));
  });
}

const idOf = (path: string): string => `sqlite:${realpathSync(path)}`;

/** The shared-WAL record's stored bytes in `path` (as text), or undefined. */
function recordOf(path: string): string | undefined {
  const b = sqliteBackend(path);
  try {
    const raw = b.read(sharedWalRecordKey("g")) as Uint8Array | undefined;
    return raw === undefined ? undefined : Buffer.from(raw).toString("utf8");
  } finally {
    b.close();
  }
}

describe("frames another process's pairs need survive a compaction that was not told", () => {
  it("inline compactGraph after the writer disposed and exited: store two still restores", async () => {
    const w = await writeInChild("inline", { mode: "inline", end: "dispose" });
    expect(storedSeqs(w.two).baseline).toBe(42);
    const b = sqliteBackend(w.one);
    const result = await compactGraph({ backend: b }, { graphName: "g" }).finally(() => b.close());
    expect({ one: await restoredFrom(w.one, w.one), two: await restoredFrom(w.two, w.one) }).toEqual({ one: w.state, two: w.state });
    // Folded into store one's baseline; only session 1's frames (at or below store two's baseline) went.
    expect(result).toMatchObject({ baselineSeq: 102, deletedFrames: 40, sharedWalPins: [{ store: idOf(w.two), seq: 42 }] });
    expect(storedSeqs(w.one).frames[0]).toBe(43);
  });

  it("compactGraphInEngine in a later process after the writer exited without dispose (engine tiers)", async () => {
    const w = await writeInChild("engine", { mode: "engine", end: "exit" });
    const engine = openStorageEngine({ threads: 1, onError: () => {} });
    const result = await compactGraphInEngine(engine, { kind: "sqlite", path: w.one }, "g").finally(() => engine.close());
    expect({ one: await restoredFrom(w.one, w.one), two: await restoredFrom(w.two, w.one) }).toEqual({ one: w.state, two: w.state });
    expect(result).toMatchObject({ baselineSeq: 102, deletedFrames: 40, sharedWalPins: [{ store: idOf(w.two), seq: 42 }] });
  });

  it("the record moves with the other store's baselines: frames below its newest one go", async () => {
    const w = await writeInChild("moving", { mode: "inline", end: "dispose", twoEvery: 25 });
    const twoAt = storedSeqs(w.two).baseline as number;
    expect(twoAt).toBeGreaterThan(42);
    const before = storedSeqs(w.one).frames;
    const b = sqliteBackend(w.one);
    const result = await compactGraph({ backend: b }, { graphName: "g" }).finally(() => b.close());
    expect({ one: await restoredFrom(w.one, w.one), two: await restoredFrom(w.two, w.one) }).toEqual({ one: w.state, two: w.state });
    // Moved on from its attach seq (42), never past what store two stored (the record follows the stored baselines).
    const pin = result.sharedWalPins?.[0];
    expect(pin?.store).toBe(idOf(w.two));
    expect(pin?.seq).toBeGreaterThan(42);
    expect(pin?.seq).toBeLessThanOrEqual(twoAt);
    expect(result.deletedFrames).toBe(before.filter((s) => s <= (pin?.seq as number)).length);
  });
});

describe("the CLI's compact, without --keep-above", () => {
  it("keeps what store two needs and says so; --forget-store drops the pin", async () => {
    const w = await writeInChild("cli", { mode: "inline", end: "exit" });
    const r = runCli(["compact", w.one, "--graph", "g"]);
    expect(r.stderr).toBe("");
    expect({ one: await restoredFrom(w.one, w.one), two: await restoredFrom(w.two, w.one) }).toEqual({ one: w.state, two: w.state });
    expect(r.stdout).toContain(`kept frames above seq 42 for store ${idOf(w.two)}`);
    expect(storedSeqs(w.one).frames[0]).toBe(43);
    // Store two removed for good: its pin is dropped, and the frames only it needed go. (Its writer named it in the
    // record moments ago: forgetting it needs --force within the hour, shared-wal-forgotten.test.ts.)
    const forgot = runCli(["compact", w.one, "--graph", "g", "--forget-store", idOf(w.two), "--force", "--json"]);
    expect(forgot.stderr).toBe("");
    expect(JSON.parse(forgot.stdout)).toMatchObject({ deletedFrames: 60 });
    expect(JSON.parse(forgot.stdout)).not.toHaveProperty("sharedWalPins");
    expect(storedSeqs(w.one).frames).toEqual([]);
    expect(await restoredFrom(w.one, w.one)).toEqual(w.state);
  });

  it("--forget-store with an id the record does not name: a usage error naming the ids it does, nothing changed", async () => {
    const w = await writeInChild("cli-forget-unknown", { mode: "inline", end: "exit" });
    const before = { ...storedSeqs(w.one), record: recordOf(w.one) };
    expect(before.record).toBeDefined();
    // A typo of store two's id (before: silently ignored, and the compaction went on keeping its pin).
    const r = runCli(["compact", w.one, "--graph", "g", "--forget-store", `${idOf(w.two)}x`]);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`error usage: compaction of graph "g": cannot forget ${JSON.stringify(`${idOf(w.two)}x`)}`);
    expect(r.stderr).toContain(`names ${JSON.stringify(idOf(w.two))}`);
    expect({ ...storedSeqs(w.one), record: recordOf(w.one) }).toEqual(before); // nothing folded, deleted or rewritten
    // Forgotten already: the record names no store any more, and saying so is the answer to a second try.
    expect(runCli(["compact", w.one, "--graph", "g", "--forget-store", idOf(w.two), "--force"]).stderr).toBe("");
    const again = runCli(["compact", w.one, "--graph", "g", "--forget-store", idOf(w.two), "--force"]);
    expect(again.code).toBe(64);
    expect(again.stderr).toContain("names no store");
    // The library's error: typed, with both lists.
    const backend = sqliteBackend(w.one);
    try {
      const err = await compactGraph({ backend }, { graphName: "g", forgetStores: ["sqlite:/nowhere"] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ code: "invalid-argument", details: { graphName: "g", unknownStores: ["sqlite:/nowhere"], knownStores: [] } });
    } finally {
      await backend.close();
    }
  });

  it("a store holding only the shared WAL: frames every pair's baseline covers go, both pairs restore", async () => {
    const w = await writeInChild("wal-only", { mode: "inline", end: "dispose", walApart: true, oneEvery: 20, twoEvery: 30 });
    const stored = { [idOf(w.one)]: storedSeqs(w.one).baseline as number, [idOf(w.two)]: storedSeqs(w.two).baseline as number };
    const r = runCli(["compact", w.wal, "--graph", "g", "--json"]);
    expect(r.stderr).toBe("");
    const result = JSON.parse(r.stdout) as { baselineSeq: number; deletedFrames: number; sharedWalPins: Array<{ store: string; seq: number }> };
    expect(result).toMatchObject({ baselineSeq: 0, foldedFrames: 0 });
    // Both stores pinned, each at most at its stored baseline; the frames at or below the lowest pin went.
    expect(result.sharedWalPins.map((p) => p.store).sort()).toEqual(Object.keys(stored).sort());
    for (const p of result.sharedWalPins) expect(p.seq).toBeLessThanOrEqual(stored[p.store] as number);
    const low = Math.min(...result.sharedWalPins.map((p) => p.seq));
    expect(result.deletedFrames).toBeGreaterThan(0);
    expect(storedSeqs(w.wal).frames[0]).toBe(low + 1);
    expect({ one: await restoredFrom(w.one, w.wal), two: await restoredFrom(w.two, w.wal) }).toEqual({ one: w.state, two: w.state });
  });
});

it("a later attach of the graph through one pair ends the record: the stores it leaves out are marked forgotten, pinned no more", async () => {
  const w = await writeInChild("ends", { mode: "inline", end: "dispose" });
  const b = sqliteBackend(w.one);
  try {
    const wal = kvStorage<WALFrame>(b, { codec: walFrameCodec });
    const pair = { snapshot: snapshotStorage<GraphCheckpointRecord>(b), wal };
    const g = build();
    await restoreSnapshot(g, pair);
    expect(await b.read(sharedWalRecordKey("g"))).toBeDefined();
    const h = attachSnapshotStorage(g, [pair], { compactEvery: Number.POSITIVE_INFINITY });
    g.set("a", 1000);
    await h.flush();
    await h.dispose();
    // Until 2026-12-06 (task 172) the record was deleted, and store two then restored its attach state silently.
    const record = JSON.parse(Buffer.from((await b.read(sharedWalRecordKey("g"))) as Uint8Array).toString("utf8")) as { change: { change: unknown } };
    expect(record.change.change).toEqual({ kind: "sharedWal.stores", stores: {}, forgotten: { [idOf(w.two)]: 102 } });
    const result = await compactGraph({ backend: b }, { graphName: "g" });
    expect(result.sharedWalPins).toBeUndefined();
  } finally {
    b.close();
  }
  expect(storedSeqs(w.one).frames).toEqual([]);
  expect(await restoredFrom(w.one, w.one)).toEqual({ a: 1000, b: (w.state as { b: number }).b });
  expect(await restoredFrom(w.two, w.one)).toMatch(/^wal-compacted-past-baseline: /);
});
