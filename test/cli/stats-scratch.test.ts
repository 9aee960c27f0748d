/**
 * `stats <store>` writes a scratch graph into a user's store: it must leave the store's keys exactly as they were
 * (it deleted every key under the scratch graph's prefix, the user's too), and a run killed mid-way must not lock
 * every later run out ("graph already exists" for a leftover no CLI command removes).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, openBackend, setFrame, storePath, type Kind } from "./fixtures/stores.js";
import { fileBackend } from "../../src/backend/file.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";

const tmp = tempDir("stats-scratch");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const SCRATCH = "graphrefly-stats";

/** The store's keys, read without the lock (a stats run may be writing). */
function keys(kind: Kind, path: string): string[] {
  const b = kind === "sqlite" ? sqliteBackend(path, { readOnly: true }) : fileBackend(path, { readOnly: true });
  try {
    return [...b.list()].sort();
  } finally {
    b.close();
  }
}

function write(kind: Kind, path: string, key: string, bytes: Uint8Array): void {
  const b = openBackend(kind, path);
  try {
    b.write(key, bytes);
  } finally {
    b.close();
  }
}

/** Runs a long `stats` load and SIGKILLs it once it has written its baseline and some frames. */
async function killedStatsRun(kind: Kind, path: string, before: number): Promise<void> {
  const child = spawn(process.execPath, [BIN, "stats", path, "--frames", "10000000", "--batch", "50"], { stdio: "ignore" });
  const exited = once(child, "exit");
  try {
    // Polls the store (no timing asserted): the baseline and at least 100 frames are stored.
    while (keys(kind, path).length < before + 101) {
      if (child.exitCode !== null) throw new Error(`stats exited early with ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
}

describe.each(KINDS)("stats on a user's %s store", (kind) => {
  it("leaves the store's keys as they were: user keys under the scratch graph's prefix survive", async () => {
    const path = storePath(kind, tmp.path("keys"));
    await buildStore(kind, path, [{ name: "g" }]);
    write(kind, path, `${SCRATCH}/wal/notes`, new TextEncoder().encode("user data, not a frame"));
    write(kind, path, `${SCRATCH}/wal/00000000000000000001-old`, Uint8Array.of(1));
    const before = keys(kind, path);
    const r = runCli(["stats", path, "--frames", "50", "--batch", "10"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(keys(kind, path)).toEqual(before);
  }, 60_000);

  it("a run killed mid-way: the next run removes its leftover scratch graph, runs, and leaves the store as it was", async () => {
    const path = storePath(kind, tmp.path("killed"));
    await buildStore(kind, path, [{ name: "g" }]);
    write(kind, path, `${SCRATCH}/wal/notes`, new TextEncoder().encode("user data"));
    const before = keys(kind, path);
    await killedStatsRun(kind, path, before.length);
    const left = keys(kind, path).filter((k) => !before.includes(k));
    expect(left).toContain(SCRATCH);

    const again = runCli(["stats", path, "--frames", "20", "--batch", "10"]);
    expect(again.stderr).toBe(`note: removed the scratch graph "${SCRATCH}" (baseline + ${left.length - 1} frames) an interrupted stats run left\n`);
    expect(again.code).toBe(0);
    expect(keys(kind, path)).toEqual(before);
    const inspect = JSON.parse(runCli(["inspect", path, "--json"]).stdout) as { graphs: Array<{ name: string }> };
    expect(inspect.graphs.map((g) => g.name)).toEqual(["g"]);
  }, 120_000);

  it("a graph of that name holding anything a load does not write is the user's: refused, nothing deleted", async () => {
    const path = storePath(kind, tmp.path("user-graph"));
    await buildStore(kind, path, []);
    await killedStatsRun(kind, path, 0);
    // One frame of the leftover now holds another value: no longer exactly what stats writes.
    write(kind, path, walFrameKey(graphWalPrefix(SCRATCH), 3), walFrameCodec.encode(setFrame(3, "n3", 42)));
    const before = keys(kind, path);
    const r = runCli(["stats", path, "--frames", "20"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toBe(`error usage: graph "${SCRATCH}" already exists in ${path}: pass another --graph\n`);
    expect(keys(kind, path)).toEqual(before);
  }, 120_000);
});
