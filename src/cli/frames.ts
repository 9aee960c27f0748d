/**
 * `frames <store> --graph NAME [--from SEQ] [--limit N]`: one JSON object per line (canonical JSON), in seq
 * order: `{"checksum_ok", "frame", "key", "seq"}` for a frame that decodes, `{"error", "key", "raw", "seq"}`
 * (raw = the stored bytes as UTF-8 text, lossy) for one that does not, and after them the same with `seq` null for
 * a key shaped like a frame key whose seq is above 2^53 − 1 (no reader reads it). Pipe into `jq`.
 */
import { Buffer } from "node:buffer";
import { Command } from "commander";
import { canonicalJson } from "../codec/json.js";
import { EXIT } from "./errors.js";
import { selectGraphs } from "./inspect.js";
import { plural, printLine } from "./output.js";
import { nonNegativeInt, withStoreOptions, type StoreCommandOptions } from "./options.js";
import {
  backendSource,
  listFrameKeys,
  readBaseline,
  readFrame,
  type FrameKey,
  type FrameRead,
  type StoredGraphSource,
} from "../persistence/stored-graph.js";
import { withStore } from "./store.js";
import { outOfRangeFrameKeys, wholeWaves } from "./scan.js";

function frameLine(read: FrameRead): string {
  if (!read.ok) return errorLine(read, read.detail);
  try {
    return canonicalJson({ checksum_ok: read.checksumOk, frame: read.frame, key: read.key, seq: read.seq });
  } catch (err) {
    // A field outside the checksummed body (the checksum itself) holds what canonical JSON cannot write: this frame
    // gets the error line, and the frames after it are still printed.
    return errorLine(read, err instanceof Error ? err.message : String(err));
  }
}

/** The `{error, key, raw, seq}` line; never throws (every string in it is made well-formed). */
function errorLine(read: FrameRead, detail: string): string {
  const raw = Buffer.from(read.raw ?? new Uint8Array()).toString("utf8"); // lossy: invalid UTF-8 becomes U+FFFD
  return canonicalJson({ error: wellFormed(detail), key: wellFormed(read.key), raw, seq: read.seq });
}

const OUT_OF_RANGE = "seq above 2^53 - 1 (Number.MAX_SAFE_INTEGER): no reader reads this key as a frame, restore ignores it";

// Node >= 20 ships String.prototype.toWellFormed; the ES2022 lib typings do not declare it.
const wellFormed = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();

/**
 * Whether frame `at`, absent when read, was deleted by a compaction since it was listed: it is gone (not a key
 * stored as 0 bytes, which stays an error line) and the graph's baseline now covers its seq. The baseline is read
 * again only for a seq above the last one seen, so a compaction's run of deleted frames costs one read.
 */
function foldedSince(source: StoredGraphSource, graph: string): (at: FrameKey) => Promise<boolean> {
  let baselineSeq = -1;
  return async (at) => {
    if (source.frameSizes !== undefined && (await source.frameSizes([at.key]))[0] !== undefined) return false;
    if (at.seq > baselineSeq) {
      const base = await readBaseline(source, graph);
      if (base.check.ok) baselineSeq = base.check.record.seq;
    }
    return at.seq <= baselineSeq;
  };
}

export function framesCommand(): Command {
  return withStoreOptions(
    new Command("frames")
      .description("print WAL frames, one JSON object per line")
      .argument("<store>", "SQLite file or file-backend directory")
      .requiredOption("--graph <name>", "graph whose WAL to print")
      .option("--from <seq>", "first frame seq to print", nonNegativeInt)
      .option("--limit <n>", "print at most n frames", nonNegativeInt),
    false,
  ).action(async (store: string, opts: StoreCommandOptions & { graph: string; from?: number; limit?: number }) => {
    await withStore(store, { kind: opts.backend, mode: "read" }, async (s) => {
      await selectGraphs(s.backend, opts.graph, s.path);
      const source = backendSource(s.backend);
      const from = opts.from ?? 0;
      // Whole waves only: a live file store's listing may end in a wave whose last frames are still being renamed.
      const whole = await wholeWaves(source, opts.graph, await listFrameKeys(source, opts.graph));
      if (whole.inFlight > 0) process.stderr.write(`note: ${plural(whole.inFlight, "frame")} of a wave still being written, not shown\n`);
      const keys = whole.keys.filter((k) => k.seq >= from).slice(0, opts.limit);
      const folded = foldedSince(source, opts.graph);
      for (const at of keys) {
        const read = await readFrame(source, at);
        // A frame gone when read whose seq a compaction has folded since the listing (a live file store: frames are
        // read one by one) is no damage: it printed `absent when read` error lines on a healthy store (review r309 F3).
        if (!read.ok && read.absent && (await folded(at))) continue;
        printLine(frameLine(read));
      }
      // Keys whose seq is above 2^53 − 1 sort after every frame (20 digits): shown as unreadable, not hidden.
      const room = opts.limit === undefined ? undefined : opts.limit - keys.length;
      for (const key of (await outOfRangeFrameKeys(source, opts.graph)).slice(0, room)) {
        const raw = await source.readFrame(key);
        const bytes = raw.state === "absent" ? undefined : raw.raw;
        printLine(canonicalJson({ error: OUT_OF_RANGE, key: wellFormed(key), raw: Buffer.from(bytes ?? new Uint8Array()).toString("utf8"), seq: null }));
      }
    });
    process.exitCode = EXIT.ok;
  });
}
