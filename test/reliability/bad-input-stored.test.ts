/**
 * Bad input already on disk: frames and baselines corrupted at the byte level (written straight to the file or
 * the SQLite row, bypassing our code, as a faulty disk or a foreign tool would), and store files that are not
 * stores at all. Required: a typed error with a stable code (or a torn frame counted and skipped at the tail),
 * the graph left untouched when a restore refuses, and the store still usable afterwards.
 */
import Database from "better-sqlite3";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { encodeKeyToFileName } from "../../src/backend/file-names.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { CodecError, RestoreError, StorageError } from "../../src/errors.js";
import { attachSnapshotStorage, createGraph, restoreSnapshot } from "../../src/index.js";
import type { GraphCheckpointRecord, ReactiveGraph, RestoreResult, TornWriteInfo } from "../../src/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { sealWalFrame, walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { walFrameKey } from "../../src/wal/keys.js";
import { assertBuilt, tempDir, type TempDir } from "./fixtures/crash-harness.js";

type Kind = "sqlite" | "file";
const GRAPH = "g";
const PREFIX = `${GRAPH}/wal`;

let tmp: TempDir;
let storeNo = 0;
beforeAll(() => {
  tmp = tempDir("bad-stored");
});
afterAll(() => tmp.remove());

const open: StorageBackend[] = [];
afterEach(() => {
  for (const b of open.splice(0)) b.close?.();
});

function freshStore(kind: Kind): string {
  return join(tmp.dir, kind === "sqlite" ? `s${storeNo++}.db` : `d${storeNo++}`);
}

function backendAt(kind: Kind, store: string): StorageBackend {
  const b = kind === "sqlite" ? sqliteBackend(store) : fileBackend(store);
  open.push(b);
  return b;
}

function closeAll(): void {
  for (const b of open.splice(0)) b.close?.();
}

interface Tiers {
  snapshot: SnapshotStorageTier<GraphCheckpointRecord>;
  wal: KvStorageTier<WALFrame>;
}

function tiersOver(b: StorageBackend): Tiers {
  return {
    snapshot: snapshotStorage<GraphCheckpointRecord>(b, { name: "snap" }),
    wal: kvStorage<WALFrame>(b, { name: "wal", codec: walFrameCodec }),
  };
}

function buildGraph(): ReactiveGraph {
  const g = createGraph(GRAPH);
  g.state("a", 0);
  g.state("b", "x");
  g.derived("sum", ["a"], (a) => (typeof a === "number" ? a * 2 : 0));
  return g;
}

/** A store holding a baseline (seq 1) and frames 2..7 (b = "v1".."v6", one frame each), written through inline attach. */
async function buildStore(kind: Kind): Promise<string> {
  const store = freshStore(kind);
  const b = backendAt(kind, store);
  const g = buildGraph();
  const h = attachSnapshotStorage(g, [tiersOver(b)], { compactEvery: Number.POSITIVE_INFINITY });
  await h.flush();
  for (let i = 1; i <= 6; i++) g.set("b", `v${i}`);
  expect(await h.flush()).toBe(7);
  await h.dispose();
  closeAll();
  return store;
}

// ---- raw access, bypassing the backends ------------------------------------------------------------------------

function readRaw(kind: Kind, store: string, key: string): Uint8Array {
  if (kind === "file") return readFileSync(join(store, encodeKeyToFileName(key)));
  const db = new Database(store);
  try {
    const row = db.prepare("SELECT v FROM graphrefly_storage WHERE k = ?").get(key) as { v: Buffer } | undefined;
    if (!row) throw new Error(`test bug: no row ${key}`);
    return row.v;
  } finally {
    db.close();
  }
}

function writeRaw(kind: Kind, store: string, key: string, bytes: Uint8Array): void {
  if (kind === "file") return writeFileSync(join(store, encodeKeyToFileName(key)), bytes);
  const db = new Database(store);
  try {
    db.prepare("INSERT OR REPLACE INTO graphrefly_storage (k, v) VALUES (?, ?)").run(key, bytes);
  } finally {
    db.close();
  }
}

const utf8 = new TextEncoder();
const json = (v: unknown): Uint8Array => utf8.encode(JSON.stringify(v));
const parse = (b: Uint8Array): Record<string, unknown> => JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;

// ---- frame corruptions ------------------------------------------------------------------------------------------

interface Corruption {
  name: string;
  mutate(frame: Uint8Array): Uint8Array;
  /** undefined: either reason is acceptable (a flipped byte may or may not leave valid JSON). */
  reason?: TornWriteInfo["reason"];
}

