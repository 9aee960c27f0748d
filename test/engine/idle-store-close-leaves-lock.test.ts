/**
 * Review r218: engine.close() while a store's idle shutdown runs and a tier reopened it meanwhile (a new connection
 * replaced the closing one in the engine's map, engine.ts:338): close drains only the connections in the map.
 * Afterwards another process must be able to open the store.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { REPO_ROOT, tempRoot } from "../engine/fixtures/helpers.js";

const HOLDER = join(REPO_ROOT, "test/engine/fixtures/hold-store.mjs");
const root = tempRoot("t220-lock");
afterAll(() => root.remove());

async function otherProcessOpens(path: string): Promise<string> {
  const child = spawn(process.execPath, [HOLDER, "sqlite", path], { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "inherit"] });
  const exited = once(child, "exit");
  const line = await new Promise<string>((resolve) => {
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once("exit", (code) => resolve(`exited ${String(code)}`));
  });
  child.stdin.end();
  await exited;
  return line.split(" ").slice(0, 2).join(" ");
}

describe("engine.close right after a reopen during an idle shutdown", () => {
  it("leaves the store free for another process, and every promise settled", async () => {
    const bad: string[] = [];
    for (let round = 0; round < 16; round++) {
      const engine = openStorageEngine({ threads: 2, idleStoreCloseMs: 0, onError: () => {} });
      const path = root.fresh(`l${round}.db`);
      const store: StoreSpec = { kind: "sqlite", path };
      const a = engine.kv<number>(store, { name: "a" });
      a.save("k", round);
      await a.flush();
      const closed = a.close().then(() => "ok", (e: unknown) => `close ${(e as { code?: string }).code}`);
      for (let i = 0; i < round % 8; i++) await new Promise((r) => setImmediate(r));
      const b = engine.kv<number>(store, { name: "b" });
      b.save("k", round);
      await engine.close();
      const c = await closed;
      if (c !== "ok") bad.push(`round ${round}: ${c}`);
      const other = await otherProcessOpens(path);
      if (other !== "holding") bad.push(`round ${round}: other process: ${other}`);
    }
    expect(bad).toEqual([]);
  }, 300_000);
});
