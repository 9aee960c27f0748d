/**
 * compactGraph inline on real stores (memory, file, SQLite): the new baseline equals the live graph, covered
 * frames are deleted except the retained ones, a corrupt frame mid-stream changes nothing, a torn tail is
 * skipped, counted and kept, and bad input gets typed errors.
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { jsonCodec } from "../../src/codec/json.js";
import { RestoreError, StorageError } from "../../src/errors.js";
import { wrapBackend } from "../support/test-backend.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord, StorageHandle } from "../../src/persistence/storage-types.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import {
  BACKEND_KINDS,
  GRAPH,
  buildGraph,
  dumpStore,
  inlinePair,
  openBackend,
  randomWave,
  restoredSnapshot,
  rng,
  storedBaseline,
  storedFrameSeqs,
  tempDir,
} from "./fixtures.js";

/** The chunk (0-based) holding the `at`-th frame the backend reader reads, of small frames (stored-graph.ts). */
const chunkOf = (at: number, cap = 256): number => (at < 4 ? 0 : 1 + Math.floor((at - 4) / cap));

const tmp = tempDir("inline");
afterAll(() => tmp.remove());

/** Attach as a background-compacted store runs it: one baseline at attach, frames after. */
function writerOn(backend: StorageBackend, graph: ReturnType<typeof buildGraph>): StorageHandle {
  return attachSnapshotStorage(graph, [inlinePair(backend)], { compactEvery: Number.POSITIVE_INFINITY });
}

/** Rewrites the stored frame `seq` through `edit` (raw JSON, checksum untouched unless `edit` changes it). */
async function tamper(backend: StorageBackend, seq: number, edit: (frame: Record<string, unknown>) => void): Promise<void> {
  const key = walFrameKey(graphWalPrefix(GRAPH), seq);
  const frame = jsonCodec.decode((await backend.read(key))!) as Record<string, unknown>;
  edit(frame);
  await backend.write(key, jsonCodec.encode(frame));
}

