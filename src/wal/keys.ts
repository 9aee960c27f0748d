/**
 * WAL backend keys (docs/protocol.md §6.2): `<graph>/wal/<frame_seq zero-padded to 20 digits>`, so lexicographic key
 * order equals numeric frame order. Also the rule for graph names, whose baselines share that key space
 * (docs/design.md §3.27). Layer 0.
 */
import { StorageError } from "../errors.js";

export const WAL_KEY_SEGMENT = "wal";
export const WAL_FRAME_SEQ_PAD = 20;
/** The padding, sliced to length: cheaper than padStart on the per-frame path. */
const ZEROS = "0".repeat(WAL_FRAME_SEQ_PAD);

/** The WAL prefix of a graph, without a trailing slash: `"my-graph"` → `"my-graph/wal"`. */
export function graphWalPrefix(name: string): string {
  if (typeof name !== "string") throw new TypeError(`graphWalPrefix: name must be a string, got ${typeof name}`);
  return `${name}/${WAL_KEY_SEGMENT}`;
}

/** `prefix + "/" + frame_seq` padded to 20 digits. RangeError for anything but a non-negative safe integer. */
export function walFrameKey(prefix: string, seq: number): string {
  if (typeof prefix !== "string") throw new TypeError(`walFrameKey: prefix must be a string, got ${typeof prefix}`);
  if (!Number.isInteger(seq) || seq < 0) {
    throw new RangeError(`walFrameKey: frame_seq must be a non-negative integer, got ${String(seq)}`);
  }
  if (!Number.isSafeInteger(seq)) {
    // Above 2^53 - 1 the number is not exact (and from 1e21 on String() switches to exponent form).
    throw new RangeError(
      `walFrameKey: frame_seq must be a non-negative integer, got ${String(seq)} (above Number.MAX_SAFE_INTEGER)`,
    );
  }
  const digits = seq <= INT32_MAX ? seqDigits(seq) : String(seq); // at most 16 digits: a safe integer
  // The prefix, slash and zeros come from a cached string per prefix and digit count: the key is then one two-part
  // string (56 bytes) instead of four pieces (~144). A burst's keys live until its turn's message is posted (the
  // engine's columns op holds them), so every byte of them is copied by each scavenge of the tick (design §3.44).
  let heads = lastHeads;
  if (prefix !== lastPrefix) {
    let found = headsByPrefix.get(prefix);
    if (found === undefined) {
      if (headsByPrefix.size >= MAX_CACHED_PREFIXES) headsByPrefix.clear();
      headsByPrefix.set(prefix, (found = new Array<string | undefined>(WAL_FRAME_SEQ_PAD + 1).fill(undefined)));
    }
    heads = lastHeads = found;
    lastPrefix = prefix;
  }
  // join, not a template: a flat string, so each key is one level deep for whoever reads its characters.
  const head = (heads[digits.length] ??= [prefix, "/", ZEROS.slice(digits.length)].join(""));
  return head + digits;
}

const INT32_MAX = 0x7fffffff;
/** "0" to "999", and the same zero-padded to three digits: the groups `seqDigits` joins. */
const GROUP = Array.from({ length: 1000 }, (_, i) => String(i));
const GROUP3 = GROUP.map((g) => ZEROS.slice(0, 3 - g.length) + g);

/**
 * `String(seq)` for 0 ≤ seq ≤ 2^31 − 1, without V8's number-string cache: String() of a number enters its digits
 * there, which keeps each key's digits alive (old space refers to them) until 16,384 later numbers overwrite them, so
 * every frame's digits were promoted by the scavenge after it (~24 B a frame, design §3.47, §3.54). Joined from
 * three-digit groups in int32 arithmetic: the digits die with the key.
 */
function seqDigits(seq: number): string {
  if (seq < 1000) return GROUP[seq] as string;
  let rest = (seq / 1000) | 0;
  let digits = GROUP3[seq - rest * 1000] as string;
  while (rest >= 1000) {
    const q = (rest / 1000) | 0;
    digits = (GROUP3[rest - q * 1000] as string) + digits;
    rest = q;
  }
  return (GROUP[rest] as string) + digits;
}

/**
 * walFrameKey's cache of heads by digit count, per prefix: the last prefix's at hand (one graph's frames come in
 * runs), the others in a map bounded by clearing it (a process writing many graphs' frames rebuilds a few heads).
 */
