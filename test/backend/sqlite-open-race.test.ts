/**
 * Review s15r2 D3: processes opening one SQLite store at once. One wins; each other one must be told store-locked
 * (another process holds the store). A loser reading the lock's owner while the winner committed its row met SQLite
 * busy and reported store-busy ("held for more than 50 ms ... try again"), untrue: the lock database waits 0 ms and the
 * holder keeps the store for its life. Real processes, released together by a file appearing; no timing asserted.
 */
import { afterAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CHILD = fileURLToPath(new URL("../support/open-race-child.mjs", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "open-race-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const RACERS = 6;
const ROUNDS = 6;

/** Starts `n` racers on `path`; once all are ready, releases them; resolves each one's first answer line. */
async function race(path: string, go: string, n: number): Promise<{ answers: string[]; children: ChildProcess[] }> {
  const children: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  const answers: Promise<string>[] = [];
  for (let i = 0; i < n; i++) {
    const child = spawn(process.execPath, [CHILD, path, go], { stdio: ["pipe", "pipe", "inherit"] });
    children.push(child);
    let buffered = "";
    let onReady!: () => void;
    let onAnswer!: (line: string) => void;
    ready.push(new Promise((r) => (onReady = r)));
    answers.push(new Promise((r) => (onAnswer = r)));
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line === "ready") onReady();
        else onAnswer(line);
      }
    });
    child.on("exit", (code) => onAnswer(`exited ${code}`));
  }
  await Promise.all(ready);
  writeFileSync(go, "");
  return { answers: await Promise.all(answers), children };
}

function ended(child: ChildProcess): Promise<void> {
  return child.exitCode !== null ? Promise.resolve() : new Promise((r) => child.once("exit", () => r()));
}

describe("SQLite: processes opening one store at once", () => {
  it(`one of ${RACERS} opens it, every other one is told store-locked (${ROUNDS} rounds)`, async () => {
    const seen: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const { answers, children } = await race(join(dir, `s${round}.db`), join(dir, `go${round}`), RACERS);
      for (const c of children) c.stdin!.end(); // the winner closes and exits
      await Promise.all(children.map(ended));
      expect(answers.filter((a) => a === "opened")).toHaveLength(1);
      seen.push(...answers.filter((a) => a !== "opened").map((a) => a.split(" ")[0]!));
    }
    expect(seen.filter((code) => code !== "store-locked")).toEqual([]);
  });
});
