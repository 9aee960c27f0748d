/**
 * Sealed frames written straight from the columns (frame-columns.ts), for the store's actor: the frames of one
 * batch share most of their text (the envelope's constants, the payload's kind, often the timestamps), so those
 * parts are written to canonical UTF-8 once per batch and copied into each frame, and no frame object is rebuilt.
 * Only where every part is plain (the checks `findWalFrameProblem` makes, and the canonical writer's fast path
 * answering); anything else takes the codec's own path, frame by frame, which gives the same bytes or the same
 * error. Layer 0.
 */
import { CanonicalWriter, withCanonicalWriter } from "../codec/canonical-writer.js";
import { columnsLayout as L, frameColumns, type FrameColumns, type SharedField } from "./frame-columns.js";
import { writeComputedSeal } from "./frame-text.js";
import { isLifecycle, WAL_FORMAT_VERSION, type WALFrame } from "./frame.js";

/** Below this many frames a batch is encoded frame by frame: writing its constant parts once would not pay. */
const MIN_BATCH = 4;

/** Fields the template requires shared across the batch (the timestamps and the payload's kind may vary). */
const MUST_SHARE: readonly SharedField[] = ["lifecycle", "structure", "version", "seq", "envelopeLifecycle", "checksum", "formatVersion"];

/** A part written per frame: writes frame i's piece, or returns false when the codec's own path must decide. */
type Piece = (w: CanonicalWriter, i: number) => boolean;

/**
 * An encoder of frame `i` of `cols` into pooled bytes, equal to `encode(frameColumns.at(cols, i))` (bytes or
 * error), where `encode` is the codec's own transient encoder.
 */
export function frameColumnsEncoder(cols: FrameColumns, encode: (frame: WALFrame) => Uint8Array): (i: number) => Uint8Array {
  const generic = (i: number): Uint8Array => encode(frameColumns.at(cols, i));
  const template = L.count(cols) >= MIN_BATCH ? frameTemplate(cols) : undefined;
  if (template === undefined) return generic;
  return (i) => withCanonicalWriter((w) => template(w, i)) ?? generic(i);
}

/**
 * The batch's frame text as constant parts and per-frame pieces, in canonical key order:
 *   {"change":{"change":<payload>,"lifecycle":…[,"seq":…],"structure":…,"t_ns":<t_ns>,"version":…}
 *   ,"checksum":…,"format_version":…   (the seal, computed over the body and moved here)
 *   ,"frame_seq":<seq>,"frame_t_ns":<t>,"lifecycle":…,"path":<path>,"t":"c"}
 * where a payload that crossed as its value alone is {"kind":…,"path":<path>,"value":<value>}.
 * Undefined when a shared field is not plain or a frame brings its own checksum (kept as is by the codec's path).
 */
function frameTemplate(cols: FrameColumns): ((w: CanonicalWriter, i: number) => Uint8Array | undefined) | undefined {
  if (MUST_SHARE.some((f) => L.perFrame(cols, f) !== undefined)) return undefined;
  const lifecycle = L.shared(cols, "lifecycle");
  const envelopeLifecycle = L.shared(cols, "envelopeLifecycle");
  const structure = L.shared(cols, "structure");
  const version = L.shared(cols, "version");
  const seq = L.shared(cols, "seq");
  const kind = L.shared(cols, "kind");
  const checksum = L.shared(cols, "checksum");
  const givenVersion = L.shared(cols, "formatVersion");
  const formatVersion = givenVersion === undefined ? WAL_FORMAT_VERSION : givenVersion; // null is refused below, not defaulted
  if (!isLifecycle(lifecycle) || !isLifecycle(envelopeLifecycle) || typeof structure !== "string") return undefined;
  if ((typeof version !== "number" && typeof version !== "string") || (seq !== undefined && typeof seq !== "number")) return undefined;
  if ((kind !== undefined && typeof kind !== "string") || (checksum !== undefined && checksum !== "")) return undefined;
  if (!Number.isSafeInteger(formatVersion) || (formatVersion as number) < 0) return undefined;

  const parts = new TemplateBuilder();
  const path: Piece = (w, i) => {
    const p = L.path(cols, i);
    return typeof p === "string" && w.value(p, "reject");
  };
  // A payload's canonical text, written on the main thread (frame-columns.ts `encodeAhead`), is copied as it is.
  const textEach = L.perFrame(cols, "payloadText");
  const textAll = L.shared(cols, "payloadText");
  const payload: Piece = (w, i) => {
    if ((textEach === undefined ? textAll : textEach[i]) === true) {
      const text = L.text(cols, i);
      if (text === undefined) return false;
      w.raw(text[0].subarray(text[1], text[2]));
      return true;
    }
    const v = L.payload(cols, i);
    return v !== undefined && w.value(v, "reject");
  };
  parts.text('{"change":{"change":');
  const kindEach = L.perFrame(cols, "kind");
  if (kindEach !== undefined) {
    // A wave mixing sets and invalidations: each frame's payload crossed split (its kind here) or whole.
    parts.piece((w, i) => {
      const k = kindEach[i];
      if (k === undefined) return payload(w, i);
      if (typeof k !== "string") return false;
      w.ascii('{"kind":');
      if (!w.value(k, "reject")) return false;
      w.ascii(',"path":');
      if (!path(w, i)) return false;
      w.ascii(',"value":');
      if (!payload(w, i)) return false;
      w.ascii("}");
      return true;
    });
  } else if (kind !== undefined) {
    parts.text('{"kind":').value(kind).text(',"path":').piece(path).text(',"value":').piece(payload).text("}");
  } else parts.piece(payload);
  parts.text(',"lifecycle":').value(envelopeLifecycle);
  if (seq !== undefined) parts.text(',"seq":').value(seq);
  parts.text(',"structure":').value(structure).text(',"t_ns":');
  const last: LastTimestamp = { value: undefined, bytes: new Uint8Array(TIMESTAMP_BYTES), length: 0 };
  timestamp(parts, cols, "tNs", (t) => typeof t === "number", last);
  parts.text(',"version":').value(version).text("}");
  const head = parts.done();
  parts.text(',"frame_seq":').piece((w, i) => {
    const s = L.frameSeq(cols, i);
    return Number.isSafeInteger(s) && (s as number) >= 0 && w.value(s, "reject");
  });
  parts.text(',"frame_t_ns":');
  timestamp(parts, cols, "frameTNs", (t) => Number.isInteger(t) && (t as number) >= 0, last);
  parts.text(',"lifecycle":').value(lifecycle).text(',"path":').piece(path).text(',"t":"c"}');
  const tail = parts.done();
  if (head === undefined || tail === undefined) return undefined;

  return (w, i) => {
    if (!writeParts(w, head, i)) return undefined;
    const headEnd = w.length;
    if (!writeParts(w, tail, i)) return undefined;
    const bodyEnd = w.length;
    writeComputedSeal(w, formatVersion as number);
    w.moveBack(headEnd, bodyEnd);
    // The writer's own bytes, not a pooled copy: the caller copies them at once (ColumnarTransport.encoder), and a
    // second copy per frame cost the store's actor ~0.3 µs (allocation, copy and collection).
    return w.view();
  };
}

