/**
 * The engine's checkpointer thread (design §3.50): one per engine, serving every SQLite store its actors write. For
 * each it holds a connection of its own and runs `PRAGMA wal_checkpoint(PASSIVE)` once the store's WAL holds
 * `frames` frames not yet copied into the database file, so no commit of the writer waits for that copy and its
 * fsync. It reads that count from the wal-index header (the -shm file: mxFrame at byte 16, nBackfill at byte 96),
 * polling a store every 2 ms while its WAL grows and backing off to 64 ms while it does not. PASSIVE never blocks the
 * writer; SQLite restarts the WAL at the writer's next commit once all of it is in the database file. A copy leaves
 * behind the frames the writer committed during it, so once the WAL is past `frames` a poll that finds the writer
 * paused (no new frame since the last) copies whatever waits: the WAL restarts before the writer's bound (§3.55). A
 * reader's snapshot can hold any copy short (frames after it stay, and the WAL cannot restart): the next try then waits
 * for a delay doubling with each copy held short in a row (RETRY_FIRST_MS to RETRY_MAX_MS), a tail's also for the
 * writer to be idle TAIL_IDLE_MS, and a copy at the threshold runs sooner only once another threshold's worth of
 * frames came (review r356 and task 367: a copy, or a no-op, at almost every commit or poll); a copy not held short
 * or a restart of the WAL ends the wait.
 * While its checkpoint runs it says so in the store's control block: the writer's own autocheckpoint is skipped then
 * (SQLite's checkpoint lock), so a writer past its bound waits for that checkpoint's end and checkpoints itself; a
 * poll that finds the writer doing so starts none (side-checkpoint.ts).
 */