const corruptions: Corruption[] = [
  {
    name: "payload changed, checksum kept",
    mutate: (b) => json({ ...parse(b), change: { ...(parse(b).change as object), t_ns: 12345 } }),
    reason: "checksum-mismatch",
  },
  {
    name: "one byte flipped",
    mutate: (b) => {
      const c = Uint8Array.from(b);
      c[Math.floor(c.length / 2)]! ^= 0x04;
      return c;
    },
  },
  { name: "truncated to half", mutate: (b) => b.subarray(0, Math.floor(b.length / 2)), reason: "decode-failed" },
  { name: "truncated to one byte", mutate: (b) => b.subarray(0, 1), reason: "decode-failed" },
  {
    name: "invalid UTF-8",
    mutate: (b) => {
      const c = Uint8Array.from(b);
      c.set([0xc3, 0x28], c.indexOf(0x22) + 1); // inside the first string
      return c;
    },
    reason: "decode-failed",
  },
  { name: "not JSON", mutate: () => utf8.encode('{"t":"c","lifecycle":'), reason: "decode-failed" },
  // An array is not torn but another record (an append-log bucket's): corrupt-store, test/graph-storage/name-collisions.
  { name: "JSON but not an object", mutate: () => utf8.encode("42"), reason: "decode-failed" },
  { name: "frame_seq of the wrong type", mutate: (b) => json({ ...parse(b), frame_seq: String(parse(b).frame_seq) }), reason: "decode-failed" },
  { name: "unknown lifecycle", mutate: (b) => json({ ...parse(b), lifecycle: "bogus" }), reason: "decode-failed" },
  { name: "change envelope null", mutate: (b) => json({ ...parse(b), change: null }), reason: "decode-failed" },
  { name: "checksum of the wrong type", mutate: (b) => json({ ...parse(b), checksum: 42 }), reason: "decode-failed" },
  {
    name: "checksum missing",
    mutate: (b) => {
      const { checksum: _dropped, ...rest } = parse(b);
      return json(rest);
    },
    reason: "checksum-mismatch",
  },
  { name: "frame_seq does not match its key", mutate: (b) => json({ ...parse(b), frame_seq: 99 }), reason: "decode-failed" },
];

async function restoreInto(kind: Kind, store: string, extra: { onTornWrite?: (i: TornWriteInfo) => "skip" | "abort" | undefined } = {}): Promise<{
  graph: ReactiveGraph;
  result?: RestoreResult;
  error?: unknown;
  torn: TornWriteInfo[];
  untouched: boolean;
}> {
  const b = backendAt(kind, store);
  const graph = buildGraph();
  const before = JSON.stringify(graph.snapshot());
  const torn: TornWriteInfo[] = [];
  try {
    const result = await restoreSnapshot(graph, {
      ...tiersOver(b),
      onTornWrite: (info) => {
        torn.push(info);
        return extra.onTornWrite?.(info);
      },
    });
    return { graph, result, torn, untouched: JSON.stringify(graph.snapshot()) === before };
  } catch (error) {
    return { graph, error, torn, untouched: JSON.stringify(graph.snapshot()) === before };
  } finally {
    closeAll();
  }
}

/** After any refusal the store must keep working: attach, write, flush, restore exactly. */
async function expectStoreUsable(kind: Kind, store: string, skipTorn: boolean): Promise<void> {
  const b = backendAt(kind, store);
  const graph = buildGraph();
  await restoreSnapshot(graph, { ...tiersOver(b), ...(skipTorn ? { onTornWrite: () => "skip" as const } : {}) });
  const h = attachSnapshotStorage(graph, [tiersOver(b)], { compactEvery: 3 });
  graph.set("b", "after corruption");
  graph.set("a", 100);
  const seq = await h.flush();
  await h.dispose();
  closeAll();
  const again = await restoreInto(kind, store, { onTornWrite: () => "skip" });
  expect(again.error).toBeUndefined();
  expect(again.result!.finalSeq).toBe(seq);
  expect(again.graph.get("a")).toBe(100);
  expect(again.graph.get("sum")).toBe(200);
  expect(again.graph.get("b")).toBe("after corruption");
}