describe.each(BACKEND_KINDS)("compactGraph inline on %s", (kind) => {
  it("folds the WAL into a baseline equal to the live graph and deletes the covered frames", async () => {
    const backend = openBackend(kind, tmp);
    const graph = buildGraph();
    const writer = writerOn(backend, graph);
    const random = rng(7);
    for (let i = 0; i < 60; i++) randomWave(graph, random);
    await writer.flush();
    const frames = await storedFrameSeqs(backend);
    expect(frames.length).toBeGreaterThan(60);
    const restoredBefore = await restoredSnapshot(inlinePair(backend));
    expect(restoredBefore).toEqual(graph.snapshot());

    const r = await compactGraph({ backend }, { graphName: GRAPH });
    expect(r).toMatchObject({
      graphName: GRAPH,
      baselineSeq: writer.seq,
      previousBaselineSeq: 1,
      foldedFrames: frames.length,
      deletedFrames: frames.length,
      keptFrames: 0,
      skippedTornFrames: 0,
      tornFrameSeqs: [],
      atomic: backend.supports.atomicBatch,
    });
    expect(r.bytesAfter).toBeLessThan(r.bytesBefore);
    expect(await storedFrameSeqs(backend)).toEqual([]);
    const baseline = await storedBaseline(backend);
    expect(baseline).toMatchObject({ name: GRAPH, mode: "full", seq: writer.seq, format_version: 1 });
    expect(baseline.snapshot).toEqual(graph.snapshot());
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(restoredBefore);

    // Nothing new: no baseline rewrite, nothing deleted.
    const again = await compactGraph({ backend }, { graphName: GRAPH });
    expect(again).toMatchObject({ baselineSeq: writer.seq, foldedFrames: 0, deletedFrames: 0 });

    // The writer goes on above the compacted baseline; the next compaction folds only the new frames.
    for (let i = 0; i < 30; i++) randomWave(graph, random);
    await writer.dispose();
    const third = await compactGraph({ backend }, { graphName: GRAPH });
    expect(third.previousBaselineSeq).toBe(r.baselineSeq);
    expect(third.baselineSeq).toBe(writer.seq);
    expect((await storedBaseline(backend)).snapshot).toEqual(graph.snapshot());
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
    await backend.close?.();
  });

  it("keeps the last keepFrames frames at or below the new baseline", async () => {
    const backend = openBackend(kind, tmp);
    const graph = buildGraph();
    const writer = writerOn(backend, graph);
    const random = rng(11);
    for (let i = 0; i < 20; i++) randomWave(graph, random);
    await writer.flush();
    const r = await compactGraph({ backend }, { graphName: GRAPH, keepFrames: 5 });
    expect(r.keptFrames).toBe(5);
    expect(await storedFrameSeqs(backend)).toEqual([0, 1, 2, 3, 4].map((i) => writer.seq - 4 + i));

    for (let i = 0; i < 20; i++) randomWave(graph, random);
    await writer.dispose();
    const second = await compactGraph({ backend }, { graphName: GRAPH, keepFrames: 3 });
    expect(second.deletedFrames).toBe(r.keptFrames + (writer.seq - r.baselineSeq) - 3);
    expect(await storedFrameSeqs(backend)).toEqual([writer.seq - 2, writer.seq - 1, writer.seq]);
    expect((await storedBaseline(backend)).snapshot).toEqual(graph.snapshot());

    const all = await compactGraph({ backend }, { graphName: GRAPH, keepFrames: Number.POSITIVE_INFINITY });
    expect(all).toMatchObject({ deletedFrames: 0, keptFrames: 3 });
    await backend.close?.();
  });

  it("aborts on a corrupt frame mid-stream with a typed error and changes nothing", async () => {
    const backend = openBackend(kind, tmp);
    const graph = buildGraph();
    const writer = writerOn(backend, graph);
    const random = rng(3);
    for (let i = 0; i < 20; i++) randomWave(graph, random);
    await writer.dispose();
    const mid = Math.floor(writer.seq / 2);

    await tamper(backend, mid, (f) => {
      f.frame_t_ns = 12345; // body changed, checksum kept: a torn write
    });
    const before = await dumpStore(backend);
    const err = await compactGraph({ backend }, { graphName: GRAPH }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestoreError);
    expect(err).toMatchObject({ code: "torn-write-mid-stream", details: { frame_seq: mid, reason: "checksum-mismatch" } });
    expect(await dumpStore(backend)).toEqual(before);

    // Bytes that are not a frame at all (e.g. a half-written file) are torn too.
    await backend.write(walFrameKey(graphWalPrefix(GRAPH), mid), new TextEncoder().encode('{"t":"c","lifec'));
    const garbled = await dumpStore(backend);
    const err2 = await compactGraph({ backend }, { graphName: GRAPH }).catch((e: unknown) => e);
    expect(err2).toMatchObject({ name: "RestoreError", code: "torn-write-mid-stream", details: { reason: "decode-failed" } });
    expect(await dumpStore(backend)).toEqual(garbled);

    // An explicit override may skip it: the frame is then covered by the baseline and deleted, but counted.
    const skipped = await compactGraph({ backend }, { graphName: GRAPH, onTornWrite: () => "skip" });
    expect(skipped).toMatchObject({ skippedTornFrames: 1, tornFrameSeqs: [mid], baselineSeq: writer.seq });
    expect(await storedFrameSeqs(backend)).toEqual([]);
    await backend.close?.();
  });

  it("streams the WAL: frames are read, screened and folded one at a time (a mid-stream corruption stops the reads)", async () => {
    const backend = wrapBackend(openBackend(kind, tmp));
    const graph = buildGraph();
    const writer = writerOn(backend, graph);
    const random = rng(4);
    for (let i = 0; i < 40; i++) randomWave(graph, random);
    await writer.dispose();
    const frames = (await storedFrameSeqs(backend)).length;
    const corrupt = Math.floor(writer.seq / 4);
    await tamper(backend, corrupt, (f) => {
      f.frame_t_ns = 777;
    });

    const readsBefore = backend.counts.reads;
    const err = await compactGraph({ backend }, { graphName: GRAPH }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "torn-write-mid-stream", details: { frame_seq: corrupt } });
    const reads = backend.counts.reads - readsBefore;
    // The baseline, then the frames up to the corrupt one: none after it was loaded.
    expect(frames).toBeGreaterThan(30);
    expect(reads).toBe(1 + (await storedFrameSeqs(backend)).filter((s) => s <= corrupt).length);
    await backend.close?.();
  });

  it("reads the WAL a few hundred frames per readMany where the backend has it, and still stops at a corrupt frame", async () => {
    const backend = wrapBackend(openBackend(kind, tmp), { readMany: true });
    const graph = buildGraph();
    const writer = writerOn(backend, graph);
    const random = rng(11);
    for (let i = 0; i < 400; i++) randomWave(graph, random);
    await writer.dispose();
    const frames = (await storedFrameSeqs(backend)).length;
    expect(frames).toBeGreaterThan(400);
    const corrupt = writer.seq - 5;
    await tamper(backend, corrupt, (f) => {
      f.frame_t_ns = 777;
    });
    const before = { ...backend.counts };
    const err = await compactGraph({ backend }, { graphName: GRAPH }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "torn-write-mid-stream", details: { frame_seq: corrupt } });
    // Every frame up to the corrupt one came in chunks (4 frames while their sizes are learnt, then 256 per call),
    // none read alone; the chunk after the corrupt frame's was read ahead.
    const chunks = backend.counts.readManyCalls - before.readManyCalls;
    const corruptAt = (await storedFrameSeqs(backend)).indexOf(corrupt);
    expect(chunks).toBe(Math.min(chunkOf(frames - 1), chunkOf(corruptAt) + 1) + 1);
    expect(backend.counts.reads - before.reads).toBe(frames + 1); // the frames and the baseline (read alone)
    expect(await storedFrameSeqs(backend)).toHaveLength(frames); // nothing deleted
    await backend.close?.();
  });

  it("skips a torn tail frame, counts it and leaves it in place above the baseline", async () => {
    const backend = openBackend(kind, tmp);
    const graph = buildGraph();
    const writer = writerOn(backend, graph);
    const random = rng(5);
    for (let i = 0; i < 15; i++) randomWave(graph, random);
    await writer.flush();
    const beforeTail = graph.snapshot();
    graph.set("c", "last"); // `c` has no dependents: exactly one frame
    await writer.dispose();
    const tail = writer.seq;
    await tamper(backend, tail, (f) => {
      f.checksum = "0".repeat(64);
    });

    const r = await compactGraph({ backend }, { graphName: GRAPH });
    expect(r).toMatchObject({ baselineSeq: tail - 1, skippedTornFrames: 1, tornFrameSeqs: [tail] });
    expect(await storedFrameSeqs(backend)).toEqual([tail]);
    expect((await storedBaseline(backend)).snapshot).toEqual(beforeTail);
    // Restore sees the same torn tail above the baseline and skips it too.
    const fresh = buildGraph();
    const restored = await restoreSnapshot(fresh, inlinePair(backend));
    expect(restored).toMatchObject({ skippedFrames: 1, finalSeq: tail - 1 });
    expect(fresh.snapshot()).toEqual(beforeTail);
    await backend.close?.();
  });
});

