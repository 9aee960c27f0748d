/**
 * A user codec that throws (a plain Error, a string, a non-Error object) from encode or decode. The caller got that
 * raw throw (inline kv flush, an engine tier whose codec runs on the main thread), or a generic
 * StorageError("backend-error") that kept the value for retries forever (snapshot and append-log flushes: the tier
 * never got past it, and its close failed). Now every such throw is CodecError("encode-failed" / "decode-failed")
 * with the original as its cause, the same code and message whether the codec runs inline, on the main thread or in
 * a store's worker (module codec: the error crosses the port typed); the refused value is dropped, what was
 * acknowledged before stays stored, and the next write of a good value goes through.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Codec } from "../../src/codec/types.js";
import { openStorageEngine, type StorageEngine } from "../../src/engine/index.js";
import { CodecError } from "../../src/errors.js";
import { sqliteAppendLog, sqliteKv, sqliteSnapshot } from "../../src/tier/factories.js";
import type { AppendLogStorageTier, KvStorageTier, SnapshotStorageTier } from "../../src/tier/types.js";
import { tempRoot } from "../engine/fixtures/helpers.js";
import { codec } from "./fixtures/throwing-codec.mjs";

const CODEC_URL = pathToFileURL(join(import.meta.dirname, "fixtures/throwing-codec.mjs")).href;
const root = tempRoot("user-codec-errors");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close();
  engine = undefined;
});

type Mode = "inline" | "engine, codec on the main thread" | "engine, codec module in the worker";
type Kind = "error" | "string" | "object";
type Rec = { name: string; seq: number; throw?: Kind; poison?: Kind; v?: number };

interface Tiers {
  kv: KvStorageTier<unknown>;
  snap: SnapshotStorageTier<Rec>;
  log: AppendLogStorageTier<unknown>;
}

function open(mode: Mode): Tiers {
  // A store each: an append-log lists every key of its store, the other tiers' records too.
  const [kvPath, snapPath, logPath] = [root.fresh("kv.db"), root.fresh("snap.db"), root.fresh("log.db")];
  if (mode === "inline") {
    return {
      kv: sqliteKv<unknown>(kvPath, { codec: codec as Codec<unknown> }),
      snap: sqliteSnapshot<Rec>(snapPath, { name: "snap", codec: codec as Codec<Rec> }),
      log: sqliteAppendLog<unknown>(logPath, { name: "log", codec: codec as Codec<readonly unknown[]> }),
    };
  }
  engine ??= openStorageEngine({ threads: 1, onError: () => undefined });
  const c = mode === "engine, codec on the main thread" ? codec : { module: CODEC_URL, export: "codec" };
  return {
    kv: engine.kv<unknown>({ kind: "sqlite", path: kvPath }, { codec: c as Codec<unknown> }),
    snap: engine.snapshot<Rec>({ kind: "sqlite", path: snapPath }, { name: "snap", codec: c as Codec<Rec> }),
    log: engine.appendLog<unknown>({ kind: "sqlite", path: logPath }, { name: "log", codec: c as Codec<readonly unknown[]> }),
  };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => "resolved",
    (e: unknown) => e,
  );
}

/** The typed error a throwing codec must give, its message naming the codec and what it threw. */
function expectCodecError(err: unknown, code: "encode-failed" | "decode-failed", kind: Kind, mode: Mode): void {
  expect(err).toBeInstanceOf(CodecError);
  expect((err as CodecError).code).toBe(code);
  const thrown = kind === "object" ? '{"reason":"codec said no"}' : "codec said no";
  expect((err as CodecError).message).toBe(thrown);
  expect((err as CodecError).details.codec).toMatch(/throwing-json|throwing-codec\.mjs/);
  const cause = (err as Error).cause;
  // A refusal the store's actor reports crosses the port: its cause is rebuilt there as an Error of that message.
  if (mode !== "inline") expect(cause === "codec said no" || cause instanceof Error || (cause as { reason?: string }).reason === "codec said no").toBe(true);
  else if (kind === "error") expect((cause as Error).message).toBe("codec said no");
  else if (kind === "string") expect(cause).toBe("codec said no");
  else expect(cause).toEqual({ reason: "codec said no" });
}

const MODES: Mode[] = ["inline", "engine, codec on the main thread", "engine, codec module in the worker"];
const KINDS: Kind[] = ["error", "string", "object"];

describe.each(MODES)("a user codec that throws (%s)", (mode) => {
  it.each(KINDS)("encode throwing a %s: the flush rejects CodecError('encode-failed'), the tier goes on", async (kind) => {
    const { kv, snap, log } = open(mode);
    kv.save("before", { v: 1 });
    snap.save({ name: "snap", seq: 1, v: 1 });
    log.appendEntries([{ v: 1 }]);
    await Promise.all([kv.flush(), snap.flush(), log.flush()]);

    kv.save("bad", { throw: kind });
    expectCodecError(await rejection(kv.flush()), "encode-failed", kind, mode);
    snap.save({ name: "snap", seq: 2, throw: kind });
    expectCodecError(await rejection(snap.flush()), "encode-failed", kind, mode);
    log.appendEntries([{ throw: kind }]);
    expectCodecError(await rejection(log.flush()), "encode-failed", kind, mode);

    // Nothing acknowledged is lost, nothing of the refused values is stored, and good writes go through.
    expect(await kv.load("before")).toEqual({ v: 1 });
    expect(await kv.load("bad")).toBeUndefined();
    expect(await snap.load()).toEqual({ name: "snap", seq: 1, v: 1 });
    expect((await log.loadEntries()).entries).toEqual([{ v: 1 }]);
    kv.save("after", { v: 3 });
    snap.save({ name: "snap", seq: 3, v: 3 });
    log.appendEntries([{ v: 3 }]);
    await Promise.all([kv.flush(), snap.flush(), log.flush()]);
    expect(await kv.load("after")).toEqual({ v: 3 });
    expect(await snap.load()).toEqual({ name: "snap", seq: 3, v: 3 });
    expect((await log.loadEntries()).entries).toEqual([{ v: 1 }, { v: 3 }]);
    await Promise.all([kv.close(), snap.close(), log.close()]);
  });

  it.each(KINDS)("decode throwing a %s: the read rejects CodecError('decode-failed'), other reads go on", async (kind) => {
    const { kv, snap, log } = open(mode);
    kv.save("ok", { v: 1 });
    kv.save("poisoned", { poison: kind });
    snap.save({ name: "snap", seq: 1, poison: kind });
    log.appendEntries([{ v: 1 }]);
    await Promise.all([kv.flush(), snap.flush(), log.flush()]);

    expectCodecError(await rejection(kv.load("poisoned")), "decode-failed", kind, mode);
    expectCodecError(await rejection(snap.load()), "decode-failed", kind, mode);
    expect(await kv.load("ok")).toEqual({ v: 1 });
    expect((await log.loadEntries()).entries).toEqual([{ v: 1 }]);
    await Promise.all([kv.close(), snap.close(), log.close()]);
  });
});
