/**
 * Task 323 (review r309 F4, closing note 24 open item 3): read commands could not open a SQLite store the user cannot
 * write to (another user's store, a read-only mount, a backup on read-only media): SQLite needs the -shm file beside
 * a WAL database, and could not create it (`error backend-error … attempt to write a readonly database`, exit 4).
 * Such a store is now read from a private copy of its database file and -wal, made only while nothing has the store
 * open and kept only if no file changed during the copy; a -shm this user cannot read (a writer may have the store
 * open) is refused, `store-unreadable`. These tests run as root, as CI does: "another user" is the CLI run as nobody
 * (uid 65534) over root's store, and the read-only mount a tmpfs remounted read-only (root cannot write there either).
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, closeSync, constants, copyFileSync, mkdirSync, openSync, readdirSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kvStorage } from "../../src/tier/kv.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import type { WALFrame } from "../../src/wal/frame.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { tmpfsRoot } from "../support/tmpfs.js";
import { BIN, requireBuiltBin, runCli, tempDir, type CliRun } from "./fixtures/cli.js";
import { buildStore, openBackend, setFrame } from "./fixtures/stores.js";

const NOBODY = 65534;
const tmp = tempDir("read-only-store");
const mounts = tmpfsRoot("read-only-store");
beforeAll(() => {
  requireBuiltBin();
  if (process.getuid?.() !== 0) throw new Error("these tests switch users and mount file systems: run them as root, as CI does");
  chmodSync(tmp.dir, 0o755); // nobody may walk to the stores (and write nothing there)
});
afterAll(() => {
  mounts.remove();
  tmp.remove();
});

const PAUSE_HOOK = fileURLToPath(new URL("./fixtures/pause-at-open.mjs", import.meta.url));
const READS: ReadonlyArray<readonly string[]> = [["inspect"], ["verify"], ["export", "--graph", "g"], ["frames", "--graph", "g"]];

/** A temp directory nobody may write into, for the CLI's TMPDIR (so what it leaves there is seen). */
function nobodysTemp(): string {
  const dir = tmp.path("tmpdir");
  mkdirSync(dir);
  execFileSync("chown", [`${NOBODY}:${NOBODY}`, dir]);
  return dir;
}

