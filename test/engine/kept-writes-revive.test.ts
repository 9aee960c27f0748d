/**
 * Writes an engine store kept while its reopen failed (task 296), review r302:
 * - F2: a save refused store-locked by ANOTHER PROCESS (the connection's first open failed: it never held the store)
 *   was kept and landed, once the holder exited, over the value the holder wrote and acknowledged after this process
 *   was told store-locked. With no earlier hold nothing finds the other writer: such writes are reported lost.
 * - F1: kept writes weigh in the backlog, and only an operation that revives the store sent them; a producer
 *   following the backpressure protocol (save refused backpressure → await drained()) never made one, so drained()
 *   hung for good once the store was back. The store now revives by itself at the restart backoff.
 * Real parts: a child process holding a SQLite store through its own engine, a file store moved aside and back,
 * real worker threads (the fault worker terminates one).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, renameSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine, type StoreSpec } from "../../src/engine/index.js";
import { kvStorage } from "../../src/tier/kv.js";
import { openFaultEngine } from "../support/faults.js";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";

const HOLDER = join(REPO_ROOT, "test/engine/fixtures/hold-then-write.mjs");
const root = tempRoot("kept-revive");
afterAll(() => root.remove());

/** Resolves once `child` wrote the line `want`; rejects if it exits first. */
function lineFrom(child: ChildProcess, want: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (chunk: string): void => {
      out += chunk;
      if (!out.includes(`${want}\n`)) return;
      child.stdout!.off("data", onData);
      child.off("exit", onExit);
      resolve();
    };
    const onExit = (code: number | null): void => reject(new Error(`child exited (${String(code)}) before "${want}": ${out}`));
    child.stdout!.on("data", onData);
    child.once("exit", onExit);
  });
}

const codeOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => "resolved",
    (e: unknown) => `rejected ${String((e as { code?: unknown }).code)}`,
  );

it("a save refused store-locked by another process is not written: it never lands over that process's later acknowledged write", async () => {
  expect(existsSync(join(REPO_ROOT, "dist/src/index.js")), "run `npm run build` first").toBe(true);
  const path = root.fresh("held.db");
  const child = spawn(process.execPath, [HOLDER, path], { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "inherit"] });
  child.stdout!.setEncoding("utf8");
  const engine = openStorageEngine({ threads: 1, onError: () => {} });
  try {
    await lineFrom(child, "holding");
    const kv = engine.kv<string>({ kind: "sqlite", path }, { name: "t" });
    kv.save("k", "parent-early");
    expect(await codeOf(kv.flush())).toBe("rejected store-locked");
    // The holder writes the key after this process was told store-locked, and acknowledges it; then exits.
    const acked = lineFrom(child, "acked");
    child.stdin!.write("write\n");
    await acked;
    const exited = once(child, "exit");
    child.stdin!.end();
    await exited;
    // The store opens here now. The refused save is not written: the flush that covered it said so (store-locked),
    // as before task 296, and nothing more is owed for it.
    expect(await codeOf(kv.flush())).toBe("resolved");
    expect(await kv.load("k")).toBe("child-new");
    kv.save("after", "parent-late"); // the store works on
    await kv.flush();
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = once(child, "exit");
      child.kill("SIGKILL");
      await gone;
    }
    await engine.close().catch(() => undefined);
  }
  const b = sqliteBackend(path, { readOnly: true });
  try {
    const t = kvStorage<string>(b, { name: "t" });
    expect(await t.load("k")).toBe("child-new");
    expect(await t.load("after")).toBe("parent-late");
  } finally {
    await b.close?.();
  }
});

it("a producer waiting in drained() after backpressure on kept writes is woken once the store is back, every accepted save stored", async () => {
  const dir = root.fresh("bounded");
  const spec: StoreSpec = { kind: "file", dir };
  const value = "v".repeat(1000);
  const accepted: string[] = [];
  const engine = openFaultEngine({ threads: 1, maxPendingBytes: 8 * 1024, onError: () => {} });
  try {
    const kv = engine.kv<string>(spec, { name: "t", retry: { initialMs: 5, maxMs: 20 } });
    kv.save("first", value);
    await kv.flush();
    renameSync(dir, `${dir}.aside`);
    await engine.injectFault(spec, "terminate");
    let refused: unknown;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      try {
        kv.save(`k${i}`, value);
        accepted.push(`k${i}`);
        // The reopen each flush starts fails (store-moved): the saves are kept and keep their weight.
        if (i === 1) await kv.flush().catch(() => undefined);
      } catch (err) {
        refused = err;
      }
    }
    expect((refused as { code?: unknown } | undefined)?.code).toBe("backpressure");
    // The reopen the last saves started fails too: the store is down with every accepted save kept.
    expect(await codeOf(kv.flush())).toMatch(/^rejected /);
    expect(accepted.length).toBeGreaterThan(1);
    renameSync(`${dir}.aside`, dir); // the store is back; no operation revives it: only drained() waits
    if (kv.drained === undefined) throw new Error("an engine kv tier has drained()");
    await kv.drained();
    // Room again: the save refused before is taken now, and a flush stores it.
    kv.save("last", value);
    await kv.flush();
  } finally {
    await engine.close();
  }
  const again = openStorageEngine({ threads: 1 });
  try {
    const kv = again.kv<string>(spec, { name: "t" });
    for (const key of ["first", ...accepted, "last"]) expect(await kv.load(key), key).toBe(value);
  } finally {
    await again.close();
  }
});
