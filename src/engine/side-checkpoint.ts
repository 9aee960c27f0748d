/**
 * A store actor's half of the engine's checkpointer (design §3.50): for a SQLite store it writes, the store is handed
 * to the checkpointer thread, and while a live thread serves it (or is about to) the writer's own autocheckpoint moves
 * from 1000 frames to BOUND_FACTOR × that (the bound, for a checkpointer stalled); it goes back to 1000 once no live
 * thread serves the store (none started yet, the one that took it died, or it refused the store). The writer's
 * checkpoints of a moved file and its close first close the thread's connection (awaited, synchronously: the writer's
 * close must be SQLite's last, which checkpoints and removes the WAL). Costs the actor a few shared-memory reads a
 * commit (no message), and a 4-byte read of the -shm after a commit made while the thread checkpoints the store; a
 * writer past the bound then waits for that checkpoint's end and checkpoints itself (holdBound, task 357).
 */
import { closeSync, readSync } from "node:fs";
import { BroadcastChannel, threadId } from "node:worker_threads";
import { inNative } from "../backend/native-gate.js";
import { absolutePath } from "../backend/real-path.js";
import { setSqliteAutocheckpoint, setSqliteSideRelease, sqliteWriterFileId, type SqliteBackend } from "../backend/sqlite.js";
import { openSqliteSideFile } from "../backend/sqlite-side-files.js";
import type { StorageBackend } from "../backend/types.js";
import {
  BOUND_FACTOR,
  CTL_CHECKPOINTING,
  CTL_CLOSE,
  CTL_CLOSED,
  CTL_OWNER,
  CTL_STARTED,
  CTL_STATE,
  CTL_WORDS,
  CTL_WRITER_CHECKPOINT,
  LINK_BOUND_WAIT_MS,
  LINK_CAPPED_WAITS,
  LINK_DELIVERIES,
  STATE_OPEN,
  STATE_OPENING,
  STATE_PENDING,
  STATE_REFUSED,
  STATE_RELEASED,
  type CheckpointChannelMessage,
  type CheckpointerLink,
} from "./checkpoint-link.js";

/** How long a writer's close waits for the thread to close its connection (it may be inside a checkpoint). */
const CLOSE_WAIT_MS = 10_000;
/** How often a close's wait looks again whether the thread it waits for still lives. */
const LIVENESS_SLICE_MS = 100;
/** SQLite's default autocheckpoint, which the writer takes back once the thread no longer serves the store. */
const SQLITE_AUTOCHECKPOINT = 1000;
/**
 * How long a writer past its bound waits for the thread's checkpoint to end (its copy and the database file's fsync)
 * before it goes on without: a thread stalled inside a checkpoint holds SQLite's checkpoint lock, which no checkpoint
 * of the writer's can take meanwhile either.
 */
const BOUND_WAIT_MS = 2000;

let registrations = 0;
/** The writers' read of a WAL's last frame (all on this thread, one at a time). */
const frameWord = Buffer.alloc(4);

/**
 * The checkpoint channel of each engine (by its name) on this thread, shared by the thread's stores, and what each of
 * them does at a checkpointer thread's hello. A channel per store made every post reach every other store's channel
 * (each received and decoded it): N(N−1)/2 deliveries as N stores opened, N² at a thread's restart (review r328 F1).
 */
interface ThreadChannel {
  readonly channel: BroadcastChannel;
  readonly hello: Set<() => void>;
}
const threadChannels = new Map<string, ThreadChannel>();

function joinChannel(link: CheckpointerLink, onHello: () => void): ThreadChannel {
  let shared = threadChannels.get(link.channel);
  if (shared === undefined) {
    const channel = new BroadcastChannel(link.channel);
    channel.unref();
    const hello = new Set<() => void>();
    const counts = new Int32Array(link.alive);
    channel.onmessage = (e: unknown) => {
      Atomics.add(counts, LINK_DELIVERIES, 1);
      if ((e as { data: CheckpointChannelMessage }).data.t !== "hello") return;
      for (const h of [...hello]) {
        try {
          h();
        } catch {
          // One store's failed hand-over must not skip the thread's other stores (r335 F4): its writer checkpoints itself
          // at SQLite's 1000 frames (post(), in checkpointBeside).
        }
      }
    };
    shared = { channel, hello };
    threadChannels.set(link.channel, shared);
  }
  shared.hello.add(onHello);
  return shared;
}

/** The channel closes with its thread's last store of the engine (an unref'd channel keeps nothing alive meanwhile). */
function leaveChannel(name: string, shared: ThreadChannel, onHello: () => void): void {
  shared.hello.delete(onHello);
  if (shared.hello.size > 0) return;
  shared.channel.close();
  threadChannels.delete(name);
}

/**
 * Hands a writer's SQLite store to the checkpointer. Nothing happens for another backend, a reader, an in-memory
 * database, a store not in WAL mode or exclusive locking, or a file whose identity could not be told.
 */