const MAX_CACHED_PREFIXES = 64;
const headsByPrefix = new Map<string, Array<string | undefined>>();
let lastPrefix: string | undefined;
let lastHeads: Array<string | undefined> = [];

/**
 * The frame_seq encoded in `key` when it is exactly `prefix + "/" + 20 digits`, else undefined. Exactness keeps
 * a sibling graph's frames out (`"g/wal"` must not match `"g/walrus/…"`, docs/graph-model.md §6 item 17). Digit
 * strings above Number.MAX_SAFE_INTEGER (possible in Rust-written stores) cannot be represented and are
 * reported as undefined rather than rounded.
 */
export function parseWalFrameKey(prefix: string, key: string): number | undefined {
  const start = prefix.length + 1;
  if (key.length !== start + WAL_FRAME_SEQ_PAD || !key.startsWith(prefix) || key.charCodeAt(prefix.length) !== 0x2f) {
    return undefined;
  }
  for (let i = start; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  const seq = Number(key.slice(start));
  return Number.isSafeInteger(seq) ? seq : undefined;
}

/**
 * The graph and frame_seq of any WAL frame key, `<graph>/wal/<20 digits>`, for readers that list a whole store
 * (which graphs does it hold, which graph did a write go to). The graph name is everything before the final
 * `/wal/`, so it may itself contain `/wal/`, newlines or be empty; undefined for any other key.
 */
export function splitWalFrameKey(key: string): { graphName: string; seq: number } | undefined {
  const suffix = 1 + WAL_KEY_SEGMENT.length + 1 + WAL_FRAME_SEQ_PAD; // "/wal/" + digits
  if (key.length < suffix) return undefined;
  const graphName = key.slice(0, key.length - suffix);
  const seq = parseWalFrameKey(graphWalPrefix(graphName), key);
  return seq === undefined ? undefined : { graphName, seq };
}

/** True when `key` ends with `/wal/` + 20 ASCII digits: a frame key of some graph, safe integer or not (Rust u64). */
export function hasWalFrameKeyShape(key: string): boolean {
  return endsWithDigits(key, `/${WAL_KEY_SEGMENT}/`);
}

/** True when `key` ends with U+001F + 20 ASCII digits: an append-log segment key (src/tier/append-layout.ts). */
function endsLikeSegmentKey(key: string): boolean {
  return endsWithDigits(key, "\u001f");
}

function endsWithDigits(key: string, separator: string): boolean {
  const start = key.length - WAL_FRAME_SEQ_PAD;
  if (start < separator.length || !key.startsWith(separator, start - separator.length)) return false;
  for (let i = start; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Why `name` cannot name a graph in a store (undefined: it can). A graph's baseline is stored under its name, in the
 * key space its own and other graphs' frames and append-log segments share, so a name shaped like one of their keys
 * would overwrite it (and a compaction would delete it): `a/wal/00000000000000000001` is graph "a"'s frame 1. Empty
 * names are refused as createGraph refuses them, lone surrogates because no backend can store them as a key.
 */
export function graphNameProblem(name: string): string | undefined {
  if (name.length === 0) return "it is empty";
  if (!(name as string & { isWellFormed(): boolean }).isWellFormed()) return "it contains a lone surrogate (no backend can store it as a key)";
  if (hasWalFrameKeyShape(name)) {
    const owner = name.slice(0, name.length - WAL_FRAME_SEQ_PAD - WAL_KEY_SEGMENT.length - 2);
    return `it is shaped like a WAL frame key (graph ${JSON.stringify(owner)}'s frame ${name.slice(-WAL_FRAME_SEQ_PAD).replace(/^0+(?=\d)/, "")}): its baseline would overwrite that frame`;
  }
  if (endsLikeSegmentKey(name)) {
    return "it is shaped like an append-log segment key (U+001F and 20 digits at its end): its baseline would overwrite that segment";
  }
  return undefined;
}

/**
 * Throws StorageError("invalid-name") (details.graph) for a name `graphNameProblem` refuses, TypeError for a
 * non-string. `where` names the caller in the message.
 */
export function assertGraphName(name: unknown, where: string): asserts name is string {
  if (typeof name !== "string") throw new TypeError(`${where}: the graph name must be a string, got ${typeof name}`);
  const problem = graphNameProblem(name);
  if (problem !== undefined) {
    throw new StorageError("invalid-name", `${where}: ${JSON.stringify(name)} is not a usable graph name: ${problem}`, {
      graph: name,
    });
  }
}
