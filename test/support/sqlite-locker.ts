/** A second process holding SQLite's write lock on a store file until told to let go (sqlite-locker.cjs). */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const LOCKER = fileURLToPath(new URL("./sqlite-locker.cjs", import.meta.url));

export interface SqliteLocker {
  /** Runs `sql` inside the held transaction (it lands with the release's commit). */
  exec(sql: string): Promise<void>;
  /** Commits the locker's transaction and resolves once it let go of the lock. */
  release(): Promise<void>;
  /** Ends the locker however it stands (cleanup). */
  kill(): void;
}

function message(child: ChildProcess, t: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      if ((m as { t?: unknown } | null)?.t !== t) return;
      child.off("exit", onExit);
      child.off("message", onMessage);
      resolve();
    };
    const onExit = (code: number | null): void => reject(new Error(`sqlite locker exited (${String(code)}) before "${t}"`));
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

/** Resolves once the other process holds the lock on `path` (an existing SQLite file). */
export async function lockSqliteFile(path: string): Promise<SqliteLocker> {
  const child = fork(LOCKER, [path], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  await message(child, "locked");
  return {
    async exec(sql) {
      const done = message(child, "done");
      child.send({ t: "exec", sql });
      await done;
    },
    async release() {
      const released = message(child, "released");
      child.send("release");
      await released;
    },
    kill: () => void child.kill("SIGKILL"),
  };
}
