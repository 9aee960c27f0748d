/**
 * Task 323 (review r309 F4, closing note 24 open item 3): read commands could not open a SQLite store the user cannot
 * write to (another user's store, a read-only mount, a backup on read-only media): SQLite needs the -shm file beside
 * a WAL database, and could not create it (`error backend-error … attempt to write a readonly database`, exit 4).
 * Such a store is now read from a private copy of its database file and -wal, made only while no -shm exists and
 * kept only if every file read twice gave the same bytes; a -shm this user cannot read (a writer may have the store
 * open) is refused, `store-unreadable`. Task 333 (review r330): a signal during the copy ends the run with its status
 * (it was dropped: exit 0), a killed run's copy is removed by the next, side files are opened as regular files only,
 * the copy is opened read-only, a failed write of it is store-unreadable, errors name the store, stats copies nothing.
 * Task 339 (review r336): a signal after the copy is open is handled before the read, a store with a hot -journal is
 * read from a copy rolled back, a dead run's copy filling TMPDIR is removed before the room check.
 *
 * Every case runs as root and as another user, with the same assertions. As root (CI), "this user" is the CLI run as
 * nobody (uid 65534) over root's store, and read-only media a tmpfs remounted read-only; as another user, the CLI
 * runs as that user over a store whose directory is made 0555 (its -shm 0000), and the room case is a file size
 * limit (`ulimit -f`) instead of a small tmpfs (the dead copy's case mounts its tmpfs in a user namespace).
 */
import { execFileSync, spawn, spawnSync, type SpawnOptions } from "node:child_process";
import { appendFileSync, chmodSync, closeSync, constants, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSqliteReader } from "../../src/cli/read-copy.js";
import { tempPrefix } from "../../src/cli/out-file.js";
import { formatBytes } from "../../src/cli/output.js";
import { kvStorage } from "../../src/tier/kv.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { tmpfsRoot, type Tmpfs } from "../support/tmpfs.js";
import { BIN, requireBuiltBin, runCli, tempDir, type CliRun } from "./fixtures/cli.js";
import { killedMidTransaction } from "../support/sqlite-journal.js";
import { damageMiddlePage } from "../support/damaged-page.js";
import { appendFrames, buildStore, openBackend, setFrame } from "./fixtures/stores.js";

const ROOT = process.getuid?.() === 0;
const NOBODY = 65534;
/** How the CLI runs as "another user": as nobody under root, as this user otherwise. */
const AS_READER: SpawnOptions = ROOT ? { uid: NOBODY, gid: NOBODY } : {};
const tmp = tempDir("read-only-store");
const mounts = tmpfsRoot("read-only-store");
/** Directories made unwritable here, made writable again before the temp directory is removed. */
const locked = new Set<string>();
beforeAll(() => {
  requireBuiltBin();
  chmodSync(tmp.dir, 0o755); // nobody may walk to the stores (and write nothing there)
});
afterAll(() => {
  for (const d of locked) chmodSync(d, 0o755);
  mounts.remove();
  tmp.remove();
});

const PAUSE_HOOK = fileURLToPath(new URL("./fixtures/pause-at-open.mjs", import.meta.url));
const NOTE_HOOK = fileURLToPath(new URL("./fixtures/pause-at-note.mjs", import.meta.url));
const READS: ReadonlyArray<readonly string[]> = [["inspect"], ["verify"], ["export", "--graph", "g"], ["frames", "--graph", "g"]];

/** A fresh directory for the store of `name` (0755, this process's). */
function storeDir(name: string): string {
  const dir = tmp.path(name);
  mkdirSync(dir, { mode: 0o755 });
  return dir;
}

/** Makes `dir` one the reader cannot create files in: as root nobody already cannot; otherwise 0555. */
function lock(dir: string): void {
  if (ROOT) return;
  chmodSync(dir, 0o555);
  locked.add(dir);
}

function unlock(dir: string): void {
  if (!ROOT) chmodSync(dir, 0o755);
}

