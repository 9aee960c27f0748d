/**
 * Two writer handles of one SQLite store in one process take turns to write (sqlite-turns.ts, design §3.12): here the
 * main thread's handle beside a worker thread's handle, and beside an engine actor's. Since 059aeff's 50 ms busy
 * timeout, a write meeting the other handle's transaction failed store-busy as soon as that transaction outlasted
 * 50 ms (a review's run: 8 of 581 flushes rejected). The other transaction here lasts until the main thread's write
 * waits for it (or, before writer turns, has failed: fixtures/slow-writer-hold.mjs), so "longer than the busy
 * timeout" is certain, and no timing is.
 */
import { afterAll, expect, it } from "vitest";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { sqliteBackend, type SqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import { until } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "writer-turns-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const codeOf = (e: unknown): string => String((e as { code?: unknown }).code ?? e);

/**
 * Once the other handle's transaction holds (flags[1]), writes "fast" on the main thread's handle `b`; says how
 * that went, and tells the other handle its write returned (flags[0]).
 */
async function writeBesideHeld(b: SqliteBackend, flags: Int32Array): Promise<string> {
  await until(() => Atomics.load(flags, 1) === 1, "the other handle's transaction holding", { timeoutMs: 30_000 });
  try {
    b.write("fast", new Uint8Array([1]));
    return "stored";
  } catch (err) {
    return codeOf(err);
  } finally {
    Atomics.store(flags, 0, 1);
    Atomics.notify(flags, 0);
  }
}

const newFlags = (): Int32Array => new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));

it("a worker thread's handle in a long transaction: the main thread's write waits for it and is stored, not store-busy", async () => {
  const path = join(root, "thread.db");
  const b = sqliteBackend(path);
  const flags = newFlags();
  const worker = new Worker(new URL("./fixtures/slow-writer-worker.mjs", import.meta.url), { workerData: { path, flags: flags.buffer } });
  const failed = once(worker, "error");
  try {
    const outcome = await writeBesideHeld(b, flags);
    expect((await Promise.race([once(worker, "message"), failed]))[0]).toBe("written");
    expect({ outcome, fast: b.read("fast"), slow: b.read("slow") }).toEqual({ outcome: "stored", fast: new Uint8Array([1]), slow: new Uint8Array([2]) });
  } finally {
    await worker.terminate();
    b.close();
  }
});

it("an engine actor's connection in a long transaction: an inline handle's write waits for it and is stored", async () => {
  const path = join(root, "engine.db");
  const entry = fileURLToPath(new URL("./fixtures/slow-writer-entry.mjs", import.meta.url));
  const { engine } = openStorageEngineForTests({ threads: 1 }, entry);
  const b = sqliteBackend(path);
  const flags = newFlags();
  try {
    const job = engine.runJob({ kind: "sqlite", path }, "hold-write", { path, flags: flags.buffer });
    const outcome = await writeBesideHeld(b, flags);
    expect(await job).toBe("written");
    expect({ outcome, fast: b.read("fast"), slow: b.read("slow") }).toEqual({ outcome: "stored", fast: new Uint8Array([1]), slow: new Uint8Array([2]) });
  } finally {
    await engine.close();
    b.close();
  }
});