describe.each<Kind>(["sqlite", "file"])("corrupted WAL frames on disk (%s)", (kind) => {
  describe.each(corruptions)("$name", (c) => {
    it("mid-stream: RestoreError('torn-write-mid-stream') naming the frame, the graph untouched, the store usable", async () => {
      const store = await buildStore(kind);
      const key = walFrameKey(PREFIX, 4);
      writeRaw(kind, store, key, c.mutate(readRaw(kind, store, key)));
      const r = await restoreInto(kind, store);
      expect(r.error).toBeInstanceOf(RestoreError);
      expect((r.error as RestoreError).code).toBe("torn-write-mid-stream");
      expect((r.error as RestoreError).details).toMatchObject({ frame_seq: 4, isTail: false });
      expect(r.untouched).toBe(true);
      expect(r.torn).toHaveLength(1);
      if (c.reason) expect(r.torn[0]!.reason).toBe(c.reason);

      // Skipping it explicitly restores everything else: b = "v6" from the last frame.
      const skipped = await restoreInto(kind, store, { onTornWrite: () => "skip" });
      expect(skipped.result).toMatchObject({ skippedFrames: 1, finalSeq: 7 });
      expect(skipped.graph.get("b")).toBe("v6");
      await expectStoreUsable(kind, store, true);
    });

    it("at the tail: skipped and counted, everything before it restored", async () => {
      const store = await buildStore(kind);
      const key = walFrameKey(PREFIX, 7);
      writeRaw(kind, store, key, c.mutate(readRaw(kind, store, key)));
      const r = await restoreInto(kind, store);
      expect(r.error).toBeUndefined();
      expect(r.result).toMatchObject({ skippedFrames: 1, finalSeq: 6, replayedFrames: 5 });
      expect(r.torn.map((t) => [t.frame_seq, t.isTail])).toEqual([[7, true]]);
      if (c.reason) expect(r.torn[0]!.reason).toBe(c.reason);
      expect(r.graph.get("b")).toBe("v5");
      await expectStoreUsable(kind, store, false);
    });
  });

  it("an array at a frame key is another record, not a torn frame: corrupt-store even at the tail, nothing skipped", async () => {
    const store = await buildStore(kind);
    const key = walFrameKey(PREFIX, 7);
    writeRaw(kind, store, key, utf8.encode("[1,2,3]"));
    const r = await restoreInto(kind, store);
    expect(r.error).toBeInstanceOf(StorageError);
    expect((r.error as StorageError).code).toBe("corrupt-store");
    expect((r.error as StorageError).details).toMatchObject({ key, seq: 7 });
    expect(r.untouched).toBe(true);
    expect(new TextDecoder().decode(readRaw(kind, store, key))).toBe("[1,2,3]"); // still there: nothing overwrote it
  });

  it("an empty (0-byte) frame file counts as a torn frame, not as a crash", async () => {
    const store = await buildStore(kind);
    writeRaw(kind, store, walFrameKey(PREFIX, 7), new Uint8Array(0));
    const r = await restoreInto(kind, store);
    expect(r.result).toMatchObject({ skippedFrames: 1, finalSeq: 6 });
    writeRaw(kind, store, walFrameKey(PREFIX, 3), new Uint8Array(0));
    const mid = await restoreInto(kind, store);
    expect((mid.error as RestoreError).code).toBe("torn-write-mid-stream");
  });

  it("well-formed frames with foreign payloads are ignored, not applied and not fatal", async () => {
    const store = await buildStore(kind);
    const foreign = (seq: number, change: unknown, lifecycle: "spec" | "data" | "ownership" = "data"): Uint8Array =>
      walFrameCodec.encode(
        sealWalFrame({
          t: "c",
          lifecycle,
          path: "a",
          change: { structure: "someone.else", version: "7", t_ns: 1, lifecycle, change },
          frame_seq: seq,
          frame_t_ns: 1,
        }),
      );
    writeRaw(kind, store, walFrameKey(PREFIX, 8), foreign(8, { kind: "node.set", path: "nope::missing", value: 1 }));
    writeRaw(kind, store, walFrameKey(PREFIX, 9), foreign(9, { kind: "weird.kind", x: [1] }));
    writeRaw(kind, store, walFrameKey(PREFIX, 10), foreign(10, { kind: "node.set", path: "sum", value: 999 }));
    writeRaw(kind, store, walFrameKey(PREFIX, 11), foreign(11, { kind: "node.set", path: "a" }));
    writeRaw(kind, store, walFrameKey(PREFIX, 12), foreign(12, { claim: "x" }, "ownership"));
    const r = await restoreInto(kind, store);
    expect(r.error).toBeUndefined();
    expect(r.result).toMatchObject({ finalSeq: 12, skippedFrames: 0, ignoredFrames: 5 });
    expect(r.graph.get("b")).toBe("v6");
    expect(r.graph.get("a")).toBe(0);
    expect(r.graph.get("sum")).toBe(0); // derived nodes are recomputed, never set from a frame
  });
});

// ---- baselines of the wrong shape -------------------------------------------------------------------------------

