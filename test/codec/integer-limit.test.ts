/**
 * The codecs' bound on integer digits (MAX_INTEGER_DIGITS, docs/design.md §3.36): writing or reading an integer
 * of n digits costs superlinear time, paid by every checksum of a frame holding it, so past the bound encode
 * refuses it (CodecError "encode-failed", reason "integer-too-wide") and so does decode ("decode-failed"): a
 * restore meets such a stored frame as one it cannot read, not as minutes of work.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { bigintJsonCodec } from "../../src/codec/bigint.js";
import { MAX_INTEGER_DIGITS } from "../../src/codec/index.js";
import { isTooWideInteger } from "../../src/codec/integer-limit.js";
import { jsonCodec } from "../../src/codec/json.js";
import { assertStorableJson } from "../../src/codec/strict.js";
import { CodecError } from "../../src/errors.js";
import { createGraph } from "../../src/graph/graph.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import type { TornWriteInfo } from "../../src/persistence/storage-types.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { buildStore } from "../cli/fixtures/stores.js";

const dir = mkdtempSync(join(tmpdir(), "grf-integer-limit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const widest = 10n ** BigInt(MAX_INTEGER_DIGITS) - 1n; // MAX_INTEGER_DIGITS nines
const tooWide = 10n ** BigInt(MAX_INTEGER_DIGITS); // one digit more
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function refusal(f: () => unknown): CodecError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(CodecError);
    return err as CodecError;
  }
  throw new Error("expected a CodecError");
}

describe("MAX_INTEGER_DIGITS", () => {
  it("is 1,000,000 digits, far above any real integer (a u64 has 20, a 4096-bit key 1,234)", () => {
    expect(MAX_INTEGER_DIGITS).toBe(1_000_000);
  });

  it("decides exactly at the bound and around the powers of two that bracket it", () => {
    // The check decides most values by bit length alone (the exact bound is made only when that cannot decide).
    const edges = [0n, 1n, 2n ** 64n, 2n ** 3_321_928n - 1n, 2n ** 3_321_928n, 2n ** 3_321_929n, widest, tooWide, tooWide + 1n];
    for (const v of edges.flatMap((e) => [e, -e])) expect(isTooWideInteger(v)).toBe(v >= tooWide || v <= -tooWide);
    expect(2n ** 3_321_928n < tooWide && 2n ** 3_321_929n > tooWide).toBe(true);
  });

  it("the widest integer round-trips in both codecs, signed", () => {
    for (const v of [widest, -widest]) {
      expect(jsonCodec.decode(jsonCodec.encode({ v }))).toEqual({ v });
      expect(bigintJsonCodec.decode(bigintJsonCodec.encode({ v }))).toEqual({ v });
    }
  });

  it("encode refuses one digit more, in both codecs and at save time, with the path", () => {
    for (const v of [tooWide, -tooWide, 10n ** 3_000_000n]) {
      for (const encode of [() => jsonCodec.encode({ a: [v] }), () => bigintJsonCodec.encode({ a: [v] })]) {
        const err = refusal(encode);
        expect(err.code).toBe("encode-failed");
        expect(err.details).toMatchObject({ reason: "integer-too-wide", max: MAX_INTEGER_DIGITS, path: "$.a[0]" });
      }
      for (const mode of ["reject", "tag"] as const) {
        expect(refusal(() => assertStorableJson({ v }, mode)).details).toMatchObject({ reason: "integer-too-wide" });
      }
    }
  });

  it("decode refuses an integer text or a $bigint tag of more digits", () => {
    const digits = "9".repeat(MAX_INTEGER_DIGITS + 1);
    for (const [codec, text] of [
      [jsonCodec, `{"v":${digits}}`],
      [jsonCodec, `[-${digits}]`],
      [bigintJsonCodec, `{"v":{"$bigint":"${digits}"}}`],
      [bigintJsonCodec, `{"v":{"$bigint":"-${digits}"}}`],
    ] as const) {
      const err = refusal(() => codec.decode(bytes(text)));
      expect(err.code).toBe("decode-failed");
      expect(err.details).toMatchObject({ reason: "integer-too-wide", digits: MAX_INTEGER_DIGITS + 1, max: MAX_INTEGER_DIGITS });
    }
    // A plain number of many digits that is not an integer stays a double, as JSON.parse reads it.
    expect(jsonCodec.decode(bytes(`[0.${digits}]`))).toEqual([1]);
  });

  it("a stored frame holding an integer over the limit is a frame restore cannot read (decode-failed), not work", async () => {
    const path = join(dir, "wide.db");
    await buildStore("sqlite", path, [{ name: "g" }]);
    const backend = sqliteBackend(path);
    try {
      // Frame 11 (the tail) rewritten by another program: its value an integer of one digit over the limit.
      const key = walFrameKey(graphWalPrefix("g"), 11);
      const frame = new TextDecoder().decode(backend.read(key));
      backend.write(key, bytes(frame.replace(/"value":11/, `"value":${"7".repeat(MAX_INTEGER_DIGITS + 1)}`)));
      expect(() => walFrameCodec.decode(backend.read(key)!)).toThrow(CodecError);
      const torn: TornWriteInfo[] = [];
      const g = createGraph("g");
      g.state("a", 0);
      g.state("b", 0);
      g.derived("sum", ["a", "b"], (a, b) => (a as number) + (b as number));
      await restoreSnapshot(g, {
        snapshot: snapshotStorage(backend),
        wal: kvStorage(backend, { codec: walFrameCodec }),
        onTornWrite: (info) => {
          torn.push(info);
          return undefined; // the default: a tail is skipped
        },
      });
      expect(g.get("a")).toBe(10);
      expect(torn).toHaveLength(1);
      expect(torn[0]).toMatchObject({ frame_seq: 11, reason: "decode-failed", isTail: true });
      expect(torn[0]!.detail).toMatch(/1000001 digits/);
    } finally {
      backend.close();
    }
  });
});
