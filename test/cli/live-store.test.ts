/**
 * The CLI's read commands on a live store while its writer's actor compacts (docs/design.md §3.16, §3.17): each
 * run reads one point in time (one read transaction on SQLite; on the file backend the reader starts over when
 * the baseline moved under it), so verify never reports a compaction as lost frames and export never fails or
 * folds frames onto the wrong baseline.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, storePath } from "./fixtures/stores.js";

const tmp = tempDir("live");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

const children: Array<ReturnType<typeof fork>> = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
});

const WRITER = fileURLToPath(new URL("./fixtures/compacting-writer.mjs", import.meta.url));

describe.each(KINDS)("verify and export on a live, compacting %s store", (kind) => {
  it("every run is clean and exports a state the writer had", { timeout: 120_000 }, async () => {
    const path = storePath(kind, tmp.path("live"));
    const child = fork(WRITER, [JSON.stringify({ kind, store: path })], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.on("message", (m: { t: string }) => m.t === "ready" && resolve());
      child.on("exit", (code) => reject(new Error(`writer exited (${String(code)})`)));
    });

    const baselines = new Set<number>();
    for (let i = 0; i < 12; i++) {
      const verify = runCli(["verify", path, "--graph", "g", "--json"]);
      expect(verify.stderr).toBe("");
      const doc = JSON.parse(verify.stdout) as { graphs: Array<{ verdict: string; baselineSeq: number; problems: unknown[] }> };
      expect(doc.graphs[0], verify.stdout).toMatchObject({ verdict: "clean", problems: [] });
      expect(verify.code).toBe(0);
      baselines.add(doc.graphs[0]!.baselineSeq);

      const exported = runCli(["export", path, "--graph", "g"]);
      expect(exported.stderr).toBe("");
      expect(exported.code).toBe(0);
      // The writer alternates: at every seq it had b odd, a even, a = b ± 1 (both 0 at first), sum = a + b.
      const nodes = (JSON.parse(exported.stdout) as { nodes: Record<string, { value?: number }> }).nodes;
      const [a, b, sum] = [nodes.a?.value ?? 0, nodes.b?.value ?? 0, nodes.sum?.value];
      expect(Math.abs(a - b) <= 1 && a % 2 === 0 && (b === 0 || b % 2 === 1), JSON.stringify(nodes)).toBe(true);
      expect(sum).toBe(a + b);
    }
    // The reads did race compactions.
    expect(baselines.size).toBeGreaterThan(1);
  });
});
