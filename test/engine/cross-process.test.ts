/**
 * Cross-process safety: while another process holds a store through its engine, this process's engine
 * gets StorageError('store-locked') for it (never silent interleaving); once the holder exits or is
 * killed with SIGKILL, the store opens here with the holder's acknowledged data.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { openStorageEngine, type StorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { StorageError } from "../../src/errors.js";
import { REPO_ROOT, expectCoded, tempRoot, waitFor } from "./fixtures/helpers.js";
import { killChildren } from "../support/child-processes.js";

const HOLDER = join(REPO_ROOT, "test/engine/fixtures/hold-store.mjs");
const root = tempRoot("xproc");
const children = new Set<ChildProcess>();
let engine: StorageEngine | undefined;

afterEach(async () => {
  await engine?.close().catch(() => undefined);
  engine = undefined;
  await killChildren(children);
});
afterAll(() => root.remove());

/** Starts a child that opens `store` through its own engine and holds it. */
async function holder(store: StoreSpec): Promise<ChildProcess> {
  expect(existsSync(join(REPO_ROOT, "dist/src/index.js")), "run `npm run build` first").toBe(true);
  const location = store.kind === "sqlite" ? store.path : store.kind === "file" ? store.dir : "";
  const child = spawn(process.execPath, [HOLDER, store.kind, location], { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "inherit"] });
  children.add(child);
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      out += chunk;
      const nl = out.indexOf("\n");
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`holder exited (${String(code)}) before holding`)));
  });
  expect(line).toBe("holding");
  return child;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e,
  );
}

const kinds: Array<[string, () => StoreSpec]> = [
  ["sqlite", () => ({ kind: "sqlite", path: root.fresh("shared.db") })],
  ["file", () => ({ kind: "file", dir: root.fresh("shared-dir") })],
];

describe.each(kinds)("%s store held by another process", (_kind, spec) => {
  it("flush() and load() reject with store-locked, and onError hears it", async () => {
    const store = spec();
    await holder(store);
    const reported: Error[] = [];
    engine = openStorageEngine({ threads: 1, onError: (err) => reported.push(err) });
    const kv = engine.kv<number>(store, { name: "parent" });
    kv.save("from-parent", 1);
    expectCoded(await rejection(kv.flush()), StorageError, "store-locked");
    const again = engine.kv<number>(store, { name: "parent" });
    expectCoded(await rejection(again.load("from-child")), StorageError, "store-locked");
    const isLocked = (e: Error): boolean => e instanceof StorageError && e.code === "store-locked";
    await waitFor(() => reported.some(isLocked));
    expect(reported.map((e) => `${e.name}(${String((e as StorageError).code)})`)).toContain("StorageError(store-locked)");
  });

  it("opens after the holder exits, with the holder's data and none of the refused writes", async () => {
    const store = spec();
    const child = await holder(store);
    engine = openStorageEngine({ threads: 1 });
    const refused = engine.kv<number>(store, { name: "parent" });
    refused.save("refused", 1);
    await refused.flush().catch(() => undefined);
    const exited = once(child, "exit");
    child.stdin!.end(); // graceful: the child's engine closes and releases the store
    await exited;
    const kv = engine.kv<number>(store, { name: "parent" });
    expect(await kv.load("from-child")).toBe(child.pid);
    expect(await kv.load("refused")).toBeUndefined();
    kv.save("from-parent", 2);
    await kv.flush();
    expect(await kv.load("from-parent")).toBe(2);
  });

  it("opens after the holder is killed with SIGKILL (the lock dies with the process)", async () => {
    const store = spec();
    const child = await holder(store);
    engine = openStorageEngine({ threads: 1 });
    await engine.kv<number>(store).flush().catch(() => undefined);
    const killed = once(child, "exit");
    child.kill("SIGKILL");
    await killed;
    const kv = engine.kv<number>(store, { name: "parent" });
    expect(await kv.load("from-child")).toBe(child.pid); // acknowledged by the child before it died
    kv.save("from-parent", 3);
    await kv.flush();
    expect(await kv.load("from-parent")).toBe(3);
  });
});
