/**
 * Task 323 (closing note 24, open item 3): a sealed frame setting a node the stored graph never had (not in the
 * baseline, added by no frame) verified clean, exit 0, though restore ignores it: its value is never replayed. verify
 * now names it (`unknown-node`, with its key and path) and says restorable, exit 1, as for every frame restore skips.
 */
import { describe, expect, it } from "vitest";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { runCli } from "./fixtures/cli.js";
import { appendFrames, restoreOutcome, setFrame } from "./fixtures/stores.js";
import { cliGraphStore } from "../support/cli-graph-store.js";

const fixture = cliGraphStore("verify-unknown-node");

describe("verify over a frame setting a node the graph does not have", () => {
  it("names it with its key and path, restorable (exit 1); restore ignores it and restores the rest", async () => {
    // The store holds frames 2..11 (each sets a); 12 sets "ghost", which no baseline or frame made; 13 sets a again.
    await appendFrames(fixture.store, [setFrame(12, "ghost", 7), setFrame(13, "a", 13)]);
    expect(await restoreOutcome("sqlite", fixture.store)).toEqual({ code: "ok", a: 13 });

    const json = runCli(["verify", fixture.store, "--json"]);
    expect(json.code, json.stderr).toBe(1);
    const doc = JSON.parse(json.stdout) as { exitCode: number; graphs: Array<{ verdict: string; problems: unknown[] }> };
    expect(doc.exitCode).toBe(1);
    expect(doc.graphs[0]?.verdict).toBe("restorable");
    expect(doc.graphs[0]?.problems).toEqual([
      { kind: "unknown-node", seq: 12, key: walFrameKey(graphWalPrefix("g"), 12), path: "ghost", change: "node.set", restorable: true },
    ]);

    const human = runCli(["verify", fixture.store]);
    expect(human.code, human.stderr).toBe(1);
    expect(human.stdout).toContain(
      `  frame seq 12 (${walFrameKey(graphWalPrefix("g"), 12)}) sets node "ghost", which the stored graph does not have there (not in the baseline, added by no earlier frame with its slice, or removed): restore ignores it (its change is never replayed)\n`,
    );
    expect(human.stdout).toMatch(/result: restorable \(exit 1\)\n$/);
  });
});