describe("compactGraph input checks", () => {
  it("needs a stored value baseline", async () => {
    const backend = memoryBackend();
    await expect(compactGraph({ backend }, { graphName: GRAPH })).rejects.toMatchObject({
      name: "RestoreError",
      code: "baseline-missing",
    });
    const spec: Omit<GraphCheckpointRecord, "snapshot"> & { snapshot: unknown } = {
      name: GRAPH,
      mode: "full",
      lifecycle: "spec",
      seq: 1,
      timestamp_ns: 0,
      format_version: 1,
      snapshot: buildGraph().snapshot(),
    };
    backend.write(GRAPH, jsonCodec.encode(spec));
    await expect(compactGraph({ backend }, { graphName: GRAPH })).rejects.toMatchObject({ code: "baseline-missing" });
    backend.write(GRAPH, new TextEncoder().encode("not json"));
    await expect(compactGraph({ backend }, { graphName: GRAPH })).rejects.toMatchObject({ code: "baseline-missing" });
  });

  it("refuses a baseline of a newer format or of another graph, and a WAL with a hole, changing nothing", async () => {
    for (const kind of BACKEND_KINDS) {
      const backend = openBackend(kind, tmp);
      const graph = buildGraph();
      const writer = writerOn(backend, graph);
      const random = rng(23);
      for (let i = 0; i < 12; i++) randomWave(graph, random);
      await writer.dispose();
      const good = await storedBaseline(backend);
      const attempt = async (): Promise<unknown> => {
        const before = await dumpStore(backend);
        const err = await compactGraph({ backend }, { graphName: GRAPH }).catch((e: unknown) => e);
        expect(await dumpStore(backend)).toEqual(before);
        return err;
      };

      // A newer writer's baseline is never folded and rewritten as version 1.
      await backend.write(GRAPH, jsonCodec.encode({ ...good, format_version: 99 }));
      expect(await attempt()).toMatchObject({ name: "RestoreError", code: "codec-mismatch" });
      await backend.write(GRAPH, jsonCodec.encode({ ...good, snapshot: { ...good.snapshot, version: 2 } }));
      expect(await attempt()).toMatchObject({ name: "RestoreError", code: "codec-mismatch" });
      await backend.write(GRAPH, jsonCodec.encode({ ...good, name: "other" }));
      expect(await attempt()).toMatchObject({ name: "RestoreError", code: "baseline-missing" });

      await backend.write(GRAPH, jsonCodec.encode(good));
      const seqs = await storedFrameSeqs(backend);
      const lost = seqs[Math.floor(seqs.length / 2)]!;
      await backend.delete!(walFrameKey(graphWalPrefix(GRAPH), lost));
      expect(await attempt()).toMatchObject({ name: "RestoreError", code: "wal-gap", details: { from: lost, to: lost } });
      await backend.close?.();
    }
  });

  it("rejects bad options with errors naming them", async () => {
    const backend = memoryBackend();
    const bad = (opts: unknown): Promise<unknown> => compactGraph({ backend }, opts as { graphName: string });
    await expect(bad({ graphName: "" })).rejects.toThrow(TypeError);
    await expect(bad({ graphName: 3 })).rejects.toThrow(/graphName/);
    await expect(bad({ graphName: GRAPH, keepFrames: -1 })).rejects.toThrow(RangeError);
    await expect(bad({ graphName: GRAPH, keepFrames: 1.5 })).rejects.toThrow(/keepFrames/);
    await expect(bad({ graphName: GRAPH, onTornWrite: "skip" })).rejects.toThrow(/onTornWrite/);
    await expect(bad(null)).rejects.toThrow(TypeError);
  });

  it("needs a backend that can list keys", async () => {
    const inner = memoryBackend();
    const unlisted: StorageBackend = {
      name: "no-list",
      supports: { ...inner.supports, list: false },
      read: (k) => inner.read(k),
      write: (k, b) => inner.write(k, b),
      delete: (k) => inner.delete(k),
    };
    const err = await compactGraph({ backend: unlisted }, { graphName: GRAPH }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: "backend-no-list-support" });
  });
});