export function checkpointBeside(backend: StorageBackend, store: { kind: string; path?: string }, link: CheckpointerLink | undefined, synchronous: string): void {
  if (link === undefined || store.kind !== "sqlite" || typeof store.path !== "string") return;
  const sqlite = backend as SqliteBackend;
  if (sqlite.readOnly !== false || !(sqlite.db?.open ?? false)) return;
  const id = sqliteWriterFileId(sqlite);
  if (id === undefined) return;
  const db = sqlite.db;
  const modes = inNative(() => [String(db.pragma("journal_mode", { simple: true })), String(db.pragma("locking_mode", { simple: true }))]);
  if (modes[0]!.toLowerCase() !== "wal" || modes[1]!.toLowerCase() !== "normal") return;
  const ctlBuffer = new SharedArrayBuffer(CTL_WORDS * 4);
  const ctl = new Int32Array(ctlBuffer);
  ctl[4] = -1;
  const alive = new Int32Array(link.alive);
  const open: CheckpointChannelMessage = {
    t: "open",
    id: `${threadId}:${++registrations}:${sqlite.path}`,
    // Absolute, as the writer's store-place record took it: the thread's stats and opens must not follow a chdir.
    path: absolutePath(sqlite.path),
    dev: id.dev,
    ino: id.ino,
    synchronous,
    ctl: ctlBuffer,
  };
  let released = false;
  /** Whether the writer's autocheckpoint is at the bound now (else at SQLite's 1000). */
  let bound = false;
  const limit = BOUND_FACTOR * link.frames;
  /** The -shm, opened the first time the writer looks at its WAL's length (only ever during a thread's checkpoint). */
  let shm: number | undefined;
  /** The thread's checkpoint (its CTL_STARTED count) the writer waited for in vain: it is not waited for again. */
  let gaveUp = -1;
  /** The WAL's last frame (mxFrame, the wal-index header's byte 16), 0 when it cannot be read. */
  const walFrames = (): number => {
    try {
      // Never blocking: a FIFO put there since the writer's open (its connection keeps its own mapping) is refused.
      shm ??= openSqliteSideFile(sqlite.path, "-shm");
      return readSync(shm, frameWord, 0, 4, 16) === 4 ? frameWord.readUInt32LE(0) : 0;
    } catch {
      return 0;
    }
  };
  /**
   * After a commit: SQLite skipped the writer's autocheckpoint if the thread's checkpoint held the lock, and a long one
   * (a large backlog, a slow fsync) lets a writer that does not wait for each fsync (synchronous NORMAL or OFF) commit
   * far past the bound meanwhile (task 357). Past the bound while the thread checkpoints, the writer waits for its end
   * and copies what was committed during it: the WAL restarts at the next commit. The normal path costs two shared
   * words (no thread checkpoint running) or one read of 4 bytes of the -shm (one running, the WAL below the bound).
   */
  const holdBound = (): void => {
    if (Atomics.load(ctl, CTL_CHECKPOINTING) === 0) return;
    const started = Atomics.load(ctl, CTL_STARTED);
    if (started === gaveUp || walFrames() < limit) return;
    // Said before the thread's word is read again (the thread says its own before it reads this one, workers/checkpointer.ts).
    Atomics.store(ctl, CTL_WRITER_CHECKPOINT, 1);
    try {
      if (!waitCheckpointed(ctl, alive)) gaveUp = started;
      inNative(() => db.pragma("wal_checkpoint(PASSIVE)"));
    } catch {
      // SQLite's own autocheckpoint at the bound tries again at the next commit
    } finally {
      Atomics.store(ctl, CTL_WRITER_CHECKPOINT, 0);
    }
  };
  const setBound = (on: boolean): void => {
    bound = on;
    try {
      // Up to what the disk's free space affords the WAL (design §3.60): a small disk keeps its own, lower cap.
      setSqliteAutocheckpoint(sqlite, on ? BOUND_FACTOR * link.frames : SQLITE_AUTOCHECKPOINT);
    } catch {
      // the setting before stays: either checkpoints the WAL, the bound only later
    }
  };
  const release = (): void => {
    if (released) return;
    released = true;
    try {
      // Not yet taken by the thread (pending), or refused (a hand-over this side could not post, which no thread took,
      // or the thread's refusal, which closed its connection): nothing to close, and no thread takes it from here.
      // Else the thread's connection closes first, and this waits for it.
      const untaken = Atomics.compareExchange(ctl, CTL_STATE, STATE_PENDING, STATE_RELEASED) === STATE_PENDING;
      if (!untaken && Atomics.compareExchange(ctl, CTL_STATE, STATE_REFUSED, STATE_RELEASED) !== STATE_REFUSED) {
        Atomics.store(ctl, CTL_CLOSE, 1);
        try {
          channel.postMessage({ t: "close", id: open.id } satisfies CheckpointChannelMessage);
        } catch {
          // The thread sees the block's close word at its next poll of the store (64 ms at most) all the same.
        }
        waitClosed(ctl, alive);
      }
    } finally {
      if (shm !== undefined) {
        try {
          closeSync(shm);
        } catch {
          // nothing held
        }
        shm = undefined;
      }
      leaveChannel(link.channel, shared, onHello);
      // Checkpointed inline as before from here on (a file found moved may come back; this handle then writes on).
      setBound(false);
    }
  };
  // After each commit, for the next: a thread gone for good must not leave the writer at the bound (~32 MiB of WAL a
  // store) until it closes; a new thread taking the store over puts it back.
  const watch = (): void => {
    if (released) return;
    if (served(ctl, alive) !== bound) setBound(!bound);
    if (bound) holdBound();
  };
  setBound(served(ctl, alive));
  // Posted again when a thread says it listens (one that started after this post never heard it); a store the thread
  // before it took and never closed (it died) is handed on: the block is reset, as if never taken.
  const onHello = (): void => {
    if (released) return;
    const owner = Atomics.load(ctl, CTL_OWNER);
    if (owner !== 0 && owner !== Atomics.load(alive, 0)) {
      Atomics.store(ctl, CTL_CLOSE, 0);
      Atomics.store(ctl, CTL_CLOSED, 0);
      Atomics.store(ctl, CTL_CHECKPOINTING, 0); // a dead thread's checkpoint never ends by itself
      Atomics.store(ctl, CTL_STATE, STATE_PENDING);
      Atomics.store(ctl, CTL_OWNER, 0);
    } else if (owner === 0) {
      // A hand-over this side could not post before (refused here, taken by no thread): tried again.
      Atomics.compareExchange(ctl, CTL_STATE, STATE_REFUSED, STATE_PENDING);
    }
    post();
  };
  // A hand-over that could not be posted is taken by no thread: the block says refused, so the writer checkpoints at
  // SQLite's 1000 frames from its next commit (a pending block would keep it at the bound, served by none).
  const post = (): void => {
    try {
      channel.postMessage(open);
    } catch (err) {
      Atomics.compareExchange(ctl, CTL_STATE, STATE_PENDING, STATE_REFUSED);
      throw err;
    }
  };
  const shared = joinChannel(link, onHello);
  const channel = shared.channel;
  setSqliteSideRelease(sqlite, release, watch);
  post();
}

