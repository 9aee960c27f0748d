/**
 * Review r353 F5: the checkpointer thread opened a store with no look at its side files. A store's writer has them
 * looked at before its open (sqlite-side-files.ts), but its actor can die between its hand-over to the thread and the
 * thread's open: its connection is then closed and holds no lock, and a FIFO or link put there since was opened by the
 * thread's connection (here, as root: SQLITE_IOERR_SHMOPEN, SQLITE_CANTOPEN; as a user who cannot open a FIFO
 * read-write, SQLite opens it read-only, which blocked the thread for good: no store of the engine checkpointed by it
 * again, the engine's close waiting out its bound). The thread now looks first, as every opener does, and refuses the
 * store (reported to onError with the refusal's reason and file); it opens the -shm it reads as a regular file only.
 *
 * Real parts: the checkpointer thread (dist/workers/checkpointer.js), SQLite files, and the store's writer on a worker
 * thread of its own (fixtures/checkpoint-writer.mjs, its hand-over made by side-checkpoint as an actor's), terminated
 * for real. Ordering: the thread is held (EngineCheckpointer.hold, which defers the hand-overs that come meanwhile)
 * from before the hand-over until the side file is in place.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { closeSync, constants, existsSync, openSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { EngineCheckpointer } from "../../src/engine/checkpointer.js";
import { STATE_PENDING } from "../../src/engine/checkpoint-link.js";
import { StorageError } from "../../src/errors.js";
import { until } from "../support/wait.js";
import { WriterThread } from "./fixtures/checkpoint-writer-thread.js";
import { tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("checkpoint-side-files");
afterAll(() => root.remove());
const ENTRY = fileURLToPath(new URL("../../dist/workers/checkpointer.js", import.meta.url));

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Lets a thread blocked opening `fifo` for reading on (a writer's open meets it): ends a test that failed so. */
function unblock(fifo: string): void {
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // ENXIO: no one was blocked there
  }
}

describe("the checkpointer thread's open of a store whose writer's actor died after the hand-over (review r353 F5)", () => {
  it.each([
    ["-shm", "a FIFO", (file: string) => execFileSync("mkfifo", ["-m", "0644", file])],
    ["-wal", "a symbolic link", (file: string) => symlinkSync(root.fresh("victim"), file)],
  ] as const)("%s put there as %s is refused before the thread opens anything: reported with the refusal's reason, the store not served", async (suffix, found, place) => {
    const reports: StorageError[] = [];
    const cp = new EngineCheckpointer(ENTRY, (err) => void reports.push(err as StorageError), () => 0, 40, 0);
    cleanups.push(() => cp.stop());
    const link = cp.linkForActor()!;
    cp.hold(true);
    await cp.stores(); // the hold reached the thread: a hand-over waits for its end
    const writer = new WriterThread(cleanups);
    await writer.call("link", { link });
    const path = root.fresh(`died${suffix}.db`);
    await writer.call("open", { path });
    await writer.call("write", { path, count: 3 });
    expect((await writer.call<{ state: number }>("words", { path })).state).toBe(STATE_PENDING);
    await writer.terminate(); // the actor dies: nothing released, its connection closed by the thread's teardown
    expect(existsSync(`${path}-wal`)).toBe(false);
    const file = `${path}${suffix}`;
    place(file);
    cleanups.push(() => unblock(file));
    cp.hold(false);
    await until(() => reports.length > 0, "the thread's report of the store", { timeoutMs: 20_000 });
    expect(reports[0]).toBeInstanceOf(StorageError);
    expect(reports[0]!.code).toBe("backend-error");
    expect(reports[0]!.details).toEqual({ path, reason: "side-not-a-file", file });
    expect(reports[0]!.message).toContain(`its ${suffix} file ${file} is ${found}, not a regular file`);
    expect(await cp.stores()).toStrictEqual([]); // the thread answers (not blocked), and serves nothing
    expect(reports).toHaveLength(1);
  });
});
