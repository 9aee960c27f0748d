/**
 * A thread that ends inside its SQLite writer turn (terminated, out of memory, process.exit: no `finally` runs) leaves
 * the turn held (sqlite-turns.ts, design §3.12). Until the fix the store's next writer of this process blocked its
 * thread for 5 s before taking it over: a main thread's event loop froze, and an engine worker waiting inside its
 * native gate could not answer its watchdog, which killed it (its flush rejected worker-unresponsive). Now a turn wait
 * is bounded as SQLite's busy wait is, and the engine frees the turns of its workers when they exit. The dead turn is
 * real: a worker thread exits inside inWriterTurn (fixtures/exit-in-turn.mjs). No timing is asserted: the engine case
 * shows the bound through the watchdog's verdict, the others through the turn table's state.
 */
import { afterAll, expect, it } from "vitest";
import { once } from "node:events";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { SQLITE_BUSY_TIMEOUT_MS } from "../../src/backend/sqlite-errors.js";
import { WRITER_TURN_WAIT_MS, writerSlot, writerTurnHolder } from "../../src/backend/sqlite-turns.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { openStorageEngineForTests } from "../../src/engine/engine.js";
import { until } from "../support/wait.js";

const root = mkdtempSync(join(tmpdir(), "turns-dead-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const codeOf = (e: unknown): string => String((e as { code?: unknown }).code ?? e);

/** A new store at `name`; a worker thread (no engine) exits inside its writer turn. Returns its path and slot. */
async function turnLeftByDeadThread(name: string): Promise<{ path: string; slot: number }> {
  const path = join(root, name);
  sqliteBackend(path).close();
  const slot = writerSlot(realpathSync(path));
  const worker = new Worker(new URL("./fixtures/exit-in-turn.mjs", import.meta.url), { workerData: { exitInTurnPath: path } });
  const thread = worker.threadId;
  await once(worker, "exit");
  expect(writerTurnHolder(slot), "the dead thread's turn (precondition)").toBe(thread);
  return { path, slot };
}

it("the main thread's write beside a dead thread's turn waits the busy timeout's bound at most, then takes it over", async () => {
  const { path, slot } = await turnLeftByDeadThread("main.db");
  // The bound the main thread's event loop may block for: SQLite's own busy wait's (059aeff), not 5 s.
  expect(WRITER_TURN_WAIT_MS).toBeLessThanOrEqual(SQLITE_BUSY_TIMEOUT_MS);
  const b = sqliteBackend(path);
  try {
    b.write("after", new Uint8Array([1]));
    expect(b.read("after")).toEqual(new Uint8Array([1]));
    expect(writerTurnHolder(slot), "taken over, then given back").toBeUndefined();
  } finally {
    b.close();
  }
});

it("an engine worker (watchdogMs 1000) writing beside a dead thread's turn is not taken for a hung one: its flush is stored", async () => {
  const { path, slot } = await turnLeftByDeadThread("engine.db");
  const errors: string[] = [];
  const engine = openStorageEngine({ threads: 1, watchdogMs: 1000, onError: (e) => void errors.push(codeOf(e)) });
  try {
    const kv = engine.kv<number>({ kind: "sqlite", path }, { name: "k" });
    kv.save("a", 1);
    const outcome = await kv.flush().then(
      () => "stored",
      (e: unknown) => codeOf(e),
    );
    expect({ outcome, errors }).toEqual({ outcome: "stored", errors: [] });
    expect(await kv.load("a")).toBe(1);
    expect(writerTurnHolder(slot)).toBeUndefined();
  } finally {
    await engine.close();
  }
});

it("an engine worker that exits inside its writer turn: the engine frees the turn at the worker's exit", async () => {
  const path = join(root, "exit.db");
  sqliteBackend(path).close();
  const slot = writerSlot(realpathSync(path));
  const entry = fileURLToPath(new URL("./fixtures/exit-in-turn-entry.mjs", import.meta.url));
  const { engine } = openStorageEngineForTests({ threads: 1 }, entry);
  try {
    const kv = engine.kv<number>({ kind: "sqlite", path }, { name: "k" });
    kv.save("a", 1);
    await kv.flush(); // the actor runs: its thread is the one to exit
    expect(codeOf(await engine.runJob({ kind: "sqlite", path }, "exit-in-turn", { path }).catch((e: unknown) => e))).toBe("worker-crashed");
    await until(() => writerTurnHolder(slot) === undefined, "the dead worker's turn freed");
    // Nothing waits for it: the store's next writers (inline, and the store's reopened actor) write.
    const b = sqliteBackend(path);
    try {
      b.write("inline", new Uint8Array([2]));
    } finally {
      b.close();
    }
    kv.save("b", 2);
    await kv.flush();
    expect(await kv.load("b")).toBe(2);
  } finally {
    await engine.close();
  }
});
