/** Convenience factories: memory tiers over a fresh backend; file and sqlite tiers own (and close) theirs. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  fileAppendLog,
  fileKv,
  fileSnapshot,
  memoryAppendLog,
  memoryKv,
  memorySnapshot,
  sqliteAppendLog,
  sqliteKv,
  sqliteSnapshot,
} from "../../src/tier/index.js";
import { errorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-tier-factories-"));
let n = 0;
const fresh = (ext = ""): string => join(root, `s-${n++}${ext}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("memory factories", () => {
  it("each call owns a fresh memory backend", async () => {
    const a = memoryKv<number>();
    const b = memoryKv<number>();
    a.save("k", 1);
    await a.flush();
    expect(await a.load("k")).toBe(1);
    expect(await b.load("k")).toBeUndefined();
    const s = memorySnapshot<{ name: string; v: number }>({ name: "g" });
    s.save({ name: "g", v: 1 });
    expect(await s.load()).toEqual({ name: "g", v: 1 });
    const log = memoryAppendLog<number>({ name: "log" });
    log.appendEntries([1, 2]);
    await log.flush();
    expect((await log.loadEntries()).entries).toEqual([1, 2]);
  });

  it("validate options like the tiers they build", () => {
    expect(() => memoryKv({ compactEvery: 0 })).toThrow(RangeError);
    expect(() => memorySnapshot({ debounceMs: -1 })).toThrow(/debounceMs/);
    expect(() => memoryAppendLog({ compactEvery: 2.5 })).toThrow(/compactEvery/);
  });
});

describe("sqlite and file factories", () => {
  it("sqliteKv: g = {x:99} round-trips; a double close() is fine (§10.6)", async () => {
    const path = fresh(".db");
    const kv = sqliteKv<{ x: number }>(path);
    kv.save("g", { x: 99 });
    expect(await kv.load("g")).toEqual({ x: 99 });
    await kv.close();
    await kv.close();
  });

  it("closing a factory tier closes its backend: the store can be opened again and keeps the data", async () => {
    const path = fresh(".db");
    const dir = fresh();
    const s1 = sqliteSnapshot<{ name: string; v: number }>(path);
    s1.save({ name: "g", v: 1 });
    const f1 = fileSnapshot<{ name: string; v: number }>(dir);
    f1.save({ name: "g", v: 2 });
    await Promise.all([s1.close(), f1.close()]);
    const s2 = sqliteSnapshot<{ name: string; v: number }>(path, { name: "g" });
    const f2 = fileSnapshot<{ name: string; v: number }>(dir, { name: "g" });
    expect(await s2.load()).toEqual({ name: "g", v: 1 });
    expect(await f2.load()).toEqual({ name: "g", v: 2 });
    await Promise.all([s2.close(), f2.close()]);
  });

  it("factory tiers of one process share a store: the snapshot + WAL pairing on one SQLite file", async () => {
    const path = fresh(".db");
    const snapshot = sqliteSnapshot<{ name: string; n: number }>(path);
    const wal = sqliteKv<number>(path);
    snapshot.save({ name: "g", n: 1 });
    wal.save("g/1", 1);
    await Promise.all([snapshot.flush(), wal.flush()]);
    await snapshot.close();
    // The second handle keeps the store (and its lock) after the first closed.
    wal.save("g/2", 2);
    await wal.flush();
    expect(await wal.list("g/")).toEqual(["g/1", "g/2"]);
    await wal.close();
    const reopened = sqliteSnapshot<{ name: string; n: number }>(path);
    expect(await reopened.load("g")).toEqual({ name: "g", n: 1 });
    await reopened.close();
  });

  it("append logs keep accumulating across factory instances (file and sqlite)", async () => {
    const path = fresh(".db");
    const dir = fresh();
    for (const make of [() => sqliteAppendLog<string>(path, { name: "L" }), () => fileAppendLog<string>(dir, { name: "L" })]) {
      const first = make();
      first.appendEntries(["a", "b"]);
      await first.close();
      const second = make();
      second.appendEntries(["c"]);
      await second.flush();
      expect((await second.loadEntries()).entries).toEqual(["a", "b", "c"]);
      await second.close();
    }
  });

  it("fileKv lists and deletes through the owned backend", async () => {
    const kv = fileKv<number>(fresh());
    kv.save("p/2", 2);
    kv.save("p/1", 1);
    expect(await kv.list("p/")).toEqual(["p/1", "p/2"]);
    await kv.delete("p/1");
    expect(await kv.list()).toEqual(["p/2"]);
    await kv.close();
    expect(await errorOf(() => kv.load("p/2"))).toMatchObject({ code: "closed" });
  });
});
