/**
 * The one reader of stored graphs (docs/design.md §3.16): restore, fold, compaction and every CLI command read a
 * graph's baseline and WAL through this module, so they cannot disagree about what a store holds.
 * - Baseline: a value checkpoint record under the graph name, of this graph, in a format this build reads.
 * - Frames: the graph's own keys (`<name>/wal/` + 20 digits), in seq order. Above the baseline they must continue
 *   it without a hole (`frame_seq` baseline + 1, + 2, …): a missing seq is a lost change (RestoreError `wal-gap`).
 * - Torn frames (unreadable, checksum mismatch, key/frame_seq disagreement): the torn-write policy decides.
 * - One point in time: frames above a baseline never change, and only a compaction deletes them, after writing
 *   the new baseline. So the baseline is read again at the end (and as soon as a listed frame vanished or a hole
 *   appears): if it moved, the read starts over, a bounded number of times (then StorageError `store-busy`).
 *   A source that can hold a point in time (a read-only handle's readConsistent) runs the whole read inside it;
 *   two handles hold two points in time, the WAL's taken first (see `tierSource` and `scanOnce`); a hole met inside
 *   one is read again without it (`scan`).
 * Layer 4 (graph).
 */
import { isRecord } from "../base/records.js";
import type { StorageBackend } from "../backend/types.js";
import { parseJsonBytes } from "../codec/json.js";
import { CodecError, RestoreError, StorageError, asStorageError } from "../errors.js";
import type { KvStorageTier, SnapshotStorageTier } from "../tier/types.js";
import { assertStorableJson } from "../codec/strict.js";
import { checkStoredWalFrame } from "../wal/checksum.js";
import { parseWalFrame, type WALFrame } from "../wal/frame.js";
import { assertGraphName, graphWalPrefix, parseWalFrameKey, walFrameKey } from "../wal/keys.js";
import { isSlice } from "./apply.js";
import { jsonSize } from "./size-estimate.js";
import type { GraphCheckpointRecord, TornWriteHandler, TornWriteInfo } from "./storage-types.js";
import { SNAPSHOT_VERSION, type JsonValue } from "../graph/types.js";

/** Reads of one stored graph that start over because its baseline moved, before giving up with `store-busy`. */
export const STORED_GRAPH_READ_ATTEMPTS = 10;

// ---- baseline ----------------------------------------------------------------------------------------------------

/** Why a stored value is not a usable baseline. `unknown-version` maps to RestoreError `codec-mismatch`. */
export type BaselineProblem = "missing" | "invalid" | "spec-only" | "other-graph" | "unknown-version";

export type BaselineCheck =
  | { readonly ok: true; readonly record: GraphCheckpointRecord }
  | { readonly ok: false; readonly problem: BaselineProblem; readonly reason: string };

/**
 * The checks every reader applies to a baseline: a mode "full" value record (not a spec projection) of graph
 * `name` (unchecked when undefined), a non-negative seq, format_version and snapshot version this build reads
 * (a newer writer's record is never folded and rewritten as ours), a non-negative integer timestamp_ns (a number, or
 * a bigint), and a well-formed snapshot of the graph the record names.
 */
export function checkBaseline(value: unknown, name: string | undefined): BaselineCheck {
  const no = (problem: BaselineProblem, reason: string): BaselineCheck => ({ ok: false, problem, reason });
  if (value === undefined || value === null) return no("missing", "nothing is stored under the graph name");
  if (!isRecord(value)) return no("invalid", "the stored value is not a checkpoint record (a JSON object)");
  if (value.mode !== "full") return no("invalid", `mode must be "full", got ${JSON.stringify(value.mode) ?? "nothing"}`);
  if (value.lifecycle === "spec") return no("spec-only", "it is a spec projection (topology only), not a value baseline");
  if (name !== undefined && value.name !== name) {
    return no("other-graph", `it belongs to graph ${JSON.stringify(value.name) ?? "nothing"}`);
  }
  if (!Number.isSafeInteger(value.seq) || (value.seq as number) < 0) return no("invalid", "seq must be a non-negative integer");
  const snap = value.snapshot;
  // The version first: a newer format may shape its snapshot differently.
  if (value.format_version !== SNAPSHOT_VERSION || (isRecord(snap) && snap.version !== SNAPSHOT_VERSION)) {
    const found = isRecord(snap) ? ` / snapshot version ${String(snap.version)}` : "";
    return no("unknown-version", `format_version ${String(value.format_version)}${found}; this build reads ${SNAPSHOT_VERSION}`);
  }
  // An exact u64 (the Rust reference's nanoseconds) decodes as a bigint (docs/protocol.md §2.6); readers that do
  // arithmetic with it take Number() of it, as of a frame's frame_t_ns.
  const ts = value.timestamp_ns;
  if (!((typeof ts === "number" && Number.isInteger(ts) && ts >= 0) || (typeof ts === "bigint" && ts >= 0n))) {
    return no("invalid", `timestamp_ns must be a non-negative integer, got ${describeValue(ts)}`);
  }
  if (!isRecord(snap) || !isRecord(snap.nodes) || !Array.isArray(snap.subgraphs)) return no("invalid", "its snapshot is malformed");
  if (!snap.subgraphs.every((m) => typeof m === "string") || !Object.values(snap.nodes).every(isSlice)) {
    return no("invalid", "its snapshot has malformed nodes or subgraphs");
  }
  // A record is its graph's only if its snapshot is too (docs/protocol.md §7.1: the snapshot's name is the graph's):
  // else another graph's state would be applied, folded or followed under this name.
  if (snap.name !== value.name) return no("other-graph", `its snapshot is of graph ${JSON.stringify(snap.name) ?? "(no name)"}`);
  return { ok: true, record: value as unknown as GraphCheckpointRecord };
}