describe("compactGraph on failing and asynchronous backends", () => {
  it("a failed commit is a typed backend error and leaves the store as it was", async () => {
    const backend = wrapBackend(openBackend("sqlite", tmp));
    const graph = buildGraph();
    const writer = writerOn(backend, graph);
    const random = rng(13);
    for (let i = 0; i < 10; i++) randomWave(graph, random);
    await writer.dispose();
    const before = await dumpStore(backend);
    backend.failNext(1);
    const err = await compactGraph({ backend }, { graphName: GRAPH }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: "backend-error", details: { graphName: GRAPH, osCode: "EIO" } });
    expect(await dumpStore(backend)).toEqual(before);
    // Nothing was lost: the next compaction succeeds.
    expect((await compactGraph({ backend }, { graphName: GRAPH })).baselineSeq).toBe(writer.seq);
    await backend.close?.();
  });

  it("works on a backend whose every call is asynchronous", async () => {
    const backend = wrapBackend(openBackend("file", tmp), { async: true });
    const graph = buildGraph();
    const writer = writerOn(backend, graph);
    const random = rng(17);
    for (let i = 0; i < 25; i++) randomWave(graph, random);
    await writer.dispose();
    const r = await compactGraph({ backend }, { graphName: GRAPH, keepFrames: 1 });
    expect(r).toMatchObject({ baselineSeq: writer.seq, keptFrames: 1, atomic: false });
    expect(await restoredSnapshot(inlinePair(backend))).toEqual(graph.snapshot());
    await backend.close?.();
  });
});

describe("compactGraph reading ahead", () => {
  /** A writer's frames on SQLite, read through a wrapper whose `readMany` fails on the calls listed. */
  async function storeFailingReads(failOn: readonly number[]): Promise<{ backend: ReturnType<typeof wrapBackend>; seq: number; calls: () => number }> {
    const backend = wrapBackend(openBackend("sqlite", tmp), { readMany: true });
    const graph = buildGraph();
    const writer = writerOn(backend, graph);
    const random = rng(19);
    for (let i = 0; i < 700; i++) randomWave(graph, random);
    await writer.dispose();
    const readMany = backend.readMany!.bind(backend);
    let calls = 0;
    backend.readMany = (keys) => {
      if (failOn.includes(++calls)) throw Object.assign(new Error("EIO: injected read failure"), { code: "EIO" });
      return readMany(keys);
    };
    return { backend, seq: writer.seq, calls: () => calls };
  }

  it("a chunk read ahead of a corrupt frame that fails is nobody's failure: the corruption is reported, nothing changes", async () => {
    // A chunk of 4 frames, then of 256: frame 10 is in the second; the third, read ahead, fails.
    const { backend, calls } = await storeFailingReads([3]);
    await tamper(backend, 10, (f) => {
      f.frame_t_ns = 777;
    });
    const before = await dumpStore(backend);
    const err = await compactGraph({ backend }, { graphName: GRAPH }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "torn-write-mid-stream", details: { frame_seq: 10 } });
    expect(calls()).toBe(3); // the third chunk was asked for before the second was screened
    expect(await dumpStore(backend)).toEqual(before);
    await backend.close?.();
  });

  it("a failing read of a later chunk is a typed backend error and changes nothing; the next compaction succeeds", async () => {
    const { backend, seq } = await storeFailingReads([3]);
    const before = await dumpStore(backend);
    const err = await compactGraph({ backend }, { graphName: GRAPH }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: "backend-error", details: { osCode: "EIO" } });
    expect(await dumpStore(backend)).toEqual(before);
    expect((await compactGraph({ backend }, { graphName: GRAPH })).baselineSeq).toBe(seq);
    await backend.close?.();
  });
});