interface BadBaseline {
  name: string;
  bytes(good: Record<string, unknown>): Uint8Array;
  code: "baseline-missing" | "codec-mismatch";
}

const badBaselines: BadBaseline[] = [
  { name: "an array", bytes: () => json([1, 2]), code: "baseline-missing" },
  { name: "a number", bytes: () => json(7), code: "baseline-missing" },
  { name: "null", bytes: () => json(null), code: "baseline-missing" },
  { name: 'mode "diff"', bytes: (g) => json({ ...g, mode: "diff" }), code: "baseline-missing" },
  { name: "a spec projection", bytes: (g) => json({ ...g, lifecycle: "spec" }), code: "baseline-missing" },
  { name: "another graph's record", bytes: (g) => json({ ...g, name: "other" }), code: "baseline-missing" },
  { name: "seq negative", bytes: (g) => json({ ...g, seq: -1 }), code: "baseline-missing" },
  { name: "seq a string", bytes: (g) => json({ ...g, seq: "1" }), code: "baseline-missing" },
  { name: "snapshot missing", bytes: (g) => json({ ...g, snapshot: undefined }), code: "baseline-missing" },
  { name: "nodes an array", bytes: (g) => json({ ...g, snapshot: { ...(g.snapshot as object), nodes: [] } }), code: "baseline-missing" },
  {
    name: "a node slice of the wrong shape",
    bytes: (g) => json({ ...g, snapshot: { ...(g.snapshot as object), nodes: { a: { type: 3 } } } }),
    code: "baseline-missing",
  },
  { name: "subgraphs not strings", bytes: (g) => json({ ...g, snapshot: { ...(g.snapshot as object), subgraphs: [1] } }), code: "baseline-missing" },
  { name: "format_version 2", bytes: (g) => json({ ...g, format_version: 2 }), code: "codec-mismatch" },
  { name: "not JSON", bytes: () => utf8.encode("{"), code: "baseline-missing" },
  { name: "invalid UTF-8", bytes: () => Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), code: "baseline-missing" },
  { name: "truncated", bytes: (g) => json(g).subarray(0, 40), code: "baseline-missing" },
];

describe.each<Kind>(["sqlite", "file"])("baselines of the wrong shape (%s)", (kind) => {
  it.each(badBaselines)("$name: RestoreError with a stable code, the graph untouched", async (bad) => {
    const store = await buildStore(kind);
    writeRaw(kind, store, GRAPH, bad.bytes(parse(readRaw(kind, store, GRAPH))));
    const r = await restoreInto(kind, store);
    expect(r.error).toBeInstanceOf(RestoreError);
    expect((r.error as RestoreError).code).toBe(bad.code);
    expect(r.untouched).toBe(true);
  });

  it("a store whose baseline is unreadable takes a new one once the bad record is removed", async () => {
    const store = await buildStore(kind);
    writeRaw(kind, store, GRAPH, utf8.encode("{garbage"));
    const b = backendAt(kind, store);
    const graph = buildGraph();
    const errors: Error[] = [];
    const h = attachSnapshotStorage(graph, [tiersOver(b)], { onError: (e) => errors.push(e) });
    // It will not guess which seqs are free: it refuses to write, with a typed error.
    const refused = await h.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(CodecError);
    expect((refused as CodecError).code).toBe("decode-failed");
    expect(errors.length).toBeGreaterThan(0);
    await h.dispose().catch(() => undefined);
    await kvStorage<unknown>(b, { name: "admin" }).delete(GRAPH);
    graph.set("a", 50);
    const h2 = attachSnapshotStorage(graph, [tiersOver(b)]);
    const seq = await h2.flush();
    expect(seq).toBe(8); // above every stored frame
    await h2.dispose();
    closeAll();
    const r = await restoreInto(kind, store);
    expect(r.result?.finalSeq).toBe(8);
    expect(r.graph.get("a")).toBe(50);
  });
});

// ---- through the engine: corrupted bytes decoded in the worker ----------------------------------------------------