/**
 * A live thread serves the store or is about to take it: one runs, the store is not another's (a dead thread's, until
 * the live one's hello hands it on), and it was neither refused nor closed.
 */
function served(ctl: Int32Array, alive: Int32Array): boolean {
  const live = Atomics.load(alive, 0);
  if (live === 0) return false;
  const owner = Atomics.load(ctl, CTL_OWNER);
  if (owner !== 0 && owner !== live) return false;
  const state = Atomics.load(ctl, CTL_STATE);
  return (state === STATE_PENDING || state === STATE_OPENING || state === STATE_OPEN) && Atomics.load(ctl, CTL_CLOSED) === 0;
}

/**
 * Waits (blocking: the writer is past its bound) until the thread's checkpoint of the store ended, or that thread is
 * gone, or BOUND_WAIT_MS passed (false: a thread stalled in its checkpoint; counted in LINK_CAPPED_WAITS, so a test
 * can tell a wait the thread's death ended from one the cap ended; a test may set a longer cap, LINK_BOUND_WAIT_MS).
 */
function waitCheckpointed(ctl: Int32Array, alive: Int32Array): boolean {
  const deadline = Date.now() + (Atomics.load(alive, LINK_BOUND_WAIT_MS) || BOUND_WAIT_MS);
  while (Atomics.load(ctl, CTL_CHECKPOINTING) !== 0) {
    const owner = Atomics.load(ctl, CTL_OWNER);
    const left = deadline - Date.now();
    if (owner === 0 || Atomics.load(alive, 0) !== owner) return true;
    if (left <= 0) {
      Atomics.add(alive, LINK_CAPPED_WAITS, 1);
      return false;
    }
    Atomics.wait(ctl, CTL_CHECKPOINTING, 1, Math.min(LIVENESS_SLICE_MS, left));
  }
  return true;
}

/**
 * Waits (blocking, as the writer's close must) until the thread that took the store closed its connection, or that
 * thread is gone (its generation no longer the live one: a dead thread never answers), or CLOSE_WAIT_MS passed.
 */
function waitClosed(ctl: Int32Array, alive: Int32Array): void {
  const deadline = Date.now() + CLOSE_WAIT_MS;
  while (Atomics.load(ctl, CTL_CLOSED) === 0) {
    const owner = Atomics.load(ctl, CTL_OWNER);
    const left = deadline - Date.now();
    if (owner === 0 || Atomics.load(alive, 0) !== owner || left <= 0) return;
    Atomics.wait(ctl, CTL_CLOSED, 0, Math.min(LIVENESS_SLICE_MS, left));
  }
}
