/**
 * loadHead reads a prefix of a stored baseline where the backend reads prefixes: the head parser answers MORE when
 * the prefix ends before name and seq are known, never a shorter number or string cut at the prefix's end.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MORE, canonicalJsonHead, canonicalJsonHeadOfPrefix, headOf } from "../../src/tier/json-head.js";
import { HEAD_PREFIX_BYTES } from "../../src/tier/snapshot.js";
import { snapshotStorage } from "../../src/tier/index.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { fileBackend } from "../../src/backend/file.js";
import type { StorageBackend, SyncStorageBackend } from "../../src/backend/types.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const enc = new TextEncoder();

/** A real backend whose reads count the bytes they return (whole values and prefixes alike). */
interface Counting extends StorageBackend {
  bytesRead: number;
  prefixReads: number;
  read(key: string): Uint8Array | undefined;
}

function counting(inner: SyncStorageBackend): Counting {
  const b: Counting = {
    name: inner.name,
    supports: inner.supports,
    bytesRead: 0,
    prefixReads: 0,
    read(key: string): Uint8Array | undefined {
      const v = inner.read(key);
      b.bytesRead += v?.byteLength ?? 0;
      return v;
    },
    readPrefix(key: string, maxBytes: number) {
      const v = inner.readPrefix(key, maxBytes);
      b.prefixReads++;
      b.bytesRead += v?.byteLength ?? 0;
      return v;
    },
    write: (key: string, bytes: Uint8Array) => inner.write(key, bytes),
    close: () => inner.close(),
  };
  return b;
}

const record = (seq: number, nodes: number) => ({
  name: "g",
  seq,
  snapshot: { nodes: Object.fromEntries(Array.from({ length: nodes }, (_, i) => [`n${i}`, { value: i, label: "x".repeat(40) }])) },
  timestamp_ns: 1,
});

describe("loadHead through a prefix read", () => {
  it("reads only the prefix of a large canonical JSON baseline (SQLite, file, memory)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "grf-head-prefix-"));
    for (const inner of [sqliteBackend(`${dir}/s.db`), fileBackend(`${dir}/files`), memoryBackend()]) {
      const b = counting(inner);
      const tier = snapshotStorage<ReturnType<typeof record>>(b, { name: "g" });
      tier.save(record(7, 20_000)); // ~1.3 MB
      await tier.flush();
      const stored = inner.read("g")!.byteLength;
      expect(stored).toBeGreaterThan(1_000_000);
      b.bytesRead = 0;
      expect(await tier.loadHead!("g")).toEqual({ name: "g", seq: 7 });
      expect(b.prefixReads).toBe(1);
      expect(b.bytesRead).toBe(HEAD_PREFIX_BYTES);
      // A small record is read whole by the prefix read itself (shorter than asked), once.
      tier.save(record(8, 1));
      await tier.flush();
      b.bytesRead = 0;
      expect(await tier.loadHead!("g")).toEqual({ name: "g", seq: 8 });
      expect(b.bytesRead).toBe(inner.read("g")!.byteLength);
      expect(await tier.loadHead!("missing")).toBeUndefined();
      await tier.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("falls back to the whole value when the head is longer than the prefix", async () => {
    const b = counting(memoryBackend());
    const name = "n".repeat(HEAD_PREFIX_BYTES + 10);
    const tier = snapshotStorage<{ name: string; seq: number; snapshot: number }>(b, { name: "t" });
    tier.save({ name, seq: 3, snapshot: 1 });
    await tier.flush();
    b.bytesRead = 0;
    // Saved under its name (the record's key), which loadHead reads by default.
    expect(await tier.loadHead!()).toEqual({ name, seq: 3 });
    expect(b.prefixReads).toBe(1);
    expect(b.bytesRead).toBe(HEAD_PREFIX_BYTES + b.read(name)!.byteLength);
    await tier.close();
  });

  it("never mis-parses a head cut at the prefix's end (property)", () => {
    const head = fc.record({
      name: fc.string({ maxLength: 12 }),
      seq: fc.oneof(fc.integer({ min: -1e6, max: 1e6 }), fc.constant(Number.MAX_SAFE_INTEGER), fc.double({ noNaN: true, noDefaultInfinity: true })),
      a: fc.option(fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), { nil: undefined }),
      snapshot: fc.jsonValue({ maxDepth: 2 }),
    });
    fc.assert(
      fc.property(head, fc.boolean(), (r, spaced) => {
        // Canonical JSON (keys sorted), or the same with whitespace around every token.
        const sorted = Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)));
        const text = spaced ? JSON.stringify(sorted, null, 1) : JSON.stringify(sorted);
        const bytes = enc.encode(text);
        const whole = canonicalJsonHead(bytes);
        for (let n = 0; n <= bytes.length; n++) {
          const got = canonicalJsonHeadOfPrefix(bytes.subarray(0, n));
          // Either "read more", "decode it", or exactly what the whole record's head is.
          if (got === MORE || got === undefined) continue;
          expect(got).toEqual(whole);
          expect(got).toEqual(headOf(JSON.parse(text)));
        }
        // The whole record as a prefix: vouched for exactly when the whole-record parser vouches (or MORE at "}").
        const all = canonicalJsonHeadOfPrefix(bytes);
        if (all !== MORE) expect(all).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it("answers MORE for a number or string cut at the end, and the head once a later key is whole", () => {
    const text = '{"name":"graph","seq":12345,"snapshot":{}}';
    const b = enc.encode(text);
    const at = (s: string) => text.indexOf(s);
    expect(canonicalJsonHeadOfPrefix(b.subarray(0, at("345,")))).toBe(MORE); // "seq":12
    expect(canonicalJsonHeadOfPrefix(b.subarray(0, at(',"snapshot')))).toBe(MORE); // "seq":12345 (more digits?)
    expect(canonicalJsonHeadOfPrefix(b.subarray(0, at('aph"')))).toBe(MORE); // "name":"gr
    expect(canonicalJsonHeadOfPrefix(b.subarray(0, at("shot")))).toBe(MORE); // "snap
    expect(canonicalJsonHeadOfPrefix(b.subarray(0, at(":{}")))).toEqual({ name: "graph", seq: 12345 });
    // An escape cut after its backslash is not a closing quote.
    const esc = enc.encode('{"name":"a\\"b","seq":1,"z":0}');
    expect(canonicalJsonHeadOfPrefix(esc.subarray(0, 11))).toBe(MORE);
    expect(canonicalJsonHeadOfPrefix(esc)).toEqual({ name: 'a"b', seq: 1 });
    // Keys out of order: decode, whatever the cut.
    expect(canonicalJsonHeadOfPrefix(enc.encode('{"seq":1,"name":"g","z":0}'))).toBeUndefined();
  });
});