/** A stored field's value in a message: short, and never a throw (JSON.stringify throws on a nested bigint). */
function describeValue(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (v === null || typeof v === "number" || typeof v === "boolean") return String(v);
  if (v === undefined) return "nothing";
  return typeof v === "string" ? "a string" : Array.isArray(v) ? "an array" : "an object";
}

/** The typed error for a baseline that failed `checkBaseline`. */
export function baselineError(name: string, check: Extract<BaselineCheck, { ok: false }>): RestoreError {
  if (check.problem === "unknown-version") {
    return new RestoreError("codec-mismatch", `baseline of graph "${name}" has ${check.reason}`, {
      graph: name,
      expected: SNAPSHOT_VERSION,
    });
  }
  return new RestoreError("baseline-missing", `no usable baseline for graph "${name}": ${check.reason}`, {
    graph: name,
    problem: check.problem,
  });
}

// ---- where a graph is read from ------------------------------------------------------------------------------------

/** A stored value as read: absent (missing or 0 bytes), bytes that do not decode, or the decoded value. */
export type StoredValue =
  | { readonly state: "absent" }
  | { readonly state: "undecodable"; readonly detail: string; readonly raw?: Uint8Array }
  | { readonly state: "value"; readonly value: unknown; readonly raw?: Uint8Array };

export interface StoredGraphSource {
  /** Names the store in messages. */
  readonly label: string;
  /**
   * At most this many frames are read at once (an engine proxy sends one tick's loads as one message); 1 reads one
   * at a time. Readers that chunk with `readFrameChunks` read fewer when frames are big (FRAME_CHUNK_BYTES).
   */
  readonly readAhead: number;
  readBaseline(name: string): Promise<StoredValue>;
  readFrame(key: string): Promise<StoredValue>;
  /** Several frames at once, in order (a backend's `readMany`: one statement); readers use it when present. */
  readFrames?(keys: readonly string[]): Promise<StoredValue[]>;
  /**
   * Each frame's stored bytes (undefined: absent), its value not read (a backend's `sizes`: SQLite's length(v), a
   * file's stat): readers of many frames size their chunks by them (FRAME_CHUNK_BYTES). Absent: by the frames
   * read last.
   */
  frameSizes?(keys: readonly string[]): Promise<ReadonlyArray<number | undefined>>;
  /**
   * The baseline's stored bytes, not parsed (a backend source): a reader checks that the baseline did not move by
   * comparing them, instead of parsing it again (~250 ms for a baseline of 100,000 nodes).
   */
  readBaselineRaw?(name: string): Promise<Uint8Array | undefined>;
  /** Keys starting with `prefix`, any order. StorageError `backend-no-list-support` when the store cannot list. */
  list(prefix: string): Promise<readonly string[]>;
  /**
   * Runs `fn` with the source's reads at one point in time of the store (a read-only handle's readConsistent): a
   * read inside it never sees its baseline move, so it never starts over and cannot starve beside a writer that
   * compacts all the time. Absent: reads are each at their own time, and a moved baseline starts the read over.
   */
  consistent?<T>(fn: () => Promise<T>): Promise<T>;
  /** A backend's `settleBatches` (a file store's batches show one key at a time): see `tailWaveGrew`. */
  settle?(): Promise<void>;
}

/**
 * Frames read at most at once through tiers: one `loadMany` (an inline tier's one readMany; an engine tier's one
 * message), else as many concurrent loads (engine proxies coalesce the loads of one tick). Fewer for big frames.
 */
const TIER_READ_AHEAD = 512;

/** A graph read through a snapshot tier and a WAL kv tier (inline tiers or engine proxies). */
export function tierSource(snapshot: SnapshotStorageTier<GraphCheckpointRecord>, wal: KvStorageTier<WALFrame>): StoredGraphSource {
  const label = `tiers "${snapshot.name}" / "${wal.name}"`;
  const frameRead = (key: string): string => `reading WAL frame "${key}" from ${label}`;
  const loadMany = typeof wal.loadMany === "function" ? wal.loadMany.bind(wal) : undefined;
  const sizes = typeof wal.sizes === "function" ? wal.sizes.bind(wal) : undefined;
  const snapshotConsistent = typeof snapshot.readConsistent === "function" ? snapshot.readConsistent.bind(snapshot) : undefined;
  const walConsistent = typeof wal.readConsistent === "function" ? wal.readConsistent.bind(wal) : undefined;
  // A read-only file store's tier (inline or an engine's): its writer's batches show one frame at a time. The
  // baseline is one put (renamed whole), so the WAL's store is the one whose batches a read may catch in part.
  const settle = typeof wal.settleBatches === "function" ? wal.settleBatches.bind(wal) : undefined;
  return {
    label,
    readAhead: TIER_READ_AHEAD,
    ...(settle && { settle: () => guarded(settle, `waiting for batches under way in ${label}`) }),
    // Both tiers: on one backend the calls nest into one point in time. On two (the documented reader: two
    // read-only handles of one file, or two stores) each holds its own, and the WAL's must be the older: a baseline
    // newer than the listing only covers more of the listed frames, while an older one sees a compaction's deleted
    // frames as a hole it cannot explain, and re-reading it at its frozen time never shows it moving (a false
    // `wal-gap`). So the WAL's is entered first (SQLite takes it at entry), and the read lists the WAL before it
    // reads the baseline (PostgreSQL takes it at the first statement): docs/design.md §3.16.
    ...(snapshotConsistent &&
      walConsistent && { consistent: <T>(fn: () => Promise<T>) => walConsistent(() => snapshotConsistent(fn)) }),
    readBaseline: (name) => loaded(() => snapshot.load(name), `reading the baseline "${name}" from ${label}`),
    readFrame: (key) => loaded(() => wal.load(key), frameRead(key)),
    ...(sizes && { frameSizes: (keys: readonly string[]) => guarded(() => sizes(keys), `reading the sizes of WAL frames from ${label}`) }),
    // Inline tiers read a chunk with one readMany, not a statement (a PostgreSQL round trip) per frame. Each frame
    // still settles as its own load: one that does not decode is that frame's, not the chunk's.
    ...(loadMany && {
      readFrames(keys: readonly string[]): Promise<StoredValue[]> {
        let loads: Array<Promise<WALFrame | undefined>>;
        try {
          loads = loadMany(keys);
        } catch (err) {
          return Promise.reject(asStorageError(err, `${frameRead(keys[0] ?? "")} failed`));
        }
        return Promise.all(loads.map((load, i) => loaded(() => load, frameRead(keys[i]!))));
      },
    }),
    async list(prefix) {
      const keys = await guarded(() => wal.list(prefix), `listing "${prefix}" in ${label}`);
      // An empty listing may be a backend that cannot list: the lazy scan says so (it throws on first use).
      if (keys.length === 0 && typeof wal.listByPrefix === "function") await assertListable(wal, prefix);
      return keys;
    },
  };
}

