/**
 * A key `<graph>/wal/` + 20 digits whose seq is above 2^53 − 1 is no frame to any reader: restore ignores it. The
 * CLI names it instead of hiding it (docs/design.md §3.36): verify's `seq-out-of-range` (restorable: restore skips
 * it), inspect's `seqOutOfRange` count, and frames' error line with `seq` null.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsonCodec } from "../../src/codec/json.js";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, restoreOutcome, setFrame, storePath, writeRaw } from "./fixtures/stores.js";

const tmp = tempDir("seq-range");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

/** 2^53 exactly: the first seq past Number.MAX_SAFE_INTEGER, as a 20-digit key. */
const HIGH = "00009007199254740992";

describe.each(KINDS)("a frame key above 2^53 − 1 (%s store)", (kind) => {
  async function store(name: string): Promise<string> {
    const path = storePath(kind, tmp.path(name));
    await buildStore(kind, path, [{ name: "g" }]);
    writeRaw(kind, path, `g/wal/${HIGH}`, jsonCodec.encode(setFrame(12, "a", 99)));
    // A graph whose only WAL key is such a key (and no baseline).
    writeRaw(kind, path, `h/wal/${HIGH}`, jsonCodec.encode(setFrame(1, "a", 1)));
    return path;
  }

  it("verify names it (seq-out-of-range), restorable as restore ignores it", async () => {
    const path = await store("verify");
    expect(await restoreOutcome(kind, path)).toEqual({ code: "ok", a: 11 });
    const human = runCli(["verify", path, "--graph", "g"]);
    expect(human.code, human.stderr).toBe(1);
    expect(human.stdout).toContain(
      `frame key g/wal/${HIGH}: seq ${HIGH} is above 2^53 - 1; no reader reads it, restore ignores it (its change is never replayed)`,
    );
    expect(human.stdout).toContain("restorable (restore ignores some frames' changes)");

    const json = runCli(["verify", path, "--json"]);
    expect(json.code).toBe(2); // h has no baseline
    const doc = JSON.parse(json.stdout) as { graphs: Array<{ name: string; frames: number; verdict: string; problems: unknown[] }> };
    expect(doc.graphs.map((g) => g.name)).toEqual(["g", "h"]);
    const [g, h] = doc.graphs;
    expect(g!.frames).toBe(10);
    expect(g!.verdict).toBe("restorable");
    expect(g!.problems).toEqual([{ kind: "seq-out-of-range", key: `g/wal/${HIGH}`, seq: HIGH, restorable: true }]);
    expect(h!.verdict).toBe("not-restorable");
    expect(h!.problems).toContainEqual({ kind: "seq-out-of-range", key: `h/wal/${HIGH}`, seq: HIGH, restorable: true });
  });

  it("inspect counts it as unreadable, frames prints it as an error line after the frames", async () => {
    const path = await store("inspect");
    const human = runCli(["inspect", path, "--graph", "g"]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain("  wal         10 frames");
    expect(human.stdout).toContain("  unreadable  1 key with a seq above 2^53 - 1, no frame to any reader (run verify)");
    const json = JSON.parse(runCli(["inspect", path, "--json"]).stdout) as { graphs: Array<{ name: string; wal: { frames: number; seqOutOfRange: number } }> };
    expect(json.graphs.map((g) => [g.name, g.wal.frames, g.wal.seqOutOfRange])).toEqual([
      ["g", 10, 1],
      ["h", 0, 1],
    ]);

    const frames = runCli(["frames", path, "--graph", "g"]);
    expect(frames.code, frames.stderr).toBe(0);
    const lines = frames.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(11);
    const last = lines[10]!;
    expect(last.key).toBe(`g/wal/${HIGH}`);
    expect(last.seq).toBeNull();
    expect(last.error).toMatch(/^seq above 2\^53 - 1/);
    expect(JSON.parse(last.raw as string)).toMatchObject({ frame_seq: 12 });
    // --limit counts it like a frame.
    expect(runCli(["frames", path, "--graph", "g", "--limit", "10"]).stdout.trim().split("\n")).toHaveLength(10);
    expect(runCli(["frames", path, "--graph", "g", "--from", "11"]).stdout.trim().split("\n")).toHaveLength(2);
  });
});
