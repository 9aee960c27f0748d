/**
 * A store whose frames the Rust implementation wrote (docs/protocol.md §2.6): exact u64 nanosecond counts and
 * payload integers beyond 2^53, written straight to the backend as bytes. Restore, verify, fold, compaction
 * (inline and in the store's actor) and the CLI's export, frames and verify keep every integer exact.
 * The frame bytes are the hand-written vectors of test/vectors/wal-checksums-u64.json.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { compactGraph, compactGraphInEngine } from "../../src/persistence/compaction.js";
import { foldStoredGraph } from "../../src/persistence/fold.js";
import {
  attachSnapshotStorage,
  createGraph,
  restoreSnapshot,
  type GraphCheckpointRecord,
  type ReactiveGraph,
} from "../../src/index.js";
import { backendSource, surveyStoredGraph } from "../../src/persistence/stored-graph.js";
import { graphWalPrefix, walFrameCodec, walFrameKey, type WALFrame } from "../../src/wal/index.js";
import { requireBuiltBin, runCli, tempDir } from "../cli/fixtures/cli.js";
import { namedPair } from "../support/named-pair.js";

interface U64Case {
  name: string;
  stored: string;
}
const vectors = (
  JSON.parse(readFileSync(new URL("../vectors/wal-checksums-u64.json", import.meta.url), "utf8")) as { cases: U64Case[] }
).cases;
const stored = (name: string): string => vectors.find((c) => c.name === name)!.stored;

/** Frames 2, 3 and 4 of graph "g", each a node.set of x (their frame_seq is in the vector). */
const FRAMES: readonly [number, string][] = [
  [2, stored("u64-max-node-set")],
  [3, stored("payload-integers-around-2-53")],
  [4, stored("long-digit-runs-in-strings")],
];
/** x after each seq, exactly. */
const X_AT = new Map<number, unknown>([
  [1, 0],
  [2, 18446744073709551615n],
  [3, { big: [9007199254740993n, -9223372036854775808n, 9007199254740992, 100000000000000000000000n], small: 9007199254740991 }],
  [4, { id: "12345678901234567890", note: "n: 12345678901234567890, -12345678901234567890" }],
]);
const BIG_TEXT = '{"big":[9007199254740993,-9223372036854775808,9007199254740992,100000000000000000000000],"small":9007199254740991}';

const tmp = tempDir("u64");
afterAll(() => tmp.remove());

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const textOf = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes);

function build(): ReactiveGraph {
  const g = createGraph("g");
  g.state("x", 0);
  return g;
}

/** Our baseline at seq 1 (x = 0), then frames 2..4 as the Rust implementation wrote them. */
async function rustStore(backend: StorageBackend): Promise<void> {
  const g = build();
  const h = attachSnapshotStorage(g, [namedPair(backend)], { compactEvery: Number.POSITIVE_INFINITY });
  expect(await h.flush()).toBe(1);
  await h.dispose();
  for (const [seq, text] of FRAMES) await backend.write(walFrameKey(graphWalPrefix("g"), seq), utf8(text));
}

async function restoredX(backend: StorageBackend, targetSeq?: number): Promise<unknown> {
  const g = build();
  await restoreSnapshot(g, { ...namedPair(backend), ...(targetSeq === undefined ? {} : { targetSeq }) });
  return g.get("x");
}

