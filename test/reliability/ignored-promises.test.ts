/**
 * Issue 11 item 6: a promise the API returns (engine, tiers inline and through the engine, restore, followGraph),
 * ignored by its caller in its failure case, never ends the host process with an unhandled rejection, and onError
 * hears the failure of every engine-level call. Each case
 * runs in a child process with Node's default unhandled-rejection behaviour (fixtures/ignored-promises.mjs).
 */
import { fork } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, assertBuilt, tempDir, type TempDir } from "./fixtures/crash-harness.js";

let tmp: TempDir;
beforeAll(() => {
  assertBuilt();
  tmp = tempDir("ignored-promises");
});
afterAll(() => tmp.remove());

interface Result {
  code: number | null;
  heard: string[] | undefined;
  stderr: string;
}

function run(which: string, codes: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const child = fork(`${FIXTURES}ignored-promises.mjs`, [JSON.stringify({ dir: tmp.dir, case: which, expect: codes })], {
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    let heard: string[] | undefined;
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("message", (m: { t: string; heard: string[] }) => {
      if (m.t === "alive") heard = m.heard;
    });
    child.on("exit", (code) => resolve({ code, heard, stderr }));
  });
}

/** The case, and what onError must have heard (codes). */
const CASES: Array<[string, string[]]> = [
  ["compact", ["baseline-missing"]],
  ["runJob", ["invalid-argument"]],
  ["stats after close", ["closed"]],
  // Heard twice: the failed open (as every open failure), and close()'s rejection.
  ["close rejects (the store cannot open)", ["backend-error", "backend-error"]],
  ["listByPrefix next() after close", ["closed"]],
  ["tier load after close", []],
  ["inline tier reads after close", []],
  ["restore and follow of a graph the store does not hold", []],
];

describe.concurrent("ignored promises never crash the host", () => {
  it.for(CASES)("%s", { timeout: 60_000 }, async ([which, codes], { expect }) => {
    const r = await run(which, codes);
    expect(r.code, r.stderr).toBe(0);
    expect(r.heard, r.stderr).toBeDefined();
    for (const code of new Set(codes)) {
      expect(r.heard!.filter((c) => c === code).length, `${code} in ${JSON.stringify(r.heard)}`).toBeGreaterThanOrEqual(codes.filter((c) => c === code).length);
    }
  });
});
