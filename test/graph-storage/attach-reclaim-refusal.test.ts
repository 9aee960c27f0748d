/** Review of dead-frame reclaim (design §3.18): a periodic baseline refused for good still stops the pair. */
import { expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { jsonCodec } from "../../src/codec/json.js";
import { CodecError } from "../../src/errors.js";
import { attachSnapshotStorage } from "../../src/index.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import { buildGraph, inlinePair } from "../graph-compaction/fixtures.js";

let thrown = 0;
it("a refused periodic baseline reaches attach (flush rejects write-refused)", async () => {
  const backend = memoryBackend();
  // A snapshot codec that refuses records above a size (e.g. a store's max value size): the attach baseline passes.
  const codec = {
    ...jsonCodec,
    name: "json",
    encode(v: unknown) {
      const b = jsonCodec.encode(v);
      if ((v as { seq: number }).seq > 1) { thrown++; throw new CodecError("encode-failed", "value too large"); }
      return b;
    },
  };
  const snapshot = snapshotStorage<GraphCheckpointRecord>(backend, { codec: codec as never });
  const errors: string[] = [];
  const graph = buildGraph();
  const handle = attachSnapshotStorage(graph, [{ snapshot, wal: inlinePair(backend).wal }], {
    onError: (e) => void errors.push(`${e.name}:${(e as { code?: string }).code}`),
  });
  await handle.flush();
  let outcome = "resolved";
  for (let i = 0; i < 400 && outcome === "resolved"; i++) {
    graph.set("c", `${"payload ".repeat(75)}${i}`);
    await Promise.resolve();
    if (i % 50 === 49) {
      try {
        await handle.flush();
      } catch (e) {
        outcome = `rejected ${(e as { code?: string }).code}`;
      }
    }
  }
  expect(outcome).toBe("rejected write-refused");
});