/**
 * Frames a backend source reads at most per `readMany` (one range scan on SQLite: ~2 µs a frame against ~5 µs by
 * key); fewer for big frames (FRAME_CHUNK_BYTES), so memory stays flat.
 */
const BACKEND_READ_AHEAD = 256;

/** A graph read straight from a backend's bytes (compaction in the store's actor, the CLI). */
export function backendSource(backend: StorageBackend): StoredGraphSource {
  const label = `backend "${backend.name}"`;
  const read = async (key: string, what: string): Promise<StoredValue> =>
    storedBytes(await guarded(() => backend.read(key), `reading ${what} "${key}" from ${label}`));
  const readMany = backend.readMany?.bind(backend);
  const sizes = backend.sizes?.bind(backend);
  const consistent = backend.readOnly === true ? backend.readConsistent?.bind(backend) : undefined;
  // A writer's handle (compaction in its actor) writes its batches synchronously: it never reads one half done.
  const settle = backend.readOnly === true ? backend.settleBatches?.bind(backend) : undefined;
  return {
    label,
    ...(consistent && { consistent }),
    ...(settle && { settle: () => guarded(settle, `waiting for batches under way in ${label}`) }),
    // Without readMany, one frame at a time: memory stays flat and the read stops right at a bad frame.
    readAhead: readMany ? BACKEND_READ_AHEAD : 1,
    readBaseline: (name) => read(name, "the baseline"),
    readBaselineRaw: (name) => guarded(() => backend.read(name), `reading the baseline "${name}" from ${label}`),
    readFrame: (key) => read(key, "WAL frame"),
    ...(sizes && {
      frameSizes: (keys: readonly string[]) => guarded(() => sizes(keys), `reading the sizes of WAL frames from ${label}`),
    }),
    ...(readMany && {
      async readFrames(keys: readonly string[]): Promise<StoredValue[]> {
        const what = `reading WAL frames "${keys[0]}" to "${keys[keys.length - 1]}" from ${label}`;
        const raws = await guarded(() => readMany(keys), what);
        return raws.map(storedBytes);
      },
    }),
    list(prefix) {
      const list = backend.list?.bind(backend);
      if (list === undefined) {
        return Promise.reject(
          new StorageError("backend-no-list-support", `${label} cannot list keys; reading a stored graph needs its WAL listed`, {
            backend: backend.name,
          }),
        );
      }
      return guarded(() => list(prefix), `listing "${prefix}" in ${label}`);
    },
  };
}

/** Stored bytes as read: absent when missing or empty, else parsed JSON or why it is not. */
function storedBytes(raw: Uint8Array | undefined): StoredValue {
  if (raw === undefined || raw.byteLength === 0) return { state: "absent" };
  try {
    return { state: "value", value: parseJsonBytes(raw), raw };
  } catch (err) {
    return { state: "undecodable", detail: messageOf(err), raw };
  }
}

async function loaded(load: () => Promise<unknown>, what: string): Promise<StoredValue> {
  try {
    const value = await load();
    return value === undefined ? { state: "absent" } : { state: "value", value };
  } catch (err) {
    if (err instanceof CodecError) return { state: "undecodable", detail: err.message };
    throw asStorageError(err, `${what} failed`);
  }
}

/**
 * A read refused because the source's point in time ended inside it (a PostgreSQL readConsistent's transaction lost):
 * never a finding, since the reads after it would be of another state of the store.
 */
function pointInTimeLost(err: unknown): boolean {
  return err instanceof StorageError && err.details.reason === "point-in-time-lost";
}

async function guarded<T>(run: () => T | Promise<T>, what: string): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw asStorageError(err, `${what} failed`);
  }
}

/** Throws StorageError `backend-no-list-support` when the tier's backend cannot list (its list() may say []). */
async function assertListable(wal: KvStorageTier<WALFrame>, prefix: string): Promise<void> {
  const scan = wal.listByPrefix(prefix)[Symbol.asyncIterator]();
  try {
    await scan.next();
  } catch (err) {
    if (err instanceof StorageError && err.code === "backend-no-list-support") throw err;
    if (pointInTimeLost(err)) throw err;
    // Any other failure here is about a value, not the listing: the store can list.
  } finally {
    await scan.return?.().catch(() => undefined);
  }
}

// ---- frames ------------------------------------------------------------------------------------------------------

export interface FrameKey {
  readonly key: string;
  /** The frame_seq its key encodes. */
  readonly seq: number;
}

/** A stored frame as read: decoded (checksum checked), or why it could not be. */
export type FrameRead =
  | (FrameKey & { readonly ok: true; readonly frame: WALFrame; readonly checksumOk: boolean; readonly raw?: Uint8Array })
  | (FrameKey & {
      readonly ok: false;
      readonly absent: boolean;
      readonly detail: string;
      readonly raw?: Uint8Array;
      /**
       * What the key holds instead, when it is a record of another kind (another graph's baseline, an array): a key
       * collision, not a torn write (docs/design.md §3.27). Readers stop with StorageError `corrupt-store` rather than
       * skip it as a torn tail, and compaction never deletes it.
       */
      readonly foreign?: string;
    });

