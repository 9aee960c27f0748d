/**
 * `inspect` and `verify` find baselines among a store's other values by reading them (docs/design.md §3.36): a
 * value over `--scan-limit` is not read but named on stderr with its size, and the listing completes, right. A
 * 400 MB kv value used to cost 1.3 GB of RSS for a read-only listing; the limit bounds it (measured in the commit,
 * not here). The values here are small, with a lowered limit.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, storePath, writeRaw } from "./fixtures/stores.js";

const tmp = tempDir("scan-limit");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

/** JSON-looking bytes (so the cheap pre-check passes and a whole read would parse them) of `n` bytes. */
function jsonBlob(n: number): Uint8Array {
  const bytes = new Uint8Array(n).fill(0x61);
  bytes.set(new TextEncoder().encode('{"a":"'), 0);
  bytes.set(new TextEncoder().encode('"}'), n - 2);
  return bytes;
}

describe.each(KINDS)("--scan-limit (%s store)", (kind) => {
  it("names a value over the limit with its size, does not list it, and lists the graphs right", async () => {
    const path = storePath(kind, tmp.path("limit"));
    // g has frames (found from its keys), h is a baseline alone (found by reading it).
    await buildStore(kind, path, [{ name: "g" }, { name: "h", frameSeqs: [] }]);
    writeRaw(kind, path, "blob", jsonBlob(200_000));

    for (const command of ["inspect", "verify"]) {
      const r = runCli([command, path, "--scan-limit", "100000"]);
      // verify cannot call the store clean with a value it did not read (exit 5, incomplete); inspect only lists.
      expect(r.code, r.stderr).toBe(command === "verify" ? 5 : 0);
      expect(r.stderr).toBe(
        'warning: skipped "blob": a value of 195.3 KiB (200000 bytes), over --scan-limit, not read (a graph baseline there is not listed: raise --scan-limit or pass --graph)\n',
      );
      expect(r.stdout).toMatch(/graph "g"/);
      expect(r.stdout).toMatch(/graph "h"/);
      // Not as a graph read: as one not reached (the value is not read, so it may be a baseline).
      expect(r.stdout).not.toMatch(/^graph "blob"(:|$)/m);
      expect(r.stdout).toMatch(/^graph "blob" not reached: /m);
    }
    const listed = runCli(["inspect", path, "--scan-limit", "100000", "--json"]);
    const doc = JSON.parse(listed.stdout) as { graphs: Array<{ name: string; baseline: { state: string; seq?: number } }> };
    expect(doc.graphs.map((g) => [g.name, g.baseline.state, g.baseline.seq])).toEqual([
      ["g", "ok", 1],
      ["h", "ok", 1],
    ]);
    // Within the default limit the value is read, found to be no baseline, and not mentioned.
    const whole = runCli(["inspect", path]);
    expect(whole.code).toBe(0);
    expect(whole.stderr).toBe("");
    expect(whole.stdout).toContain("2 graphs");
  });

  it("a baseline over the limit: its graph is still read when it has frames or is named with --graph", async () => {
    const path = storePath(kind, tmp.path("big-baseline"));
    await buildStore(kind, path, [{ name: "g" }, { name: "h", frameSeqs: [] }]);
    // With a limit below every baseline: g is found from its frame keys and read whole by the reader as before; h
    // (no frames) cannot be told from another value without reading it.
    const r = runCli(["verify", path, "--scan-limit", "10"]);
    // Not "clean": h's baseline was never read, so verify cannot vouch for it (review r188: exit 0 before).
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toMatch(/^warning: skipped "h": a value of \d+ B \(\d+ bytes\), over --scan-limit, not read/);
    expect(r.stdout).toContain('graph "g": baseline seq 1, 10 frames (10 above the baseline)');
    expect(r.stdout).not.toContain('graph "h":');
    expect(r.stdout).toMatch(/^graph "h" not reached: the value under its name \(.+, \d+ bytes\) is over --scan-limit/m);
    expect(r.stdout).toContain("result: incomplete (exit 5)");
    const json = runCli(["verify", path, "--scan-limit", "10", "--json"]);
    expect(json.code).toBe(5);
    const doc = JSON.parse(json.stdout) as { exitCode: number; unread: Array<{ key: string; bytes: number }> };
    expect(doc.exitCode).toBe(5);
    expect(doc.unread.map((u) => u.key)).toEqual(["h"]);
    const named = runCli(["verify", path, "--graph", "h", "--scan-limit", "10"]);
    expect(named.code, named.stderr).toBe(0);
    expect(named.stderr).toBe("");
    expect(named.stdout).toContain('graph "h": baseline seq 1, 0 frames');
  });

  it("refuses a limit that is not a non-negative integer", () => {
    const r = runCli(["inspect", tmp.dir, "--scan-limit", "lots"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/--scan-limit/);
  });
});
