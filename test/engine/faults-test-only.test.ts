/**
 * Fault injection is test code (issue 12 item 6): the public engine has no injectFault, the package's worker entry
 * ignores a fault message posted to it (the store keeps working, no worker is lost), and no compiled file of the
 * package holds the fault code; the tests' worker entry (test/support/fault-worker.mjs) acts on the same message.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, workerEntryPath, type StorageEngine } from "../../src/engine/index.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import * as publicApi from "../../src/index.js";
import { StorageError } from "../../src/errors.js";
import { FAULT_MESSAGE } from "../support/fault-messages.mjs";
import { openFaultEngine } from "../support/faults.js";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("faults-test-only");
afterAll(() => root.remove());
let engine: StorageEngine | undefined;
afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

describe("fault injection lives in the tests only", () => {
  it("is not on the public engine nor among the package's exports", () => {
    engine = openStorageEngine({ threads: 1 });
    expect("injectFault" in engine).toBe(false);
    expect(Object.keys(publicApi).filter((name) => /fault|ForTests/i.test(name))).toEqual([]);
  });

  it("the package's worker entry ignores a fault message: the store keeps working and no worker is lost", async () => {
    const reported: Error[] = [];
    const access = openStorageEngineForTests({ threads: 1, onError: (err) => reported.push(err) }, workerEntryPath());
    engine = access.engine;
    const store = { kind: "sqlite" as const, path: root.fresh("prod.db") };
    const kv = engine.kv<number>(store, { name: "kv" });
    kv.save("a", 1);
    await kv.flush();
    await access.post(store, { type: FAULT_MESSAGE, kind: "exit" });
    await new Promise((r) => setTimeout(r, 300)); // the test entry's exit fault ends its worker well within this
    kv.save("b", 2);
    await kv.flush();
    expect(await kv.load("b")).toBe(2);
    const [stats] = await engine.stats();
    expect(stats?.alive).toBe(true);
    expect(reported).toEqual([]);
  });

  it("the tests' worker entry acts on the same message (the drill reaches the worker)", async () => {
    const reported: Error[] = [];
    const e = openFaultEngine({ threads: 1, onError: (err) => reported.push(err) });
    engine = e;
    const store = { kind: "sqlite" as const, path: root.fresh("test.db") };
    const kv = e.kv<number>(store, { name: "kv" });
    kv.save("a", 1);
    await kv.flush();
    await e.injectFault(store, "exit");
    for (let i = 0; i < 300 && !reported.some((err) => err instanceof StorageError && err.code === "worker-crashed"); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(reported.map((err) => (err as StorageError).code)).toContain("worker-crashed");
  });

  it("no compiled file of the package holds the fault code", () => {
    const compiled = [...filesUnder(join(REPO_ROOT, "dist/src")), ...filesUnder(join(REPO_ROOT, "dist/workers"))].filter((p) => p.endsWith(".js"));
    expect(compiled.length).toBeGreaterThan(10);
    const holding = compiled.filter((p) => {
      const text = readFileSync(p, "utf8");
      return text.includes(FAULT_MESSAGE) || text.includes("injected fault") || text.includes("process.exit(70)");
    });
    expect(holding).toEqual([]);
  });
});