import { closeSync, readSync, readlinkSync, statSync } from "node:fs";
import { BroadcastChannel, parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import {
  CTL_CHECKPOINTING,
  CTL_CHECKPOINTS,
  CTL_CLOSE,
  CTL_CLOSED,
  CTL_OWNER,
  CTL_STATE,
  CTL_STARTED,
  CTL_SYNCHRONOUS,
  CTL_WRITER_CHECKPOINT,
  STATE_OPEN,
  STATE_OPENING,
  STATE_PENDING,
  STATE_REFUSED,
  type CheckpointChannelMessage,
  type CheckpointerCommand,
  type CheckpointerReport,
  type OpenCheckpointMessage,
} from "../src/engine/checkpoint-link.js";
import { assertSqliteSideFiles, openSqliteSideFile } from "../src/engine/side-files.js";

interface Data {
  readonly channel: string;
  readonly frames: number;
  readonly generation: number;
}

const { channel: channelName, frames, generation } = workerData as Data;
const MIN_POLL_MS = 2;
const MAX_POLL_MS = 64;
/** After a failed checkpoint, the store's next try waits this long (the writer's bound holds meanwhile). */
const ERROR_BACKOFF_MS = 1000;
/** After a copy a reader's snapshot held short, the next waits this long, doubling with each held short in a row… */
const RETRY_FIRST_MS = 64;
const RETRY_MAX_MS = 8192;
/** …and a tail copy also for the writer to have committed nothing for this long. */
const TAIL_IDLE_MS = 100;

interface Store {
  readonly id: string;
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  readonly ctl: Int32Array;
  db: Database.Database | undefined;
  shm: number | undefined;
  lastFrame: number;
  /** When a poll last found a new frame (the writer's last commit, to the poll). */
  changedAt: number;
  pollMs: number;
  nextAt: number;
  /** The WAL's salts (wal-index header bytes 32–39) as last read: SQLite changes them at each restart of the WAL. */
  salt1: number;
  salt2: number;
  /**
   * The last copy in this WAL generation was held short by a reader's snapshot, as the WAL ended at heldFrame: the
   * next is tried at retryAt (or, at the threshold, once the WAL grew a threshold's worth of frames past heldFrame).
   */
  held: boolean;
  heldFrame: number;
  retryMs: number;
  retryAt: number;
}

const stores = new Map<string, Store>();
const header = Buffer.alloc(128);
let held = false; // tests only (EngineTestAccess): the thread stands still, as a stalled one would
let stallNext = false; // tests only: the next checkpoint stands still inside (CheckpointerCommand "stall")
/** How long a stalled checkpoint stands still unless the test terminates the thread first (a failed test's end). */
const STALL_MS = 60_000;
/** Hand-overs that came while held: taken once the hold is lifted (a stalled thread takes none meanwhile either). */
const deferred: OpenCheckpointMessage[] = [];
let timer: NodeJS.Timeout | undefined;
let stopped = false;

const channel = new BroadcastChannel(channelName);
channel.onmessage = (e: unknown) => {
  const m = (e as { data: CheckpointChannelMessage }).data;
  if (stopped) return;
  if (m.t === "open") {
    if (held) deferred.push(m);
    else open(m);
  } else if (m.t === "close") closeStore(m.id);
};
channel.postMessage({ t: "hello" } satisfies CheckpointChannelMessage);

// Measurement only (bench/lib/meter.ts's split of suite 2's other threads by kind, design §3.53): off unless set.
if (process.env["GRAPHREFLY_THREAD_SPLIT"]) {
  try {
    const tids = new BroadcastChannel("graphrefly-thread-tids");
    tids.postMessage({ kind: "checkpointer", tid: readlinkSync("/proc/thread-self").split("/").pop() });
    tids.close();
  } catch {
    // not Linux: nothing to split by
  }
}

parentPort!.on("message", (m: CheckpointerCommand) => {
  if (m.t === "hold") held = m.on;
  else if (m.t === "stop") stop();
  // Tests only: ends as a crash would, with nothing closed, from a JS point (never inside a native call, as a
  // terminate() from outside could be: that aborts the process, native-gate.ts).
  else if (m.t === "die") process.exit(1);
  else if (m.t === "stall") stallNext = true;
  else if (m.t === "stats") {
    const list = [...stores.values()].map((s) => ({ path: s.path, synchronous: Atomics.load(s.ctl, CTL_SYNCHRONOUS), checkpoints: Atomics.load(s.ctl, CTL_CHECKPOINTS) }));
    parentPort!.postMessage({ t: "stats", stores: list } satisfies CheckpointerReport);
  }
});

function report(store: { path: string }, err: unknown): void {
  const e = err as { message?: unknown; code?: unknown; name?: unknown; details?: { reason?: unknown; file?: unknown } };
  // A side-file refusal (a StorageError) says why and which file; SQLite's and the OS's errors, their code.
  const refusal = e?.name === "StorageError" && typeof e.details?.reason === "string";
  const r: CheckpointerReport = {
    t: "error",
    path: store.path,
    message: typeof e?.message === "string" ? e.message : String(err),
    ...(refusal ? { reason: e.details!.reason as string, ...(typeof e.details!.file === "string" ? { file: e.details!.file } : {}) } : {}),
    ...(!refusal && typeof e?.code === "string" ? { code: e.code } : {}),
  };
  parentPort!.postMessage(r);
}

/** The file at `path` is the writer's (device and inode as its open recorded them). */
function sameFile(path: string, dev: number, ino: number): boolean {
  try {
    const st = statSync(path);
    return st.dev === dev && st.ino === ino;
  } catch {
    return false;
  }
}

function open(m: OpenCheckpointMessage): void {
  const ctl = new Int32Array(m.ctl);
  if (stores.has(m.id)) return; // posted again after our hello
  // Another thread's (one that died, until its actor hands the store on at our hello): not ours to open.
  if (Atomics.compareExchange(ctl, CTL_OWNER, 0, generation) !== 0) return;
  // The actor released it before we got here: nothing to open (and it waits for nothing).
  if (Atomics.compareExchange(ctl, CTL_STATE, STATE_PENDING, STATE_OPENING) !== STATE_PENDING) {
    Atomics.compareExchange(ctl, CTL_OWNER, generation, 0);
    return;
  }
  // The same store written by a new actor (the old one's thread was lost): its old connection goes first.
  for (const other of stores.values()) if (other.path === m.path) closeStore(other.id);
  const store: Store = { id: m.id, path: m.path, dev: m.dev, ino: m.ino, ctl, db: undefined, shm: undefined, lastFrame: -1, changedAt: 0, pollMs: MIN_POLL_MS, nextAt: 0, salt1: -1, salt2: -1, held: false, heldFrame: 0, retryMs: 0, retryAt: 0 };
  try {
    // Only the file the writer holds, and never a new one: checked before and after the open. Its side files are
    // looked at first, as every opener does (src/backend/sqlite-side-files.ts): the writer's actor may have died
    // since its hand-over (its connection closed, no lock held), and a FIFO or a -journal naming a super-journal put
    // there since would be opened, or rolled back, by this connection (review r353 F5).
    if (!sameFile(m.path, m.dev, m.ino)) return refuse(store);
    assertSqliteSideFiles(m.path);
    const db = new Database(m.path, { fileMustExist: true, timeout: 100 });
    store.db = db;
    if (!sameFile(m.path, m.dev, m.ino)) return refuse(store);
    // The store's own durability: a checkpoint that did not fsync the database file before SQLite restarts the WAL
    // would lose acknowledged commits on power loss.
    db.pragma(`synchronous = ${m.synchronous}`);
    Atomics.store(ctl, CTL_SYNCHRONOUS, Number(db.pragma("synchronous", { simple: true })));
    // SQLite keeps -shm beside the database file's real path; a FIFO put there since the look must not block this open.
    store.shm = openSqliteSideFile(m.path, "-shm");
  } catch (err) {
    report(store, err);
    return refuse(store);
  }
  stores.set(m.id, store);
  Atomics.store(ctl, CTL_STATE, STATE_OPEN);
  if (Atomics.load(ctl, CTL_CLOSE) === 1) return closeStore(m.id); // asked closed meanwhile
  schedule(0);
}

/**
 * Nothing checkpoints the store from here: its writer sees the refusal at its next commit and checkpoints itself at
 * SQLite's 1000 frames; an actor waiting for the close is let go.
 */
function refuse(store: Store): void {
  release(store);
  Atomics.store(store.ctl, CTL_STATE, STATE_REFUSED);
  done(store.ctl);
}

function release(store: Store): void {
  try {
    store.db?.close(); // never the last connection: the writer's stays open until after this one closed
  } catch (err) {
    report(store, err);
  }
  store.db = undefined;
  if (store.shm !== undefined) closeSync(store.shm);
  store.shm = undefined;
}

function done(ctl: Int32Array): void {
  Atomics.store(ctl, CTL_CLOSED, 1);
  Atomics.notify(ctl, CTL_CLOSED);
}

function closeStore(id: string): void {
  const store = stores.get(id);
  if (store === undefined) return;
  stores.delete(id);
  release(store);
  done(store.ctl);
}

function schedule(inMs: number): void {
  if (stopped || held) return;
  if (timer !== undefined) clearTimeout(timer);
  timer = setTimeout(tick, inMs);
}

function tick(): void {
  timer = undefined;
  if (held || stopped) return;
  const now = performance.now();
  let next = Number.POSITIVE_INFINITY;
  for (const store of stores.values()) {
    if (Atomics.load(store.ctl, CTL_CLOSE) === 1) {
      closeStore(store.id);
      continue;
    }
    if (store.nextAt <= now) poll(store, now);
    next = Math.min(next, store.nextAt);
  }
  if (next !== Number.POSITIVE_INFINITY) schedule(Math.max(0, next - performance.now()));
}

function poll(store: Store, now: number): void {
  let waiting: number;
  let frame: number;
  try {
    readSync(store.shm!, header, 0, 128, 0);
    frame = header.readUInt32LE(16); // mxFrame: the WAL's last valid frame
    waiting = frame - header.readUInt32LE(96); // less nBackfill: frames not yet in the database file
  } catch (err) {
    report(store, err);
    return refuseStored(store);
  }
  const salt1 = header.readUInt32LE(32);
  const salt2 = header.readUInt32LE(36);
  if (salt1 !== store.salt1 || salt2 !== store.salt2) {
    // The WAL restarted (or this is the first look): a new generation, whose copies no reader held short yet.
    store.salt1 = salt1;
    store.salt2 = salt2;
    store.held = false;
  }
  const paused = frame === store.lastFrame;
  if (!paused) store.changedAt = now;
  store.pollMs = paused ? Math.min(MAX_POLL_MS, store.pollMs * 2) : MIN_POLL_MS;
  store.lastFrame = frame;
  store.nextAt = now + store.pollMs;
  // A checkpoint that ran beside the writer's commits left their frames behind, and SQLite restarts the WAL only once
  // all of it is backfilled: that tail is copied while the writer pauses, else the WAL grows on to the writer's bound.
  // After a copy a reader's snapshot held short, the next waits for the retry's delay, a tail's also for the writer's
  // idleness: while the reader lasts a copy moves nothing (or, readers overlapping, a little for an fsync), and the
  // threshold's frames stay waiting past the snapshot, a no-op at every poll before (review r356, task 367). The
  // threshold's copy goes sooner once another threshold's worth came, so a reader gone leaves the WAL at most that much
  // longer before it is copied (or the retry's delay, 8 s at most, whichever comes first).
  const tail = waiting < frames;
  const due = tail
    ? paused && waiting > 0 && frame >= frames && (!store.held || (now - store.changedAt >= TAIL_IDLE_MS && now >= store.retryAt))
    : !store.held || now >= store.retryAt || frame - store.heldFrame >= frames;
  if (!due) return;
  if (!sameFile(store.path, store.dev, store.ino)) return refuseStored(store); // moved: the writer checkpoints itself (refuse)
  // Said before the writer's word is read (and the writer says its word before it reads this one): either the writer
  // sees this checkpoint running and waits for its end, or this sees the writer past its bound and leaves it the copy.
  const ctl = store.ctl;
  Atomics.store(ctl, CTL_CHECKPOINTING, 1);
  try {
    if (Atomics.load(ctl, CTL_WRITER_CHECKPOINT) !== 0) return; // looked at again at the next poll
    Atomics.add(ctl, CTL_STARTED, 1);
    if (stallNext) {
      stallNext = false;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, STALL_MS);
    }
    const [result] = store.db!.pragma("wal_checkpoint(PASSIVE)") as Array<{ log: number; checkpointed: number }>;
    Atomics.add(ctl, CTL_CHECKPOINTS, 1);
    // Fewer frames copied than the WAL held as the copy began: a reader's snapshot stood before its end (the writer's
    // commits during the copy come after that end). A copy not held short ends the wait.
    const heldShort = result !== undefined && result.checkpointed >= 0 && result.checkpointed < result.log;
    if (heldShort) {
      store.retryMs = store.held ? Math.min(RETRY_MAX_MS, store.retryMs * 2) : RETRY_FIRST_MS;
      store.retryAt = now + store.retryMs;
      store.heldFrame = result.log;
    }
    store.held = heldShort;
  } catch (err) {
    report(store, err);
    store.nextAt = now + ERROR_BACKOFF_MS;
  } finally {
    Atomics.store(ctl, CTL_CHECKPOINTING, 0);
    Atomics.notify(ctl, CTL_CHECKPOINTING);
  }
}

function refuseStored(store: Store): void {
  stores.delete(store.id);
  refuse(store);
}

function stop(): void {
  stopped = true;
  if (timer !== undefined) clearTimeout(timer);
  for (const id of [...stores.keys()]) closeStore(id);
  channel.close();
  parentPort!.postMessage({ t: "stopped" } satisfies CheckpointerReport);
  parentPort!.close();
}

// `held` lifted: the hand-overs that came meanwhile are taken, and polling resumes.
parentPort!.on("message", (m: CheckpointerCommand) => {
  if (m.t !== "hold" || m.on) return;
  for (const d of deferred.splice(0)) if (!stopped) open(d);
  schedule(0);
});
