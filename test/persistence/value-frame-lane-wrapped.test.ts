/**
 * A WAL tier handed to attach as a wrapper of an engine kv tier (Object.create with its own `save`, or a Proxy
 * trapping `save`) has its `save` called for every frame: the value frame lane (design §3.48) stands in for the
 * engine tier's own save only, never for a wrapper's (review r318 F1: the lane, inherited or forwarded, skipped it).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { openStorageEngine } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import type { GraphCheckpointRecord } from "../../src/persistence/storage-types.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";

type Wrap = (wal: KvStorageTier<WALFrame>, save: (k: string, f: WALFrame) => void) => KvStorageTier<WALFrame>;
const wrappers: Array<[string, Wrap]> = [
  ["Object.create with an own save", (wal, save) => Object.assign(Object.create(wal) as KvStorageTier<WALFrame>, { save })],
  [
    "a Proxy trapping save",
    (wal, save) =>
      new Proxy(wal, {
        get(target, prop, receiver) {
          if (prop === "save") return save;
          return Reflect.get(target, prop, receiver);
        },
      }),
  ],
];

it.each(wrappers)("every frame goes through the wrapper's save (%s)", async (_name, wrap) => {
  const dir = mkdtempSync(join(tmpdir(), "r318-wrapped-"));
  const engine = openStorageEngine({ threads: 1 });
  try {
    const spec = { kind: "sqlite" as const, path: join(dir, "s.db") };
    const inner = engine.kv<WALFrame>(spec, { codec: walFrameCodec });
    const seen: string[] = [];
    // A wrapper that sees (e.g. mirrors, audits) every frame saved, and tags it.
    const wal = wrap(inner, (k, f) => {
      seen.push(k);
      inner.save(k, f);
    });
    const g = createGraph("g");
    g.state("a", 0);
    const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot<GraphCheckpointRecord>(spec), wal }]);
    await h.flush();
    for (let i = 1; i <= 20; i++) {
      g.set("a", i);
      await new Promise((r) => setImmediate(r));
    }
    await h.flush();
    const stored = await inner.list("g/wal/");
    expect(stored.length).toBe(20);
    expect(seen.length).toBe(20); // perf-t304: 0, the wrapper's save never ran
    await h.dispose();
  } finally {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