/** A temp directory the reader may write into, for the CLI's TMPDIR (so what it leaves there is seen). */
function readersTemp(): string {
  const dir = tmp.path("tmpdir");
  mkdirSync(dir);
  if (ROOT) execFileSync("chown", [`${NOBODY}:${NOBODY}`, dir]);
  return dir;
}

/**
 * The shell that sets a file size limit. Node gives a child's stdin as a socket, and Debian's bash, started at shell
 * level < 2 (an environment without SHLVL, as CI's may be) with a socket on stdin, takes itself for sshd's and reads
 * ~/.bashrc: as nobody, root's is unreadable and bash says so on stderr. So no stdin and no rc file.
 */
const LIMIT_SHELL = ["--norc", "--noprofile", "-c"] as const;
const NO_STDIN: ["ignore", "pipe", "pipe"] = ["ignore", "pipe", "pipe"];

/** The bin run as the reader, with TMPDIR `tmpDir` (env otherwise this process's); `limit` a file size limit in KiB. */
function runAsReader(args: readonly string[], tmpDir: string, limit?: number): CliRun {
  const env = { ...process.env, TMPDIR: tmpDir };
  const opts = { encoding: "utf8" as const, timeout: 60_000, env, ...AS_READER };
  // Node ignores SIGXFSZ: a write past the limit fails EFBIG rather than killing the process.
  const r =
    limit === undefined
      ? spawnSync(process.execPath, [BIN, ...args], opts)
      : spawnSync("bash", [...LIMIT_SHELL, `ulimit -f ${limit} && exec "$0" "$@"`, process.execPath, BIN, ...args], { ...opts, stdio: NO_STDIN });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A place for a backup on read-only media: a tmpfs remounted read-only as root, a 0555 directory otherwise. */
function readOnlyPlace(name: string): { dir: string; seal(): void } {
  if (ROOT) {
    const mount: Tmpfs = mounts.mount(name, 4096);
    return { dir: mount.dir, seal: () => void execFileSync("mount", ["-o", "remount,ro", mount.dir]) };
  }
  const dir = storeDir(name);
  return { dir, seal: () => lock(dir) };
}

const NOTE = /^note: .*: this user cannot create the -shm file SQLite needs to read it in place \(a read-only directory or file system\): reading a private copy of [^\n]*; no -shm when checked, every file read twice with the same bytes\) in [^\n]*, removed afterwards\n$/;
/** A copy directory's name: after this host's hash and the process id that made it. */
const COPY_DIR = new RegExp(`^${tempPrefix("graphrefly-storage-read", 0).slice(1, -"0-".length).replaceAll(".", "\\.")}\\d+-[A-Za-z0-9]{6}$`);

/** The repository's root: the killed writer's better-sqlite3. */
const REPO = fileURLToPath(new URL("../..", import.meta.url));

/** A fresh store "s.db" of graph "g" (frames 2..11 set a, or frames 2..`frames` + 1) in a directory of its own. */
async function newStore(name: string, frames = 10): Promise<{ dir: string; store: string }> {
  const dir = storeDir(name);
  const store = join(dir, "s.db");
  await buildStore("sqlite", store, [{ name: "g", frameSeqs: Array.from({ length: frames }, (_, i) => i + 2) }]);
  return { dir, store };
}

/** A fresh store as newStore makes, in a locked directory; its path. */
async function lockedStore(name: string): Promise<string> {
  const { dir, store } = await newStore(name);
  lock(dir);
  return store;
}

/**
 * A live store `live` of graph "g" whose last frame (12, setting a to 12) is only in its -wal: its writer stays open
 * (no checkpoint below 1000 frames) while its database file and -wal are copied to `copy` and `copy`-wal (no -shm).
 */
async function copyWithWalFrame(live: string, copy: string): Promise<void> {
  await buildStore("sqlite", live, [{ name: "g" }]);
  const writer = openBackend("sqlite", live);
  try {
    const wal = kvStorage<WALFrame>(writer, { codec: walFrameCodec });
    wal.save(walFrameKey(graphWalPrefix("g"), 12), setFrame(12, "a", 12));
    await wal.flush();
    expect(statSync(`${live}-wal`).size).toBeGreaterThan(0);
    for (const suffix of ["", "-wal"]) copyFileSync(`${live}${suffix}`, `${copy}${suffix}`);
  } finally {
    writer.close();
  }
}

