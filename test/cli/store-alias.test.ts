/**
 * `compact` through another name of a live SQLite store (review F1). The writer lock was named after the path given,
 * so `compact alias.db` (a symbolic link to the store) ran beside the live writer, exited 0, and its baseline landed
 * over the writer's newer one: a WAL gap, acknowledged changes lost. Now it is refused (exit 3, store-locked) and the
 * store stays whole; a hard link to the store is refused whoever holds it (exit 4, invalid-argument).
 */
import { fork } from "node:child_process";
import { linkSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";

const tmp = tempDir("store-alias");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());
const children: Array<ReturnType<typeof fork>> = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
});
const WRITER = fileURLToPath(new URL("./fixtures/compacting-writer.mjs", import.meta.url));

describe("compact through another name of a live, compacting SQLite store", () => {
  it("a symbolic link: refused with exit 3 every time, and the store restores whole", { timeout: 120_000 }, async () => {
    const path = tmp.path("live.db");
    const child = fork(WRITER, [JSON.stringify({ kind: "sqlite", store: path })], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.on("message", (m: { t: string }) => m.t === "ready" && resolve());
      child.on("exit", (code) => reject(new Error(`writer exited (${String(code)})`)));
    });
    const alias = join(dirname(path), "alias.db");
    symlinkSync(path, alias);
    for (let i = 0; i < 3; i++) {
      const r = runCli(["compact", alias, "--graph", "g", "--json"]);
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.stderr).toMatch(/^error store-locked: /);
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    const verify = runCli(["verify", path, "--graph", "g", "--json"]);
    expect(verify.code, verify.stdout).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ graphs: [{ verdict: "clean", problems: [] }] });
  });

  it("a hard link: refused with exit 4 (invalid-argument) under either name", { timeout: 60_000 }, async () => {
    const path = tmp.path("linked.db");
    const child = fork(WRITER, [JSON.stringify({ kind: "sqlite", store: path })], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.on("message", (m: { t: string }) => m.t === "ready" && resolve());
      child.on("exit", (code) => reject(new Error(`writer exited (${String(code)})`)));
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    const alias = join(dirname(path), "hard.db");
    linkSync(path, alias);
    for (const name of [alias, path]) {
      const r = runCli(["compact", name, "--graph", "g"]);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toMatch(/^error invalid-argument: .*hard links/);
    }
  });
});
