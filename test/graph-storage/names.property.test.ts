/**
 * Property: many graphs in one store, named from pieces that make keys look alike ("g", "/", "wal", digit runs,
 * U+001F, newline, NUL). Every name the rule accepts (src/wal/keys.ts graphNameProblem) is a key no other graph's
 * frame and no append-log segment can have, and a graph under it writes, compacts and restores alone, beside all the
 * others; every name it refuses is refused by attach (StorageError `invalid-name`) with nothing written
 * (docs/design.md §3.27). Memory backend (fast), a SQLite file and a file-backend directory (a few runs each).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { StorageError } from "../../src/errors.js";
import { attachSnapshotStorage, createGraph, restoreSnapshot, type Graph, type GraphCheckpointRecord } from "../../src/index.js";
import { compactGraph } from "../../src/persistence/compaction.js";
import { parseBucketKey } from "../../src/tier/append-layout.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { graphNameProblem, splitWalFrameKey } from "../../src/wal/keys.js";
import { walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { syncErrorOf } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "grf-names-property-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const ZEROS = "0".repeat(19);
const piece = fc.constantFrom("g", "/", "wal", "/wal", "/wal/", `${ZEROS}1`, `${ZEROS}2`, "\u001f", "\n", "\u0000", "1", "");
const name = fc.array(piece, { minLength: 0, maxLength: 6 }).map((p) => p.join(""));

describe("graph names (pure rule)", () => {
  it("an accepted name is never another graph's frame key nor an append-log segment key", () => {
    fc.assert(
      fc.property(fc.oneof(name, fc.string()), (n) => {
        if (graphNameProblem(n) !== undefined) return;
        expect(splitWalFrameKey(n)).toBeUndefined();
        expect(parseBucketKey(n).segment).toBe(0);
        expect(n.length).toBeGreaterThan(0);
      }),
      { numRuns: 2000 },
    );
  });
});

/** `graph` answering to `name`: what a Graph of another implementation may be called. */
function renamed(graph: Graph, name: string): Graph {
  return new Proxy(graph, { get: (target, key) => (key === "name" ? name : Reflect.get(target, key, target)) });
}

const tiers = (backend: StorageBackend) => ({
  snapshot: snapshotStorage<GraphCheckpointRecord>(backend, { name: "snap" }),
  wal: kvStorage<WALFrame>(backend, { name: "wal", codec: walFrameCodec }),
});

/** Writes each accepted graph (n = 1..3 of its own), compacts the chosen ones, then restores every one. */
async function roundTrip(backend: StorageBackend, names: readonly string[], compacted: readonly boolean[]): Promise<void> {
  const accepted = names.filter((n) => graphNameProblem(n) === undefined);
  for (const [i, n] of names.entries()) {
    if (graphNameProblem(n) !== undefined) {
      // createGraph refuses "" itself: a Graph of another implementation brings it to attach.
      const g = n === "" ? renamed(createGraph("stub"), n) : createGraph(n);
      const err = syncErrorOf(() => attachSnapshotStorage(g, [tiers(backend)]));
      expect((err as StorageError).code, JSON.stringify(n)).toBe("invalid-name");
      continue;
    }
    const g = createGraph(n);
    g.state("n", 0);
    const handle = attachSnapshotStorage(g, [tiers(backend)], { compactEvery: Number.POSITIVE_INFINITY });
    for (let v = 1; v <= 3; v++) {
      g.set("n", i * 10 + v);
      await handle.flush();
    }
    await handle.dispose();
  }
  for (const [i, n] of accepted.entries()) if (compacted[i % compacted.length]) await compactGraph({ backend }, { graphName: n });
  for (const n of accepted) {
    const r = createGraph(n);
    r.state("n", 0);
    await restoreSnapshot(r, tiers(backend));
    expect(r.get("n"), JSON.stringify(n)).toBe(names.indexOf(n) * 10 + 3);
  }
  // Nothing was stored for a refused name: its key holds no baseline of its own.
  for (const n of names) {
    if (graphNameProblem(n) === undefined || !(n as string & { isWellFormed(): boolean }).isWellFormed()) continue;
    const bytes = await backend.read(n);
    if (bytes !== undefined) expect(new TextDecoder().decode(bytes)).not.toContain(`"name":${JSON.stringify(n)}`);
  }
}

const names = fc.uniqueArray(name, { minLength: 1, maxLength: 8 });
const flags = fc.array(fc.boolean(), { minLength: 1, maxLength: 4 });

describe("graphs with look-alike names in one store", () => {
  it("each accepted one restores alone beside the others, compacted or not (memory backend)", async () => {
    await fc.assert(
      fc.asyncProperty(names, flags, async (ns, cs) => {
        const backend = memoryBackend();
        await roundTrip(backend, ns, cs);
      }),
      { numRuns: 60 },
    );
  });

  it("the same on a SQLite file", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(names, flags, async (ns, cs) => {
        const backend = sqliteBackend(join(root, `p-${run++}.db`));
        try {
          await roundTrip(backend, ns, cs);
        } finally {
          backend.close();
        }
      }),
      { numRuns: 8 },
    );
  });

  it("the same in a file-backend directory (names become file names)", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(names, flags, async (ns, cs) => {
        const backend = fileBackend(join(root, `f-${run++}`));
        try {
          await roundTrip(backend, ns, cs);
        } finally {
          backend.close();
        }
      }),
      { numRuns: 6 },
    );
  });
});