describe("a SQLite store in a directory this user cannot write (another user's store)", () => {
  it("every read command reads it from a private copy: the output an in-place read gives, the copy removed", async () => {
    const { dir, store } = await newStore("own-store");
    const expected = READS.map((args) => runCli([args[0]!, store, ...args.slice(1)]));
    const listing = readdirSync(dir).sort();
    lock(dir);
    const temp = readersTemp();
    READS.forEach((args, i) => {
      const own = expected[i]!;
      expect(own.code, own.stderr).toBe(0);
      const r = runAsReader([args[0]!, store, ...args.slice(1)], temp);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
      expect(r.stdout, args[0]).toBe(own.stdout);
      expect(r.stderr, args[0]).toMatch(NOTE);
      expect(r.stderr).toContain(`reading a private copy of s.db (`);
      expect(readdirSync(temp), `${args[0]} left its copy`).toEqual([]);
    });
    expect(readdirSync(dir).sort()).toEqual(listing); // no -shm or -wal made beside the store
  });

  it("open by a writer, it is read in place through the writer's -shm; a -shm it cannot read is refused: store-unreadable, exit 4, nothing copied", async () => {
    const { dir, store } = await newStore("shm-private");
    // A reader of this process opens the store: its -shm is there while it is open; it is made unreadable meanwhile.
    const holder = openBackend("sqlite", store);
    try {
      holder.list();
      lock(dir);
      const temp = readersTemp();
      const inPlace = runAsReader(["verify", store], temp);
      expect(inPlace.code, inPlace.stderr).toBe(0);
      expect(inPlace.stderr).toBe(""); // no copy: SQLite reads through a -shm it may only read
      chmodSync(`${store}-shm`, ROOT ? 0o600 : 0o000);
      const r = runAsReader(["verify", store], temp);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^error store-unreadable: .*s\.db cannot be read by this user: its -shm file exists but is not readable \(a writer may have the store open/);
      expect(readdirSync(temp)).toEqual([]);
    } finally {
      chmodSync(`${store}-shm`, 0o644);
      unlock(dir);
      holder.close();
    }
  });

  /** A reader child run with the pause hook, held at the opens of `store` listed in `nth` (or at its note: NOTE_HOOK). */
  function pausedReader(args: readonly string[], store: string, temp: string, nth: readonly number[], hook = PAUSE_HOOK) {
    const fifo = tmp.path("pause.fifo");
    // One FIFO a pause (the hooks' naming): the open for the next pause cannot meet the last pause's reading end.
    const fifos = Array.from({ length: Math.max(1, nth.length) }, (_, k) => (k === 0 ? fifo : `${fifo}.${k + 1}`));
    for (const f of fifos) execFileSync("mkfifo", ["-m", "0666", f]);
    let pauses = 0;
    const child = spawn(process.execPath, ["--import", hook, BIN, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      ...AS_READER,
      env: { ...process.env, TMPDIR: temp, GRF_PAUSE_AT: store, GRF_PAUSE_NTH: nth.join(","), GRF_PAUSE_FIFO: fifo },
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    return {
      child,
      exited,
      output: () => ({ stdout, stderr }),
      /**
       * Resolves with the FIFO held open once the child is paused (it opened the FIFO); closing it lets the child on.
       * A child that ends without pausing there fails the test (its reading end opened here, so the open returns).
       */
      paused: () => {
        const next = fifos[pauses++]!;
        return Promise.race([
          open(next, "w"),
          exited.then(() => {
            closeSync(openSync(next, constants.O_RDONLY | constants.O_NONBLOCK));
            throw new Error(`the CLI ended before pause ${pauses}: ${stderr}`);
          }),
        ]);
      },
    };
  }

  /**
   * `export` of a fresh store as the reader, held at its second read of s.db in each copy attempt listed (its opens
   * of s.db through fs: 1 the first copy, 2 the first copy's second read, 3 and 4 the next copy's…; SQLite opens
   * natively), while this process appends a frame and closes (the -wal goes). Resolves with the run.
   */
  async function exportChangedAt(name: string, attempts: readonly number[]): Promise<CliRun & { temp: string }> {
    const store = await lockedStore(name); // frames 2..11 set a to their seq
    const dir = join(store, "..");
    const temp = readersTemp();
    const run = pausedReader(["export", store, "--graph", "g"], store, temp, attempts.map((a) => 2 * a));
    for (let i = 0; i < attempts.length; i++) {
      // The CLI copied s.db and is about to read it again.
      const pause = await run.paused();
      unlock(dir); // the writer makes its -wal and -shm beside the store (and removes them at its close)
      await appendFrames(store, [setFrame(12 + i, "a", 12 + i)]);
      lock(dir);
      await pause.close();
    }
    const { code } = await run.exited;
    return { code, ...run.output(), temp };
  }

  it("a store that changes during the copy is copied again: the change is read, not a copy from before it", async () => {
    const r = await exportChangedAt("changing", [1]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { nodes: { a: { value: unknown } } }).nodes.a.value).toBe(12);
    expect(r.stderr.match(/^note: /gm)).toHaveLength(1); // one copy kept: the second
    expect(readdirSync(r.temp)).toEqual([]);
  });

  it("a store that changes during each of three copies is refused: store-unreadable, exit 4, no copy left", async () => {
    const r = await exportChangedAt("changing-thrice", [1, 2, 3]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error store-unreadable: .*s\.db changed while it was being copied, 3 times \(a writer has it open/);
    expect(readdirSync(r.temp)).toEqual([]);
  });

  it("a store that grows while its copy is read again counts as a change: copied again, not kept short (task 347)", async () => {
    const dir = storeDir("growing");
    const store = join(dir, "s.db");
    // A live store's database file and -wal (its last frame only there) copied side by side, no -shm: read from a copy.
    const live = tmp.path("growing-live.db");
    await copyWithWalFrame(live, store);
    const expected = runCli(["export", live, "--graph", "g"]);
    expect(expected.code, expected.stderr).toBe(0);
    lock(dir);
    const temp = readersTemp();
    // The CLI's opens of s.db-wal: 1 in the first copy, 2 in its second read (s.db open then, its size taken: the
    // bytes read twice are the same up to it), 3 in the next copy, made only when the growth counted as a change.
    const run = pausedReader(["export", store, "--graph", "g"], `${store}-wal`, temp, [2, 3]);
    const second = await run.paused();
    appendFileSync(store, Buffer.alloc(8192)); // a page past the end (SQLite reads no further than the -wal says)
    await second.close();
    await (await run.paused()).close();
    const end = await run.exited;
    expect(end.code, run.output().stderr).toBe(0);
    expect(run.output().stdout).toBe(expected.stdout.replaceAll(live, store));
    expect(run.output().stderr.match(/^note: /gm)).toHaveLength(1); // one copy kept: the second
    expect(run.output().stderr).toContain(`reading a private copy of s.db, s.db-wal (${formatBytes(statSync(store).size + statSync(`${store}-wal`).size)};`);
    expect(readdirSync(temp)).toEqual([]);
  });

  it.each(["SIGINT", "SIGTERM", "SIGHUP"] as const)("%s during the copy ends the run with that signal and removes the copy (task 333, r330 F1)", async (signal) => {
    const store = await lockedStore(`signal-${signal}`);
    const temp = readersTemp();
    // Held at its second read of s.db: the copy is in TMPDIR; the signal comes while the CLI is busy copying.
    const run = pausedReader(["export", store, "--graph", "g"], store, temp, [2]);
    const pause = await run.paused();
    expect(readdirSync(temp)).toHaveLength(1);
    run.child.kill(signal);
    await pause.close();
    const end = await run.exited;
    expect(end, run.output().stderr).toEqual({ code: null, signal });
    expect(run.output().stdout).toBe("");
    expect(readdirSync(temp)).toEqual([]);
  });

  it("SIGINT after the copy is open (its note printed) ends the run with SIGINT before the read's output, not exit 0 (review r336 F1)", async () => {
    const { dir, store } = await newStore("signal-after-copy", 2000);
    const full = runCli(["frames", store, "--graph", "g"]);
    expect(full.code, full.stderr).toBe(0);
    lock(dir);
    const temp = readersTemp();
    const run = pausedReader(["frames", store, "--graph", "g"], store, temp, [], NOTE_HOOK);
    const pause = await run.paused();
    run.child.kill("SIGINT");
    await pause.close();
    const end = await run.exited;
    expect(end, run.output().stderr).toEqual({ code: null, signal: "SIGINT" });
    expect(run.output().stderr).toMatch(NOTE);
    // Not the whole read (2000 frames), run on after the signal: the signal came before any of it.
    expect(run.output().stdout.length).toBeLessThan(full.stdout.length / 10);
    expect(readdirSync(temp)).toEqual([]);
  });

  it("a run killed by SIGKILL leaves its copy, named after its host and pid; the next copy removes it, not a live run's (task 333, r330 F2)", async () => {
    const store = await lockedStore("killed");
    const temp = readersTemp();
    const run = pausedReader(["verify", store], store, temp, [2]);
    const pause = await run.paused();
    run.child.kill("SIGKILL");
    await pause.close();
    expect((await run.exited).signal).toBe("SIGKILL");
    const left = readdirSync(temp);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(COPY_DIR);
    expect(left[0]).toContain(`-${run.child.pid}-`);
    expect(readdirSync(join(temp, left[0]!))).toEqual(["s.db"]);
    // A copy of a process still running (this one) is left alone.
    const alive = join(temp, `${tempPrefix("graphrefly-storage-read", process.pid).slice(1)}AbC123`);
    mkdirSync(alive);
    if (ROOT) execFileSync("chown", [`${NOBODY}:${NOBODY}`, alive]);
    const r = runAsReader(["verify", store], temp);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(NOTE);
    expect(readdirSync(temp)).toEqual([basename(alive)]);
  });

  it("a -wal that is a symbolic link (to /dev/zero) is refused, store-unreadable, nothing copied (task 333, r330 F3; by the open itself since task 347)", async () => {
    const { dir, store } = await newStore("wal-symlink");
    symlinkSync("/dev/zero", `${store}-wal`); // copied through the link, it filled TMPDIR
    lock(dir);
    const temp = readersTemp();
    const r = runAsReader(["verify", store], temp);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    // Refused before SQLite opens the store in place (sqlite-side-files.ts), so before any copy too.
    expect(r.stderr).toMatch(/^error store-unreadable: [^\n]*\n$/);
    expect(r.stderr).toContain(`cannot open sqlite store ${store}: its -wal file ${store}-wal is a symbolic link, not a regular file`);
    expect(readdirSync(temp)).toEqual([]);
  });

  it.each(["-wal", "-shm", "-journal"])("a FIFO as s.db%s is refused before SQLite opens it: store-unreadable, exit 4, nothing copied (a FIFO -wal hung the in-place open; task 347)", async (suffix) => {
    const { dir, store } = await newStore(`fifo${suffix}`);
    execFileSync("mkfifo", ["-m", "0644", `${store}${suffix}`]);
    lock(dir);
    const temp = readersTemp();
    // Killed by spawnSync's timer if it never ends (the open blocked on the FIFO): then it has no exit code.
    const r = spawnSync(process.execPath, [BIN, "verify", store], { encoding: "utf8", timeout: 20_000, env: { ...process.env, TMPDIR: temp }, ...AS_READER });
    expect(r.signal, "the CLI blocked on the FIFO").toBeNull();
    expect(r.status, r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error store-unreadable: [^\n]*\n$/);
    expect(r.stderr).toContain(`cannot open sqlite store ${store}: its ${suffix} file ${store}${suffix} is a FIFO, not a regular file`);
    expect(readdirSync(temp)).toEqual([]);
  });

  it("a copy whose write fails (EFBIG under a file size limit) is refused with the TMPDIR advice, no copy left (task 333, r330 F5)", async () => {
    const store = await lockedStore("file-limit");
    const temp = readersTemp();
    const r = runAsReader(["verify", store], temp, 8); // 8 KiB: under the store's size
    expect(r.code, r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      `error store-unreadable: ${store} can only be read from a copy (this user cannot create the -shm file SQLite needs beside it), and the copy could not be written in ${temp} (EFBIG): set TMPDIR to a directory with room\n`,
    );
    expect(readdirSync(temp)).toEqual([]);
  });

  it("an error reading the copy names the store, not the removed copy (task 333, r330 F6)", async () => {
    const { dir, store } = await newStore("corrupt", 300);
    damageMiddlePage(store);
    lock(dir);
    const temp = readersTemp();
    const r = runAsReader(["export", store, "--graph", "g"], temp);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr.replace(NOTE_LINE, "")).toBe(`error backend-error: sqlite read failed (${store}): database disk image is malformed\n`);
    expect(readdirSync(temp)).toEqual([]);
  });

  it("a store left with a hot -journal (a writer killed mid-transaction) is read from a copy rolled back, with the -journal note (review r336 F2)", async () => {
    const { dir, store } = await newStore("hot-journal");
    const before = runCli(["inspect", store]);
    killedMidTransaction(store, REPO);
    const listing = readdirSync(dir).sort();
    expect(listing).toContain("s.db-journal");
    expect(statSync(`${store}-journal`).size).toBeGreaterThan(0);
    // What the store holds once rolled back: its files copied elsewhere, read in place there (SQLite rolls back).
    const twin = storeDir("hot-journal-twin");
    for (const f of ["s.db", "s.db-journal"]) copyFileSync(join(dir, f), join(twin, f));
    const expected = runCli(["inspect", join(twin, "s.db")]);
    expect(expected.code, expected.stderr).toBe(0);
    expect(expected.stdout).toBe(before.stdout.replaceAll(store, join(twin, "s.db"))); // the transaction undone
    expect(existsSync(join(twin, "s.db-journal"))).toBe(false);
    lock(dir);
    const temp = readersTemp();
    const r = runAsReader(["inspect", store], temp);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(expected.stdout.replaceAll(join(twin, "s.db"), store));
    expect(r.stderr).toMatch(
      /^note: .*s\.db: this user cannot roll back its -journal as SQLite must to read it in place \(a read-only directory or file system\): reading a private copy of s\.db, s\.db-journal \(/,
    );
    expect(readdirSync(temp)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(listing); // the store's -journal left as it was
  });

  it("a hot -journal copied and rolled back in the private copy is said in its own note: the files, their bytes, the copy's place (task 347)", async () => {
    const { dir, store } = await newStore("hot-journal-note");
    killedMidTransaction(store, REPO);
    const bytes = statSync(store).size + statSync(`${store}-journal`).size;
    const listing = readdirSync(dir).sort();
    lock(dir);
    const temp = readersTemp();
    const r = runAsReader(["verify", store], temp);
    expect(r.code, r.stderr).toBe(0);
    const text = (t: string): string => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const line = new RegExp(
      `^note: ${text(store)}: this user cannot roll back its -journal as SQLite must to read it in place \\(a read-only directory or file system\\): reading a private copy of s\\.db, s\\.db-journal \\(${text(formatBytes(bytes))}; no -shm when checked, every file read twice with the same bytes\\) in ${text(temp)}/([^/\\n]+), removed afterwards\\n$`,
    );
    expect(r.stderr).toMatch(line);
    expect(r.stderr.match(line)![1]).toMatch(COPY_DIR);
    expect(readdirSync(temp)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(listing); // rolled back in the copy alone
  });

  /** Appends to `journal` the trailer SQLite reads as a super-journal's name: page no., name, length, checksum, magic. */
  function nameSuperJournal(journal: string, superJournal: string): void {
    const name = Buffer.from(superJournal);
    const trailer = Buffer.alloc(4 + name.length + 16);
    trailer.writeUInt32BE(Math.floor(0x40000000 / 8192) + 1, 0);
    name.copy(trailer, 4);
    trailer.writeUInt32BE(name.length, 4 + name.length);
    trailer.writeUInt32BE(name.reduce((sum, b) => (sum + b) >>> 0, 0), 8 + name.length);
    Buffer.from("d9d505f920a163d7", "hex").copy(trailer, 12 + name.length);
    const fd = openSync(journal, constants.O_WRONLY | constants.O_APPEND);
    try {
      writeSync(fd, trailer);
    } finally {
      closeSync(fd);
    }
  }

  it("a -journal naming a super-journal is refused, read in place or from a copy: its rollback would delete that file (review r342 F1)", async () => {
    for (const where of ["copy", "in place"] as const) {
      const { dir, store } = await newStore(`super-journal-${where.replace(" ", "-")}`);
      killedMidTransaction(store, REPO);
      // A file of the reader's own that the store's owner names as the super-journal.
      const victims = readersTemp();
      const victim = join(victims, "precious");
      execFileSync(process.execPath, ["-e", `require("fs").writeFileSync(process.argv[1], "precious data")`, victim], AS_READER);
      nameSuperJournal(`${store}-journal`, victim);
      const listing = readdirSync(dir).sort();
      const temp = readersTemp();
      let r: CliRun;
      if (where === "copy") {
        lock(dir);
        r = runAsReader(["inspect", store], temp);
      } else {
        r = runCli(["inspect", store]); // this process's user, who may write the store's directory: SQLite would roll back
      }
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toContain("store-unreadable");
      expect(r.stderr).toContain("super-journal");
      expect(readFileSync(victim, "utf8")).toBe("precious data");
      expect(readdirSync(temp)).toEqual([]);
      unlock(dir);
      expect(readdirSync(dir).sort()).toEqual(listing); // the store and its -journal left as they were
    }
  });

  it("stats on it copies nothing: refused at once, store-unreadable, as it writes into the store (task 333, r330 F7)", async () => {
    const store = await lockedStore("stats");
    const temp = readersTemp();
    const r = runAsReader(["stats", store, "--frames", "10"], temp);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error store-unreadable: .*s\.db cannot be written by this user \(stats writes into the store, /);
    expect(r.stderr).not.toContain("private copy");
    expect(readdirSync(temp)).toEqual([]);
  });
});

/** The note line alone (the copy's note before an error). */
const NOTE_LINE = /^note: [^\n]*\n/;
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

describe("a SQLite store on read-only media", () => {
  /** A backup of a live store's database file and -wal (its last frame only in the -wal); the live store's path. */
  async function backupWithWal(place: { dir: string; seal(): void }, name: string): Promise<{ live: string; backup: string }> {
    const live = tmp.path(name);
    const backup = join(place.dir, basename(live));
    await copyWithWalFrame(live, backup);
    place.seal();
    return { live, backup };
  }

  it("a backup of the database file and its -wal (no -shm) is read whole: the frames only the -wal holds too", async () => {
    const { live, backup } = await backupWithWal(readOnlyPlace("backup"), "live.db");
    for (const args of READS) {
      const r = runCli([args[0]!, backup, ...args.slice(1)]);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toMatch(NOTE);
      expect(r.stderr).toContain(`reading a private copy of ${basename(live)}, ${basename(live)}-wal (`);
      expect(r.stdout).toBe(runCli([args[0]!, live, ...args.slice(1)]).stdout.replaceAll(live, backup));
    }
    const exported = JSON.parse(runCli(["export", backup, "--graph", "g"]).stdout) as { nodes: { a: { value: unknown } } };
    expect(exported.nodes.a.value).toBe(12);
  });

  it("the copy is opened read-only: its close leaves the copied database file and -wal as copied (task 333, r330 F4)", async () => {
    const { backup } = await backupWithWal(readOnlyPlace("backup-ro-copy"), "live-ro.db");
    const listeners = SIGNALS.map((s) => process.listenerCount(s));
    const { backend, copy } = await openSqliteReader(backup);
    expect(copy).toBeDefined();
    // Its signal listeners are gone once the copy is open: a signal during the read kills at once (review r336 F1).
    expect(SIGNALS.map((s) => process.listenerCount(s))).toEqual(listeners);
    try {
      expect(backend.db.readonly).toBe(true);
      expect(backend.list().length).toBeGreaterThan(0);
      backend.close();
      // A read-write connection, the last to close, checkpointed the -wal into the copy and removed it.
      for (const suffix of ["", "-wal"]) expect(readFileSync(`${copy!.path}${suffix}`).equals(readFileSync(`${backup}${suffix}`)), suffix).toBe(true);
    } finally {
      copy!.remove();
    }
    expect(existsSync(copy!.path)).toBe(false);
  });

  it("a copy that does not fit in TMPDIR is refused, naming the room it needs", async () => {
    const place = readOnlyPlace("store");
    await buildStore("sqlite", join(place.dir, "s.db"), [{ name: "g" }]);
    place.seal();
    // As root a tmpfs under the 1 MiB the copy keeps free beyond its bytes; otherwise a file size limit of 8 KiB.
    const small = ROOT ? mounts.mount("small-tmp", 512).dir : tmp.path("small-tmp");
    if (!ROOT) mkdirSync(small);
    const limit = ROOT ? undefined : 8;
    const env = { ...process.env, TMPDIR: small };
    const args = [BIN, "verify", join(place.dir, "s.db")];
    const r =
      limit === undefined
        ? spawnSync(process.execPath, args, { encoding: "utf8", timeout: 60_000, env })
        : spawnSync("bash", [...LIMIT_SHELL, `ulimit -f ${limit} && exec "$0" "$@"`, process.execPath, ...args], { encoding: "utf8", timeout: 60_000, env, stdio: NO_STDIN });
    expect(r.status, r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error store-unreadable: .*s\.db can only be read from a copy .*: set TMPDIR to a directory with room\n$/);
    expect(readdirSync(small)).toEqual([]);
  });

  it("a dead run's copy that fills TMPDIR is removed before the room is checked: the run reads (review r336 F3)", async () => {
    const { dir, store } = await newStore("dead-fills");
    const expected = runCli(["verify", store]);
    expect(expected.code, expected.stderr).toBe(0);
    const small = tmp.path("dead-fills-tmp");
    mkdirSync(small);
    const left = tmp.path("dead-fills-left");
    // In a mount namespace of its own (a user namespace too when not root, so that it may mount): a 2 MiB tmpfs for
    // TMPDIR, the store's directory bound read-only (read-only media even to root), a dead run's copy (pid 999999)
    // of 1.5 MiB in TMPDIR, then the CLI; what it leaves in TMPDIR is listed into `left` (the tmpfs ends with it).
    const dead = `${tempPrefix("graphrefly-storage-read", 999999).slice(1)}Dead01`;
    const script = [
      "set -e",
      'mount -t tmpfs -o size=2048k tmpfs "$SMALL"',
      'mount --bind "$DIR" "$DIR"',
      'mount -o remount,bind,ro "$DIR"',
      'mkdir "$SMALL/$DEAD"',
      'head -c 1572864 /dev/zero > "$SMALL/$DEAD/s.db"',
      "set +e",
      'TMPDIR="$SMALL" "$NODE" "$BIN" verify "$STORE"',
      "code=$?",
      'ls -A "$SMALL" > "$LEFT"',
      'exit "$code"',
    ].join("\n");
    const r = spawnSync("unshare", [ROOT ? "-m" : "-Urm", "bash", "-c", script], {
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, SMALL: small, DIR: dir, DEAD: dead, NODE: process.execPath, BIN, STORE: store, LEFT: left },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(expected.stdout);
    expect(r.stderr).toMatch(NOTE);
    expect(readFileSync(left, "utf8")).toBe(""); // the dead run's copy gone, this run's removed
  });
});