/** The bin run as nobody, with TMPDIR `tmpDir` (env otherwise this process's). */
function runAsNobody(args: readonly string[], tmpDir: string): CliRun {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    timeout: 60_000,
    uid: NOBODY,
    gid: NOBODY,
    env: { ...process.env, TMPDIR: tmpDir },
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const NOTE = /^note: .*: this user cannot create the -shm file SQLite needs to read it in place \(a read-only directory or file system\): reading a private copy of [^\n]*removed afterwards\n$/;

/** Appends sealed frames to graph "g" of the SQLite store at `path`, through a writer that closes after. */
async function appendFrames(path: string, frames: readonly WALFrame[]): Promise<void> {
  const backend = openBackend("sqlite", path);
  try {
    const wal = kvStorage<WALFrame>(backend, { codec: walFrameCodec });
    for (const f of frames) wal.save(walFrameKey(graphWalPrefix("g"), f.frame_seq), f);
    await wal.flush();
  } finally {
    backend.close();
  }
}

describe("a SQLite store in a directory this user cannot write (another user's store)", () => {
  it("every read command reads it from a private copy: the output root's in-place read gives, the copy removed", async () => {
    const dir = tmp.path("root-store");
    mkdirSync(dir, { mode: 0o755 });
    const store = join(dir, "s.db");
    await buildStore("sqlite", store, [{ name: "g" }]);
    const listing = readdirSync(dir).sort();
    const temp = nobodysTemp();
    for (const args of READS) {
      const full = [args[0]!, store, ...args.slice(1)];
      const own = runCli(full);
      expect(own.code, own.stderr).toBe(0);
      const r = runAsNobody(full, temp);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
      expect(r.stdout, args[0]).toBe(own.stdout);
      expect(r.stderr, args[0]).toMatch(NOTE);
      expect(r.stderr).toContain(`reading a private copy of s.db (`);
      expect(readdirSync(temp), `${args[0]} left its copy`).toEqual([]);
    }
    expect(readdirSync(dir).sort()).toEqual(listing); // no -shm or -wal made beside the store
  });

  it("open by a writer, it is read in place through the writer's -shm; a -shm it cannot read is refused: store-unreadable, exit 4, nothing copied", async () => {
    const dir = tmp.path("shm-private");
    mkdirSync(dir, { mode: 0o755 });
    const store = join(dir, "s.db");
    await buildStore("sqlite", store, [{ name: "g" }]);
    // A reader of root's opens the store: its -shm is there while it is open; root makes it private meanwhile.
    const holder = openBackend("sqlite", store);
    try {
      holder.list();
      const temp = nobodysTemp();
      const inPlace = runAsNobody(["verify", store], temp);
      expect(inPlace.code, inPlace.stderr).toBe(0);
      expect(inPlace.stderr).toBe(""); // no copy: SQLite reads through a -shm it may only read
      chmodSync(`${store}-shm`, 0o600);
      const r = runAsNobody(["verify", store], temp);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^error store-unreadable: .*s\.db cannot be read by this user: its -shm file exists but is not readable \(a writer may have the store open/);
      expect(readdirSync(temp)).toEqual([]);
    } finally {
      holder.close();
    }
  });

  /**
   * `export` of a fresh store as nobody, held at its second read of s.db in each copy attempt listed (its opens of
   * s.db through fs: 1 the first copy, 2 the first copy's second read, 3 and 4 the next copy's…; SQLite opens
   * natively), while root appends a frame and closes (the -wal goes). Resolves with the run.
   */
  async function exportChangedAt(name: string, attempts: readonly number[]): Promise<CliRun & { temp: string }> {
    const dir = tmp.path(name);
    mkdirSync(dir, { mode: 0o755 });
    const store = join(dir, "s.db");
    await buildStore("sqlite", store, [{ name: "g" }]); // frames 2..11 set a to their seq
    const temp = nobodysTemp();
    const fifo = tmp.path("pause.fifo");
    execFileSync("mkfifo", ["-m", "0666", fifo]);
    const child = spawn(process.execPath, ["--import", PAUSE_HOOK, BIN, "export", store, "--graph", "g"], {
      stdio: ["ignore", "pipe", "pipe"],
      uid: NOBODY,
      gid: NOBODY,
      env: { ...process.env, TMPDIR: temp, GRF_PAUSE_AT: store, GRF_PAUSE_NTH: attempts.map((a) => 2 * a).join(","), GRF_PAUSE_FIFO: fifo },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    for (let i = 0; i < attempts.length; i++) {
      // Opening the FIFO for writing returns once the CLI holds it open: it copied s.db and is about to read it again.
      // A CLI that ends without pausing there fails the test (its reading end opened here, so the open returns).
      const pause = await Promise.race([
        open(fifo, "w"),
        exited.then(() => {
          closeSync(openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
          throw new Error(`the CLI ended before its second read of s.db: ${stderr}`);
        }),
      ]);
      await appendFrames(store, [setFrame(12 + i, "a", 12 + i)]);
      await pause.close();
    }
    return { code: await exited, stdout, stderr, temp };
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
});

describe("a SQLite store on a read-only mount", () => {
  it("a backup of the database file and its -wal (no -shm) is read whole: the frames only the -wal holds too", async () => {
    const mount = mounts.mount("backup", 4096);
    const live = tmp.path("live.db");
    await buildStore("sqlite", live, [{ name: "g" }]);
    // A writer that stays open: its last frames are in the -wal (no checkpoint below 1000 frames) when backed up.
    const writer = openBackend("sqlite", live);
    try {
      const wal = kvStorage<WALFrame>(writer, { codec: walFrameCodec });
      wal.save(walFrameKey(graphWalPrefix("g"), 12), setFrame(12, "a", 12));
      await wal.flush();
      expect(statSync(`${live}-wal`).size).toBeGreaterThan(0);
      for (const suffix of ["", "-wal"]) copyFileSync(`${live}${suffix}`, join(mount.dir, `${basename(live)}${suffix}`));
    } finally {
      writer.close();
    }
    execFileSync("mount", ["-o", "remount,ro", mount.dir]);
    const backup = join(mount.dir, basename(live));
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

  it("a copy that does not fit in TMPDIR is refused, naming the room it needs", async () => {
    const mount = mounts.mount("store", 4096);
    await buildStore("sqlite", join(mount.dir, "s.db"), [{ name: "g" }]);
    execFileSync("mount", ["-o", "remount,ro", mount.dir]);
    const small = mounts.mount("small-tmp", 512); // under the 1 MiB the copy keeps free beyond its bytes
    const r = spawnSync(process.execPath, [BIN, "verify", join(mount.dir, "s.db")], {
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, TMPDIR: small.dir },
    });
    expect(r.status, r.stderr).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error store-unreadable: .*s\.db can only be read from a copy .*does not fit in .*small-tmp .*: set TMPDIR to a directory with room\n$/);
    expect(readdirSync(small.dir)).toEqual([]);
  });
});