/**
 * The bytes of the timestamp written last, shared by a template's two timestamp pieces: attach stamps each wave once,
 * so a frame's `frame_t_ns` is its `change.t_ns`, and consecutive frames of a wave share both.
 */
interface LastTimestamp {
  value: unknown;
  bytes: Uint8Array;
  length: number;
}

/** Room for any finite number's canonical text (at most 25 bytes: `-1.2345678901234567e-308`). */
const TIMESTAMP_BYTES = 32;

/**
 * A timestamp field: one constant when the batch shares it, else a checked piece per frame (numbers only). A finite
 * number is written by the canonical writer's `number` (the digits of `String(t)`; attach's stamps, above 2^53, digit
 * by digit without `String()`'s ~150 ns, §3.43), and attach writes each wave's stamp into both fields: a value equal
 * to the last one written (the other field of the frame, the next frame of a wave) repeats its bytes (the two fields'
 * own caches made two calls per frame, ~0.5 µs of the actor's time, §3.34).
 */
function timestamp(parts: TemplateBuilder, cols: FrameColumns, f: "tNs" | "frameTNs", plain: (t: unknown) => boolean, last: LastTimestamp): void {
  const each = L.perFrame(cols, f);
  if (each === undefined) {
    const t = L.shared(cols, f);
    if (plain(t)) parts.value(t);
    else parts.fail();
    return;
  }
  parts.piece((w, i) => {
    const t = each[i];
    // Checked first: the other field may have written a value this one refuses (frame_t_ns takes no -5 or 2.5).
    if (!plain(t)) return false;
    if (t === last.value && typeof t === "number") {
      w.raw(last.bytes, last.length);
      return true;
    }
    if (typeof t !== "number" || !Number.isFinite(t)) return w.value(t, "reject");
    const start = w.length;
    w.number(t);
    last.value = t;
    last.length = w.copyOut(start, last.bytes);
    return true;
  });
}

/** Constant canonical text (merged into runs of bytes) and per-frame pieces, in writing order. */
type Part = Uint8Array | Piece;

function writeParts(w: CanonicalWriter, parts: readonly Part[], i: number): boolean {
  for (let k = 0; k < parts.length; k++) {
    const part = parts[k]!;
    if (part instanceof Uint8Array) w.raw(part);
    else if (!part(w, i)) return false;
  }
  return true;
}

class TemplateBuilder {
  private parts: Part[] = [];
  private constant = new CanonicalWriter();
  private failed = false;

  /** ASCII literal text (keys and punctuation). */
  text(s: string): this {
    this.constant.ascii(s);
    return this;
  }

  /** A value shared by every frame, written once (not plain: the template fails). */
  value(v: unknown): this {
    if (!this.constant.value(v, "reject")) this.failed = true;
    return this;
  }

  piece(p: Piece): this {
    this.flushConstant();
    this.parts.push(p);
    return this;
  }

  fail(): void {
    this.failed = true;
  }

  /** The parts written since the last `done`; undefined once anything failed. */
  done(): Part[] | undefined {
    this.flushConstant();
    const parts = this.parts;
    this.parts = [];
    return this.failed ? undefined : parts;
  }

  private flushConstant(): void {
    if (this.constant.length === 0) return;
    this.parts.push(this.constant.copy());
    this.constant.reset();
  }
}
