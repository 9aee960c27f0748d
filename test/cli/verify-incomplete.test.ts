/**
 * `verify`'s exit code when it could not read everything (values over `--scan-limit`) and what it read has findings,
 * and the graphs it did not reach named with the graphs (docs/api.md "Exit codes"). Before: an incomplete read exited 5
 * whatever it found short of not restorable, so a store whose read part restore skips frames of (1) exited 5 and a
 * script checking for 1 missed the skipped frames; a frameless graph whose baseline is over the limit was named only
 * as a key on stderr (inspect) or as a "not read" value (verify), never as the graph not checked.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, damageFrame, storePath, writeRaw, type Kind } from "./fixtures/stores.js";

const tmp = tempDir("verify-incomplete");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

type Finding = "clean" | "torn-tail" | "torn-mid-stream";

/** Graph g (10 frames) with `finding` injected, and graph h: a baseline alone (only found by reading it). */
async function store(kind: Kind, finding: Finding): Promise<string> {
  const path = storePath(kind, tmp.path(finding));
  await buildStore(kind, path, [{ name: "g" }, { name: "h", frameSeqs: [] }]);
  if (finding === "torn-tail") damageFrame(kind, path, "g", 11, "truncate");
  if (finding === "torn-mid-stream") damageFrame(kind, path, "g", 5, "truncate");
  return path;
}

/** Every combination: what was read (clean, restorable, not restorable) × whether all was read. */
const CASES: ReadonlyArray<{ finding: Finding; complete: number; incomplete: number; text: string }> = [
  { finding: "clean", complete: 0, incomplete: 5, text: "incomplete" },
  { finding: "torn-tail", complete: 1, incomplete: 6, text: "incomplete, restorable" },
  { finding: "torn-mid-stream", complete: 2, incomplete: 2, text: "not-restorable" },
];

interface VerifyDoc {
  exitCode: number;
  graphs: Array<{ name: string; verdict: string }>;
  unread: Array<{ key: string; bytes: number }>;
}

describe.each(KINDS)("verify's exit code, complete or not (%s store)", (kind) => {
  it.each(CASES)("$finding: exit $complete read whole, $incomplete with a graph not reached", async ({ finding, complete, incomplete, text }) => {
    const path = await store(kind, finding);
    const whole = runCli(["verify", path]);
    expect(whole.code, whole.stderr).toBe(complete);
    expect(whole.stdout).not.toContain("not reached");

    // A limit below h's baseline: h is not read (g is found from its frame keys and read whole).
    const part = runCli(["verify", path, "--scan-limit", "10"]);
    expect(part.code, part.stderr).toBe(incomplete);
    expect(part.stdout).toContain(`result: ${text} (exit ${incomplete})`);
    const json = runCli(["verify", path, "--scan-limit", "10", "--json"]);
    expect(json.code).toBe(incomplete);
    const doc = JSON.parse(json.stdout) as VerifyDoc;
    expect(doc.exitCode).toBe(incomplete);
    // The JSON carries both findings: g's verdict and the value not read.
    expect(doc.graphs.map((g) => g.name)).toEqual(["g"]);
    expect(doc.graphs[0]!.verdict).toBe(finding === "clean" ? "clean" : finding === "torn-tail" ? "restorable" : "not-restorable");
    expect(doc.unread.map((u) => u.key)).toEqual(["h"]);
  });

  it("names a graph it did not reach as a graph, in verify and inspect", async () => {
    const path = await store(kind, "clean");
    const v = runCli(["verify", path, "--scan-limit", "10"]);
    expect(v.code).toBe(5);
    expect(v.stdout).toMatch(
      /^graph "h" not reached: the value under its name \(.+, \d+ bytes\) is over --scan-limit, not read; if it is a baseline, this graph was not checked \(pass --graph "h" or raise --scan-limit\)$/m,
    );
    const i = runCli(["inspect", path, "--scan-limit", "10"]);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stdout).toMatch(/^store .+, 1 graph, 1 not reached \(over --scan-limit\)$/m);
    expect(i.stdout).toMatch(/^graph "h" not reached: .+ \(pass --graph "h" or raise --scan-limit\)$/m);
    const doc = JSON.parse(runCli(["inspect", path, "--scan-limit", "10", "--json"]).stdout) as VerifyDoc;
    expect(doc.graphs.map((g) => g.name)).toEqual(["g"]);
    expect(doc.unread.map((u) => u.key)).toEqual(["h"]);
  });

  it("a value over the limit under a name no graph may have is no graph not reached: verify is complete", async () => {
    const path = storePath(kind, tmp.path("segment"));
    await buildStore(kind, path, [{ name: "g" }]);
    // An append-log segment's key (U+001F + 20 digits): no graph's name, so no graph's baseline.
    writeRaw(kind, path, `log\u001f${"1".padStart(20, "0")}`, new Uint8Array(5_000).fill(0x7b));
    const r = runCli(["verify", path, "--scan-limit", "1000"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("result: clean (exit 0)");
  });
});
