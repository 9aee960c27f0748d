/**
 * What the store actors and the engine's checkpointer thread share (design §3.50): the link an actor gets in its
 * options, the messages on the engine's checkpoint channel, and the words of a store's control block. No imports:
 * the checkpointer thread's entry loads this alone.
 */

/** An actor's way to the engine's checkpointer: a BroadcastChannel's name, and the thread's liveness word. */
export interface CheckpointerLink {
  readonly channel: string;
  /**
   * Int32 word 0: the running checkpointer thread's generation (1, 2, … one per start), 0 when none runs (the main
   * thread clears it at the thread's exit). A store block's CTL_OWNER names the generation serving it. Word
   * LINK_DELIVERIES counts the messages the actors' threads received on the channel, LINK_CAPPED_WAITS the writers'
   * waits at their bound that gave up at the cap (tests read both); LINK_BOUND_WAIT_MS, set by tests only, replaces
   * that cap (0: the default).
   */
  readonly alive: SharedArrayBuffer;
  /**
   * WAL frames waiting from which the thread checkpoints; while a live thread serves a store, its writer's own
   * autocheckpoint is BOUND_FACTOR times it (else SQLite's 1000).
   */
  readonly frames: number;
}

/** Words of CheckpointerLink.alive after the generation; LINK_WORDS words in all. */
export const LINK_DELIVERIES = 1;
export const LINK_CAPPED_WAITS = 2;
export const LINK_BOUND_WAIT_MS = 3;
export const LINK_WORDS = 4;

/** SQLite's default wal_autocheckpoint: where its own checkpoint starts, and so where the thread's does. */
export const CHECKPOINT_FRAMES = 1000;
/** The writer checkpoints inline (SQLite's autocheckpoint) once the WAL holds this many times the threshold. */
export const BOUND_FACTOR = 4;

/** Words of a store's control block (Int32Array over a SharedArrayBuffer the actor makes). */
export const CTL_CLOSE = 0; // 1: the actor asks the connection closed
export const CTL_CLOSED = 1; // 1: the connection is closed (or never opened): the actor's wait ends
export const CTL_STATE = 2; // STATE_*
export const CTL_CHECKPOINTS = 3; // checkpoints the thread ran for the store (tests and stats)
export const CTL_SYNCHRONOUS = 4; // PRAGMA synchronous as read back on the thread's connection (0..3), -1 before
/**
 * The generation of the thread that took the store (0: none). An actor waits for its close only while that thread
 * lives, and hands a store a dead thread had to the next one (review r319 F1: a restarted thread ignored such a
 * store, whose close then waited the whole CLOSE_WAIT_MS blocking its worker).
 */
export const CTL_OWNER = 5;
/**
 * 1 while the thread's checkpoint of the store runs (it holds SQLite's checkpoint lock, so the writer's own
 * autocheckpoint is skipped): a writer past its bound waits for it to end (notified here), then checkpoints itself.
 */
export const CTL_CHECKPOINTING = 6;
/** 1 while the writer, past its bound, waits for the thread's checkpoint or runs its own: the thread starts none. */
export const CTL_WRITER_CHECKPOINT = 7;
/** Checkpoints the thread started for the store: a writer that gave up waiting for one does not wait for it again. */
export const CTL_STARTED = 8;
export const CTL_WORDS = 9;

export const STATE_PENDING = 0;
export const STATE_OPEN = 1;
/** Released by the actor before the thread opened anything: nothing to close, nothing to wait for. */
export const STATE_RELEASED = 2;
export const STATE_OPENING = 3;
/** The thread refused or ended the store (a file not the writer's, an error): the writer checkpoints at 1000 again. */
export const STATE_REFUSED = 4;

/** Actor → thread. */
export interface OpenCheckpointMessage {
  readonly t: "open";
  readonly id: string;
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  readonly synchronous: string;
  readonly ctl: SharedArrayBuffer;
}

export interface CloseCheckpointMessage {
  readonly t: "close";
  readonly id: string;
}

/** Thread → actors: it listens now (an open posted before it did was lost: posted again). */
export interface HelloCheckpointMessage {
  readonly t: "hello";
}

export type CheckpointChannelMessage = OpenCheckpointMessage | CloseCheckpointMessage | HelloCheckpointMessage;

/** Thread → main thread (its parentPort). */
export type CheckpointerReport =
  /** `code`: SQLite's or the OS's; `reason` and `file`: a refusal of the store's side files (sqlite-side-files.ts). */
  | { readonly t: "error"; readonly path: string; readonly message: string; readonly code?: string; readonly reason?: string; readonly file?: string }
  | { readonly t: "stopped" }
  | { readonly t: "stats"; readonly stores: readonly CheckpointedStore[] };

/** A store the thread serves, as tests read it. */
export interface CheckpointedStore {
  readonly path: string;
  /** PRAGMA synchronous read back on the thread's connection: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA. */
  readonly synchronous: number;
  readonly checkpoints: number;
}

/** Main thread → thread. */
export type CheckpointerCommand =
  | { readonly t: "stop" }
  | { readonly t: "hold"; readonly on: boolean }
  | { readonly t: "stats" }
  /** Tests only: the thread ends itself at once, as a crash would. */
  | { readonly t: "die" }
  /**
   * Tests only: the thread's next checkpoint stands still once it said so in the store's block, blocked at a JS point
   * (so a test may terminate the thread there), as one stalled inside its copy would.
   */
  | { readonly t: "stall" };