describe.each(["memory", "sqlite"] as const)("a %s store written by the Rust implementation", (kind) => {
  const open = (): StorageBackend => (kind === "memory" ? memoryBackend() : sqliteBackend(tmp.path("store.db")));

  it("restores every seq exactly, verifies clean and folds to the same values", async () => {
    const backend = open();
    await rustStore(backend);
    for (const [seq, x] of X_AT) expect(await restoredX(backend, seq)).toEqual(x);
    expect(await restoredX(backend)).toEqual(X_AT.get(4));

    const survey = await surveyStoredGraph(backendSource(backend), "g");
    expect(survey).toMatchObject({ restorable: true, findings: [] });

    const { fold } = await foldStoredGraph(backendSource(backend), "g", { targetSeq: 3 });
    expect(fold.snapshot.nodes.x).toMatchObject({ value: X_AT.get(3) });
    await backend.close?.();
  });

  it("compaction writes a baseline with the exact digits, and restore from it is exact", async () => {
    const backend = open();
    await rustStore(backend);
    const result = await compactGraph({ backend }, { graphName: "g", keepFrames: 0 });
    expect(result).toMatchObject({ baselineSeq: 4, foldedFrames: 3, skippedTornFrames: 0 });
    expect(await restoredX(backend)).toEqual(X_AT.get(4));

    // Compact at seq 3 a second store: the baseline itself now holds the wide integers.
    const other = open();
    await rustStore(other);
    await other.delete!(walFrameKey(graphWalPrefix("g"), 4));
    await compactGraph({ backend: other }, { graphName: "g" });
    expect(textOf(await other.read("g"))).toContain(BIG_TEXT);
    expect(await restoredX(other)).toEqual(X_AT.get(3));
    // A graph restored from it persists on: its next baseline keeps the digits too.
    const g = build();
    const t = namedPair(other);
    await restoreSnapshot(g, t);
    const h = attachSnapshotStorage(g, [t], { compactEvery: Number.POSITIVE_INFINITY });
    await h.flush();
    await h.dispose();
    expect(textOf(await other.read("g"))).toContain(BIG_TEXT);
    expect(await restoredX(other)).toEqual(X_AT.get(3));
    await backend.close?.();
    await other.close?.();
  });
});

describe("through the engine (workers run the compiled dist/)", () => {
  beforeAll(requireBuiltBin);

  it("the actor's compaction and the engine's tiers keep the integers exact", async () => {
    const path = tmp.path("engine.db");
    const backend = sqliteBackend(path);
    await rustStore(backend);
    await backend.delete!(walFrameKey(graphWalPrefix("g"), 4));
    await backend.close?.();

    const engine = openStorageEngine({ threads: 1 });
    try {
      const spec = { kind: "sqlite" as const, path };
      const engineTiers = {
        snapshot: engine.snapshot<GraphCheckpointRecord>(spec, { name: "snap" }),
        wal: engine.kv<WALFrame>(spec, { name: "wal", codec: walFrameCodec }),
      };
      const frame = await engineTiers.wal.load(walFrameKey(graphWalPrefix("g"), 3));
      expect(frame?.frame_t_ns).toBe(9007199254740993n);
      const g = build();
      await restoreSnapshot(g, engineTiers);
      expect(g.get("x")).toEqual(X_AT.get(3));

      expect(await compactGraphInEngine(engine, spec, "g")).toMatchObject({ baselineSeq: 3, foldedFrames: 2 });
      const restored = build();
      await restoreSnapshot(restored, engineTiers);
      expect(restored.get("x")).toEqual(X_AT.get(3));
    } finally {
      await engine.close();
    }
    const after = sqliteBackend(path);
    expect(textOf(await after.read("g"))).toContain(BIG_TEXT);
    await after.close?.();
  });
});

describe("the CLI", () => {
  beforeAll(requireBuiltBin);

  it("verify passes, frames prints each frame's exact text, export prints the exact state, import keeps it", async () => {
    const path = tmp.path("cli.db");
    const backend = sqliteBackend(path);
    await rustStore(backend);
    await backend.close?.();

    const verify = runCli(["verify", path, "--graph", "g", "--json"]);
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);

    const frames = runCli(["frames", path, "--graph", "g"]);
    expect(frames.code).toBe(0);
    for (const [, text] of FRAMES) expect(frames.stdout).toContain(`"frame":${text}`);
    expect(frames.stdout).not.toContain('"checksum_ok":false');

    const exported = runCli(["export", path, "--graph", "g", "--at", "3"]);
    expect(exported.stderr).toBe("");
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain(`"value":${BIG_TEXT}`);

    // Import that export into a fresh store: its baseline holds the same digits, and restore is exact.
    const file = tmp.path("export.json");
    writeFileSync(file, exported.stdout);
    const target = tmp.path("imported.db");
    const imported = runCli(["import", file, target, "--backend", "sqlite"]);
    expect(imported.stderr).toBe("");
    expect(imported.code).toBe(0);
    const back = sqliteBackend(target);
    expect(textOf(await back.read("g"))).toContain(BIG_TEXT);
    expect(await restoredX(back)).toEqual(X_AT.get(3));
    await back.close?.();
  });
});