/** The graph's frame keys (exactly `<name>/wal/` + 20 digits: no sibling graph's frames), ascending by seq. */
export async function listFrameKeys(source: StoredGraphSource, name: string): Promise<FrameKey[]> {
  const prefix = graphWalPrefix(name);
  const out: FrameKey[] = [];
  for (const key of await source.list(`${prefix}/`)) {
    const seq = parseWalFrameKey(prefix, key);
    if (seq !== undefined) out.push({ key, seq });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

export async function readFrame(source: StoredGraphSource, at: FrameKey): Promise<FrameRead> {
  return withForeign(source, frameRead(at, await source.readFrame(at.key)));
}

// ---- chunks of frames bounded in bytes ---------------------------------------------------------------------------

/**
 * Stored bytes of frames one chunk of a reader holds at most (docs/design.md §3.26), a frame bigger than this read
 * alone. A reader holds at most two chunks, the one it screens and the one read ahead: ~32 MiB of frames. A chunk's
 * count was fixed (512 through tiers, 256 from a backend): frames of 1 MB made a reader hold ~1 GB at once, and an
 * engine tier's chunk crossed as one message of 512 MB. Where the source tells frames' sizes (`frameSizes`) the bound
 * holds whatever the sizes' order; else chunks are sized by the frames read last (`ChunkPlan`).
 */
export const FRAME_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * Keys whose sizes a reader asks for at once (`frameSizes`), per chunk's worth of keys (`readAhead`): many chunks of
 * big frames take one question, and a read of small frames asks once per SIZE_WINDOW chunks.
 */
const SIZE_WINDOW = 8;

/**
 * How many frames each chunk has where the source tells frames' sizes before they are read: as many as fit
 * FRAME_CHUNK_BYTES (at least one), never above `cap`. The sizes of SIZE_WINDOW chunks' keys are asked at once.
 * Undefined when the source could not tell: the reader then falls back to its ChunkPlan for the rest.
 */
class SizedChunks {
  private sizes: ReadonlyArray<number | undefined> = [];
  /** The index in `keys` of `sizes[0]`. */
  private first = 0;
  private failed = false;

  constructor(
    private readonly frameSizes: NonNullable<StoredGraphSource["frameSizes"]>,
    private readonly keys: readonly FrameKey[],
    private readonly cap: number,
  ) {}

  async next(from: number): Promise<number | undefined> {
    if (this.failed) return undefined;
    const end = Math.min(this.keys.length, from + this.cap);
    if (end - from <= 1) return end - from; // one frame is read alone anyway
    if (from < this.first || end > this.first + this.sizes.length) {
      const keys = this.keys.slice(from, from + SIZE_WINDOW * this.cap).map((k) => k.key);
      try {
        const sizes = await this.frameSizes(keys);
        if (sizes.length !== keys.length) throw new Error("a size per key");
        this.sizes = sizes;
        this.first = from;
      } catch (err) {
        if (pointInTimeLost(err)) throw err;
        // The frames' own reads say what is wrong, if anything is; their chunks are sized as without sizes.
        this.failed = true;
        return undefined;
      }
    }
    let n = 0;
    let bytes = 0;
    while (from + n < end) {
      const size = this.sizes[from + n - this.first] ?? 0;
      if (n > 0 && bytes + size > FRAME_CHUNK_BYTES) break;
      bytes += size;
      n++;
    }
    return n;
  }
}

/** Frames of a reader's first chunk, read before any frame's size is known. */
const PROBE_FRAMES = 4;

/** After the first, a chunk has at most this many times as many frames as the last one read in full. */
const CHUNK_GROWTH = 4;

/**
 * How many frames a source's next chunk has. Frames' sizes are known only once read: the first chunk is a few frames,
 * and each next one is sized from the largest frame of the last, up to FRAME_CHUNK_BYTES and never above the
 * source's `readAhead`. Small frames go `readAhead` at a time from the second chunk on, so a read of small frames
 * pays one round trip more (design §3.26). A chunk that big frames shrank grows back at most CHUNK_GROWTH-fold a
 * chunk: big frames among small ones keep it small for a while.
 */
class ChunkPlan {
  private planned = PROBE_FRAMES;
  private probed = false;

  constructor(private readonly cap: number) {}

  next(): number {
    return Math.min(this.planned, this.cap);
  }

  /** A chunk of `asked` frames came back as `reads`. */
  measured(asked: number, reads: readonly FrameRead[]): void {
    let largest = 0;
    for (const read of reads) largest = Math.max(largest, frameBytes(read));
    const fits = Math.max(1, Math.floor(FRAME_CHUNK_BYTES / Math.max(1, largest)));
    // A short chunk (the last keys of a read, a follower's few new frames) is no evidence for more frames.
    const grown = !this.probed ? this.cap : asked >= this.planned ? asked * CHUNK_GROWTH : this.planned;
    this.probed = true;
    this.planned = Math.min(this.cap, fits, grown);
  }
}

/** Per source: a follower's reader keeps what its polls learned about frame sizes. */
const plans = new WeakMap<StoredGraphSource, ChunkPlan>();

/**
 * A frame's stored bytes: what a backend source read, else (a tier hands over decoded frames) its size as JSON: a
 * walk of the frame, cheaper than the checksum's encoding of it that every read does anyway.
 */
function frameBytes(read: FrameRead): number {
  if (read.raw !== undefined) return read.raw.byteLength;
  return read.ok ? jsonSize(read.frame as unknown as JsonValue) : 0;
}

/**
 * Frames `at` in order, a chunk at a time, each chunk bounded as FRAME_CHUNK_BYTES says (the reader of a stored
 * graph, followers, attach's reclaim). `readAhead`: the next chunk is asked for before this one is handed over, so
 * an engine store's actor reads it while the caller screens (never past a bad frame on a source reading one frame
 * at a time). Leaving the loop early (break, throw) drops a chunk read ahead, its failure with it.
 */
export async function* readFrameChunks(
  source: StoredGraphSource,
  at: readonly FrameKey[],
  opts: { readonly readAhead?: boolean } = {},
): AsyncGenerator<FrameRead[], void, undefined> {
  const cap = Math.max(1, source.readAhead);
  const plan = plans.get(source) ?? new ChunkPlan(cap);
  plans.set(source, plan);
  const frameSizes = source.frameSizes?.bind(source);
  const sized = frameSizes !== undefined && cap > 1 ? new SizedChunks(frameSizes, at, cap) : undefined;
  const readAhead = opts.readAhead === true && source.readAhead > 1;
  let from = 0;
  // One request at a time: the next starts once the one before it was handed over (below), so `from` is settled.
  const request = async (): Promise<FrameRead[]> => {
    const count = await sized?.next(from);
    const keys = at.slice(from, from + (count ?? plan.next()));
    from += keys.length;
    const reads = await readFrames(source, keys);
    if (count === undefined) plan.measured(keys.length, reads);
    return reads;
  };
  let ahead: Promise<FrameRead[]> | undefined;
  while (from < at.length || ahead !== undefined) {
    const reads = await (ahead ?? request());
    ahead = undefined;
    if (readAhead && from < at.length) {
      ahead = request();
      // Its failure counts once awaited; if the caller stops first, it is nobody's.
      ahead.catch(() => undefined);
      // Let the request leave (an engine proxy posts a turn's loads when the turn ends) before screening starts.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    yield reads;
  }
}

/** Frames `at` in order: through the source's `readFrames` when it has one, else concurrently by key. */
export async function readFrames(source: StoredGraphSource, at: readonly FrameKey[]): Promise<FrameRead[]> {
  if (source.readFrames === undefined) return Promise.all(at.map((k) => readFrame(source, k)));
  const stored = await source.readFrames(at.map((k) => k.key));
  return Promise.all(at.map((k, i) => withForeign(source, frameRead(k, stored[i]!))));
}

/**
 * A frame that does not decode, read again as a record (the snapshot side's reading, a JSON codec): another graph's
 * baseline or an array there is a record written under this key by mistake, which a torn-write policy must not skip
 * as a crash's leftover. Only frames that failed are read again.
 */
async function withForeign(source: StoredGraphSource, read: FrameRead): Promise<FrameRead> {
  if (read.ok || read.absent) return read;
  let stored: StoredValue;
  try {
    stored = await source.readBaseline(read.key);
  } catch (err) {
    if (pointInTimeLost(err)) throw err;
    return read; // a second reading that fails leaves the frame as the first found it (torn)
  }
  if (stored.state !== "value") return read;
  const v = stored.value;
  const foreign = Array.isArray(v)
    ? "an array (an append-log bucket's or a kv tier's value)"
    : isRecord(v) && "mode" in v && "snapshot" in v
      ? `the baseline of graph ${JSON.stringify(v.name) ?? "(no name)"}`
      : undefined;
  return foreign === undefined ? read : { ...read, detail: `it holds ${foreign}, not a WAL frame`, foreign };
}

/** StorageError `corrupt-store` for a frame key holding a record of another kind (`FrameRead.foreign`). */
export function foreignFrameError(read: FrameRead & { ok: false }): StorageError {
  const found = read.foreign ?? "another record";
  return new StorageError(
    "corrupt-store",
    `WAL frame key ${JSON.stringify(read.key)} holds ${found}, not a frame: a record of another kind was written under ` +
      "this key (a graph named like it, say), so the frame stored there is lost; nothing was changed",
    { key: read.key, found, seq: read.seq },
  );
}

function frameRead(at: FrameKey, stored: StoredValue): FrameRead {
  if (stored.state === "absent") return { ...at, ok: false, absent: true, detail: "absent when read (deleted since it was listed, or stored as 0 bytes)" };
  if (stored.state === "undecodable") return { ...at, ok: false, absent: false, detail: stored.detail, raw: stored.raw };
  try {
    // A tier with the frame codec hands back a parsed frame (parsing again is idempotent); a JSON tier the raw object.
    const frame = parseWalFrame(stored.value);
    // Content no store can hold (another writer's lone surrogate, nesting past MAX_JSON_DEPTH) is a frame restore
    // cannot replay: undecodable, so verify, restore, export and compaction all see the same torn frame.
    const checked = checkStoredWalFrame(frame);
    if (checked instanceof CodecError) return { ...at, ok: false, absent: false, detail: unstorable(checked), raw: stored.raw };
    return { ...at, ok: true, frame, checksumOk: checked, raw: stored.raw };
  } catch (err) {
    return { ...at, ok: false, absent: false, detail: messageOf(err), raw: stored.raw };
  }
}

/** What makes a frame torn (undefined: it is good). `verify: false` trusts checksums. */
export function frameProblem(read: FrameRead, verify = true): Pick<TornWriteInfo, "reason" | "detail"> | undefined {
  if (!read.ok) return { reason: "decode-failed", detail: read.detail };
  if (read.frame.frame_seq !== read.seq) {
    return { reason: "decode-failed", detail: `frame_seq ${read.frame.frame_seq} does not match its key` };
  }
  if (verify && !read.checksumOk) return { reason: "checksum-mismatch", detail: "checksum does not match the frame body" };
  return undefined;
}

/** What happens to a torn frame: the handler's choice, else skip at the tail and abort mid-stream. */
export function tornWritePolicy(info: TornWriteInfo, onTornWrite: TornWriteHandler | undefined): "skip" | "abort" {
  const chosen = onTornWrite?.(info);
  return chosen === "skip" || chosen === "abort" ? chosen : info.isTail ? "skip" : "abort";
}

export function tornWriteError(info: TornWriteInfo): RestoreError {
  return new RestoreError(
    "torn-write-mid-stream",
    `torn write ${info.isTail ? "at the tail" : "mid-stream"} at frame_seq=${info.frame_seq} (${info.reason}: ${info.detail ?? ""})`,
    { frame_seq: info.frame_seq, key: info.key, reason: info.reason, isTail: info.isTail },
  );
}

export interface SeqGap {
  readonly from: number;
  readonly to: number;
}

export function gapError(name: string, baselineSeq: number, gap: SeqGap): RestoreError {
  const seqs = gap.from === gap.to ? `frame ${gap.from} is` : `frames ${gap.from}..${gap.to} are`;
  return new RestoreError(
    "wal-gap",
    `graph "${name}": ${seqs} missing above the baseline (seq ${baselineSeq}) while later frames are stored; the changes they held are lost`,
    { graph: name, baselineSeq, from: gap.from, to: gap.to },
  );
}

/**
 * The rules for the frames above a baseline, applied in ascending seq order: they continue the baseline without
 * a hole, and torn ones go through the torn-write policy (`tailSeq`: the last frame above the baseline before any
 * target filter, so a bad frame just below a target is mid-stream, docs/graph-model.md §6 item 20).
 */
export class FrameChain {
  private expected: number | undefined;

  constructor(
    baselineSeq: number | undefined,
    private readonly tailSeq: number,
    private readonly verify: boolean,
    private readonly onTornWrite: TornWriteHandler | undefined,
  ) {
    this.expected = baselineSeq === undefined ? undefined : baselineSeq + 1;
  }

  /** The seqs missing right before `seq`, if any; the chain then continues after `seq`. */
  gapBefore(seq: number): SeqGap | undefined {
    const from = this.expected;
    this.expected = seq + 1;
    return from !== undefined && seq > from ? { from, to: seq - 1 } : undefined;
  }

  /** A good frame, or the torn frame's description and what the policy decided for it. */
  screen(read: FrameRead): { frame: WALFrame } | { torn: TornWriteInfo; decision: "skip" | "abort" } {
    // Not a torn write: skipping it as a tail would drop an acknowledged frame without a word.
    if (!read.ok && read.foreign !== undefined) throw foreignFrameError(read);
    const problem = frameProblem(read, this.verify);
    if (problem === undefined && read.ok) return { frame: read.frame };
    const torn: TornWriteInfo = { frame_seq: read.seq, key: read.key, ...problem!, isTail: read.seq === this.tailSeq };
    return { torn, decision: tornWritePolicy(torn, this.onTornWrite) };
  }
}

// ---- reading a whole graph -----------------------------------------------------------------------------------------

/** The baseline as read: its check, stored size (when the source reads bytes) and a mark to see it move. */
export interface BaselineRead {
  readonly check: BaselineCheck;
  readonly bytes: number | undefined;
  /** What was stored, when the source reads bytes. */
  readonly raw?: Uint8Array;
  readonly mark: string;
}

export async function readBaseline(source: StoredGraphSource, name: string): Promise<BaselineRead> {
  const base = await readBaselineMark(source, name);
  if (!base.check.ok) return base;
  // The value rule restore's graph applies to every value, and compaction's encoder to the record: a record another
  // writer stored with a lone surrogate or nesting past MAX_JSON_DEPTH is no usable baseline (one walk of the record,
  // here only: `moved()` compares marks and never walks it again).
  try {
    assertStorableJson(base.check.record, "reject", "$");
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
    return { ...base, check: { ok: false, problem: "invalid", reason: `it holds what no store can hold: ${err.message}` } };
  }
  return base;
}

/** The baseline as read and checked, without the value rule's walk: enough to see whether it moved. */
async function readBaselineMark(source: StoredGraphSource, name: string): Promise<BaselineRead> {
  const stored = await source.readBaseline(name);
  if (stored.state === "absent") return { check: checkBaseline(undefined, name), bytes: undefined, mark: "absent" };
  if (stored.state === "undecodable") {
    const reason = `its bytes do not decode: ${stored.detail}`;
    return { check: { ok: false, problem: "invalid", reason }, bytes: stored.raw?.byteLength, mark: `undecodable ${stored.detail}` };
  }
  const check = checkBaseline(stored.value, name);
  const mark = check.ok ? `seq ${check.record.seq} at ${String(check.record.timestamp_ns)}` : `${check.problem} ${check.reason}`;
  return { check, bytes: stored.raw?.byteLength, ...(stored.raw && { raw: stored.raw }), mark };
}

export interface StoredGraphView {
  readonly name: string;
  readonly baseline: GraphCheckpointRecord;
  /** Stored size of the baseline when the source reads bytes. */
  readonly baselineBytes: number | undefined;
  /** The baseline's stored bytes when the source reads bytes (compaction checks them before it commits). */
  readonly baselineRaw?: Uint8Array;
  /** Every frame key of the graph, ascending, those at or below the baseline included. */
  readonly keys: readonly FrameKey[];
}

/** What a reader does with a stored graph; every callback sees frames in ascending seq order. */
export interface StoredGraphVisitor {
  /** Called before any frame, and again when the read starts over (the baseline moved): drop what was gathered. */
  start(view: StoredGraphView): void;
  /** A good frame above the baseline, at most `targetSeq`. */
  frame(frame: WALFrame, read: FrameRead): void;
  /** A torn frame the policy skipped. */
  skipped?(info: TornWriteInfo, read: FrameRead): void;
  /** When given, frames at or below the baseline are read too and handed here (restore never replays them). */
  below?(read: FrameRead): void;
}

export interface ReadStoredGraphOptions {
  /** Frames up to this seq (default all). Below the baseline's seq: RestoreError `phase-failed`. */
  readonly targetSeq?: number;
  readonly onTornWrite?: TornWriteHandler;
}

/**
 * Reads graph `name` at one point in time: the baseline (RestoreError `baseline-missing` / `codec-mismatch`), then
 * its frames through the visitor. Throws RestoreError `wal-gap`, `torn-write-mid-stream`, `phase-failed` (target
 * below the baseline), StorageError `backend-no-list-support`, `backend-error`, `store-busy`.
 */
export async function readStoredGraph(
  source: StoredGraphSource,
  name: string,
  opts: ReadStoredGraphOptions,
  visitor: StoredGraphVisitor,
): Promise<StoredGraphView> {
  let view: StoredGraphView | undefined;
  await scan(source, name, opts, {
    baseline(base) {
      if (!base.check.ok) throw baselineError(name, base.check);
      const target = opts.targetSeq ?? Number.POSITIVE_INFINITY;
      const { seq } = base.check.record;
      if (target < seq) {
        throw new RestoreError(
          "phase-failed",
          `graph "${name}": that point in time is no longer stored: targetSeq ${target} is below the baseline seq ${seq}`,
          { graph: name, targetSeq: target, baselineSeq: seq },
        );
      }
    },
    start(base, keys) {
      const baseline = (base.check as { record: GraphCheckpointRecord }).record;
      view = { name, baseline, baselineBytes: base.bytes, ...(base.raw && { baselineRaw: base.raw }), keys };
      visitor.start(view);
    },
    frame: (frame, read) => visitor.frame(frame, read),
    torn(info, decision, read) {
      if (decision === "abort") throw tornWriteError(info);
      visitor.skipped?.(info, read);
    },
    gap(gap) {
      throw gapError(name, view!.baseline.seq, gap);
    },
    below: visitor.below?.bind(visitor),
  });
  return view!;
}

/** Where a damaged frame sits relative to what restore replays. */
export type FramePosition = "tail" | "mid-stream" | "below-baseline";

export type SurveyFinding =
  | { readonly kind: "torn"; readonly info: TornWriteInfo; readonly position: FramePosition; readonly restorable: boolean }
  | ({ readonly kind: "gap" } & SeqGap);

export interface StoredGraphSurvey {
  readonly baseline: BaselineRead;
  /** Every frame key of the graph, ascending. */
  readonly keys: readonly FrameKey[];
  /** Frames above the baseline (all of them without a usable baseline). */
  readonly framesAbove: number;
  /** Problems in seq order; frames at or below the baseline are checked too (restore never reads them). */
  readonly findings: readonly SurveyFinding[];
  /** Exactly whether restoring the whole graph would succeed (torn tails skipped), by the same rules. */
  readonly restorable: boolean;
}

export interface SurveyHooks {
  /** Before any frame, and again when the read starts over (the baseline moved): drop what was gathered. */
  onStart?(keys: readonly FrameKey[]): void;
  /** Each problem as it is found, in seq order (before `onFrame` of the same frame). */
  onFinding?(finding: SurveyFinding): void;
  /** Every frame read, below the baseline too. */
  onFrame?(read: FrameRead): void;
}

/**
 * Reads every frame of graph `name` like `readStoredGraph` with the default torn-write policy, but reports each
 * problem instead of stopping at the first one (the CLI's verify): `restorable` is restore's outcome.
 */
export async function surveyStoredGraph(source: StoredGraphSource, name: string, hooks: SurveyHooks = {}): Promise<StoredGraphSurvey> {
  let findings: SurveyFinding[] = [];
  let keys: readonly FrameKey[] = [];
  let floor = -1;
  const found = (f: SurveyFinding): void => {
    findings.push(f);
    hooks.onFinding?.(f);
  };
  const baseline = await scan(source, name, {}, {
    start(base, listed) {
      findings = [];
      keys = listed;
      floor = base.check.ok ? base.check.record.seq : -1;
      hooks.onStart?.(listed);
    },
    frame: (_frame, read) => hooks.onFrame?.(read),
    torn(info, decision, read) {
      found({ kind: "torn", info, position: info.isTail ? "tail" : "mid-stream", restorable: decision === "skip" });
      hooks.onFrame?.(read);
    },
    gap: (gap) => found({ kind: "gap", ...gap }),
    below(read) {
      const problem = frameProblem(read);
      if (problem !== undefined) {
        const info: TornWriteInfo = { frame_seq: read.seq, key: read.key, ...problem, isTail: false };
        found({ kind: "torn", info, position: "below-baseline", restorable: true });
      }
      hooks.onFrame?.(read);
    },
  });
  const restorable = baseline.check.ok && findings.every((f) => f.kind === "torn" && f.restorable);
  return { baseline, keys, framesAbove: keys.filter((k) => k.seq > floor).length, findings, restorable };
}

interface ScanSink {
  /** The baseline just read, before any frame is read (a strict reader throws for an unusable one here). */
  baseline?(base: BaselineRead): void;
  start(base: BaselineRead, keys: readonly FrameKey[]): void;
  frame(frame: WALFrame, read: FrameRead): void;
  torn(info: TornWriteInfo, decision: "skip" | "abort", read: FrameRead): void;
  gap(gap: SeqGap): void;
  below?(read: FrameRead): void;
}

const MOVED = Symbol("baseline moved");
/** A hole or a vanished frame seen inside a point in time, which may be another handle's later view (see `scan`). */
const UNSURE = Symbol("hole inside a point in time");

/** Runs one read after another until one sees a single point in time; returns the baseline it read. */
async function scan(source: StoredGraphSource, name: string, opts: ReadStoredGraphOptions, sink: ScanSink): Promise<BaselineRead> {
  // Every reader of a stored graph comes here: a name shaped like another record's key reads that record.
  assertGraphName(name, `reading a graph from ${source.label}`);
  // Outside a point in time no read is UNSURE.
  const live = async (): Promise<BaselineRead> => (await scanUntilStill(source, name, opts, sink, false)) as BaselineRead;
  if (source.consistent === undefined) return live();
  const held = await source.consistent(() => scanUntilStill(source, name, opts, sink, true));
  if (held !== UNSURE) return held;
  // Inside it, the baseline is read at its handle's frozen time, which a hole cannot move. With two handles the WAL's
  // listing may be later than it (a handle that holds no point in time: a SQLite store not in WAL mode reads live), so
  // a hole may be a compaction the baseline's handle cannot see (a false wal-gap). The graph is read again without a
  // point in time, where such a compaction moves the baseline (read over, a bounded number of times) and a true hole
  // stays one.
  return live();
}

async function scanUntilStill(
  source: StoredGraphSource,
  name: string,
  opts: ReadStoredGraphOptions,
  sink: ScanSink,
  walFirst: boolean,
): Promise<BaselineRead | typeof UNSURE> {
  for (let attempt = 1; ; attempt++) {
    const outcome = await scanOnce(source, name, opts, sink, walFirst);
    if (outcome !== MOVED) return outcome;
    if (attempt >= STORED_GRAPH_READ_ATTEMPTS) {
      throw new StorageError(
        "store-busy",
        `graph "${name}" in ${source.label}: its baseline moved ${attempt} times while it was being read (compactions kept committing); try again`,
        { graph: name, attempts: attempt },
      );
    }
  }
}

async function scanOnce(
  source: StoredGraphSource,
  name: string,
  opts: ReadStoredGraphOptions,
  sink: ScanSink,
  walFirst: boolean,
): Promise<BaselineRead | typeof MOVED | typeof UNSURE> {
  // Inside a point in time the WAL is listed first: where the baseline is another handle's, its point in time is
  // then taken after the WAL's even on PostgreSQL (REPEATABLE READ starts at the first statement), and a newer
  // baseline over an older listing is one state: it covers every listed frame at or below its seq (baselines only
  // move forward, a compaction or reclaim deletes only frames a baseline it stored first covers), and the listed
  // frames above it continue it (frames above a baseline never change; those written later are simply not listed).
  // Elsewhere the baseline first: an unusable one stops the read before the WAL is listed, and a move is seen anyway.
  let keys = walFirst ? await listFrameKeys(source, name) : undefined;
  const base = await readBaseline(source, name);
  sink.baseline?.(base);
  keys ??= await listFrameKeys(source, name);
  sink.start(base, keys);
  const baselineSeq = base.check.ok ? base.check.record.seq : undefined;
  const floor = baselineSeq ?? -1;
  const target = opts.targetSeq ?? Number.POSITIVE_INFINITY;
  const last = keys[keys.length - 1];
  const chain = new FrameChain(baselineSeq, last !== undefined && last.seq > floor ? last.seq : -1, true, opts.onTornWrite);
  const moved = async (): Promise<boolean> => {
    if (base.raw !== undefined && source.readBaselineRaw !== undefined) {
      const raw = await source.readBaselineRaw(name);
      if (raw !== undefined && sameBytes(raw, base.raw)) return false; // else parse: other bytes may hold the same mark
    }
    return (await readBaselineMark(source, name)).mark !== base.mark;
  };
  const wanted = keys.filter((k) => (k.seq <= floor ? sink.below !== undefined : k.seq <= target));
  // Chunks after the first are asked for before the one before them is screened: an engine store's actor reads them
  // while this thread replays. One frame at a time (readAhead 1) reads nothing past a bad frame.
  let tail: WALFrame | undefined;
  for await (const reads of readFrameChunks(source, wanted, { readAhead: true })) {
    const screened = await screenChunk(reads);
    if (screened !== undefined) return screened;
  }
  // Read up to the last listed frame: the listing may have caught a batch mid-way, its wave's last frames unlisted.
  if (tail !== undefined && tail.frame_seq === last?.seq && (await tailWaveGrew(source, name, tail))) return MOVED;
  // Frames above a baseline never change; only a compaction deletes them, and it moves the baseline first. So an
  // unmoved baseline means every frame read belongs with it (also when the listing came back empty).
  return (await moved()) ? MOVED : base;

  async function screenChunk(reads: readonly FrameRead[]): Promise<typeof MOVED | typeof UNSURE | undefined> {
    for (const read of reads) {
      if (read.seq <= floor) {
        // Covered by the baseline: gone by now is what compaction does to such frames, not damage.
        if (read.ok || !read.absent) sink.below!(read);
        continue;
      }
      const gap = chain.gapBefore(read.seq);
      // A hole or a vanished frame is what a compaction committed mid-read looks like; a moved baseline says so.
      if (gap !== undefined || (!read.ok && read.absent)) {
        if (await moved()) return MOVED;
        if (walFirst) return UNSURE; // inside a point in time: see `scan`
      }
      if (gap !== undefined) sink.gap(gap);
      const screened = chain.screen(read);
      if ("frame" in screened) {
        sink.frame(screened.frame, read);
        tail = screened.frame;
      } else {
        sink.torn(screened.torn, screened.decision, read);
      }
    }
    return undefined;
  }
}

/**
 * Whether the wave of `tail` (the last frame listed and read) has a frame stored after it, once the batches under
 * way have finished: the listing then caught the wave in part, a state the writer never had (a file store renames
 * a batch's files one by one), and the read starts over. Frames of one wave share `frame_t_ns`. Only sources whose
 * batches show one key at a time (`settle`) need it; elsewhere a batch is one transaction. Followers ask it of the
 * last frame a poll listed and read (follow.ts `collect`): such a wave waits for the next poll.
 */
export async function tailWaveGrew(source: StoredGraphSource, name: string, tail: WALFrame): Promise<boolean> {
  if (source.settle === undefined) return false;
  await source.settle();
  const next = await source.readFrame(walFrameKey(graphWalPrefix(name), tail.frame_seq + 1));
  if (next.state !== "value" || !isRecord(next.value)) return false;
  return String(next.value.frame_t_ns) === String(tail.frame_t_ns);
}

/** A torn frame's detail for content no store can hold. */
function unstorable(err: CodecError): string {
  return `it holds what no store can hold: ${err.message}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Byte-for-byte equality of two stored values. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}