describe.each<Kind>(["sqlite", "file"])("corruption seen through engine proxies (%s)", (kind) => {
  let engine: StorageEngine | undefined;
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    await engine?.close();
    engine = undefined;
  });

  it("a frame that fails to decode in the worker is a torn frame; a corrupt kv value rejects with CodecError", async () => {
    const store = await buildStore(kind);
    const mid = walFrameKey(PREFIX, 4);
    writeRaw(kind, store, mid, Uint8Array.from([0xff, 0xfe, 0x00]));
    writeRaw(kind, store, "plain", Uint8Array.from([0x7b, 0xc3, 0x28]));
    engine = openStorageEngine({ threads: 1 });
    const spec: StoreSpec = kind === "sqlite" ? { kind, path: store } : { kind, dir: store };
    const snapshot = engine.snapshot<GraphCheckpointRecord>(spec, { name: "snap" });
    const wal = engine.kv<WALFrame>(spec, { name: "wal", codec: walFrameCodec });
    const graph = buildGraph();
    const err = await restoreSnapshot(graph, { snapshot, wal }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).code).toBe("torn-write-mid-stream");
    expect(graph.get("b")).toBe("x");

    const kv = engine.kv<unknown>(spec, { name: "kv" });
    const loadErr = await kv.load("plain").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(loadErr).toBeInstanceOf(CodecError);
    expect((loadErr as CodecError).code).toBe("decode-failed");
    // The actor is still healthy: the store takes writes.
    kv.save("fine", 1);
    await kv.flush();
    expect(await kv.load("fine")).toBe(1);
  });
});

// ---- store files that are not stores ------------------------------------------------------------------------------

describe("store files that are not stores", () => {
  let engine: StorageEngine | undefined;
  beforeAll(() => assertBuilt());
  afterEach(async () => {
    await engine?.close().catch(() => undefined);
    engine = undefined;
  });

  it("a SQLite path holding garbage: StorageError('backend-error') with SQLITE_NOTADB, inline and in the worker", async () => {
    const path = join(tmp.dir, "garbage.db");
    writeFileSync(path, Buffer.alloc(8192, 0x41));
    let inline: unknown;
    try {
      sqliteBackend(path);
    } catch (e) {
      inline = e;
    }
    expect(inline).toBeInstanceOf(StorageError);
    expect((inline as StorageError).code).toBe("backend-error");
    expect((inline as StorageError).details.sqliteCode).toBe("SQLITE_NOTADB");

    engine = openStorageEngine({ threads: 1 });
    const kv = engine.kv<number>({ kind: "sqlite", path }, { name: "kv" });
    const err = await kv.load("x").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).details.sqliteCode).toBe("SQLITE_NOTADB");
    // The engine keeps serving other stores.
    const other = engine.kv<number>({ kind: "sqlite", path: join(tmp.dir, "fine.db") }, { name: "kv" });
    other.save("k", 1);
    await other.flush();
    expect(await other.load("k")).toBe(1);
    expect(readFileSync(path).equals(Buffer.alloc(8192, 0x41))).toBe(true); // nothing overwritten
  });

  it("a truncated SQLite store: typed error on open or on first read, never a crash", async () => {
    const path = join(tmp.dir, "truncated.db");
    const b = sqliteBackend(path);
    for (let i = 0; i < 200; i++) b.write(`k${i}`, new Uint8Array(512).fill(i));
    b.close();
    const whole = readFileSync(path);
    writeFileSync(path, whole.subarray(0, 4096 + 100));
    let err: unknown;
    try {
      const again = sqliteBackend(path);
      open.push(again);
      for (let i = 0; i < 200; i++) again.read(`k${i}`);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("backend-error");
    expect(String((err as StorageError).details.sqliteCode)).toMatch(/^SQLITE_(CORRUPT|NOTADB|IOERR)/);
  });

  it("a file store path that is a regular file: typed error (at open or at flush), the file is left alone", async () => {
    const path = join(tmp.dir, "plainfile");
    writeFileSync(path, "precious");
    let err: unknown;
    try {
      const kv = kvStorage<number>(fileBackend(path), { name: "kv" });
      kv.save("k", 1);
      await kv.flush();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("backend-error");
    expect(readFileSync(path, "utf8")).toBe("precious");
  });

  it("foreign files in a file store (odd names, a directory named like a key, bad escapes) are not keys", async () => {
    const dir = join(tmp.dir, "foreign");
    const kv = kvStorage<number>(fileBackend(dir), { name: "kv" });
    kv.save("real", 1);
    await kv.flush();
    writeFileSync(join(dir, "notes.txt"), "x");
    writeFileSync(join(dir, "%ff%fe.bin"), "{}"); // escapes that are not UTF-8
    writeFileSync(join(dir, "caf\u00e9.bin"), "{}"); // raw non-ASCII: never written by the encoder
    mkdirSync(join(dir, "sub.bin"));
    writeFileSync(join(dir, ".tmp-1-1-1"), "half a write");
    expect(await kv.list()).toEqual(["real"]);
    expect(await kv.load("real")).toBe(1);
    kv.save("after", 2);
    await kv.flush();
    expect(await kv.list()).toEqual(["after", "real"]);
  });
});
