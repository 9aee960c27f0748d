/**
 * `verify` against real stores: clean, an injected torn tail, a mid-stream corruption, a lost frame, frames below
 * a compacted baseline, and no baseline. Exit codes: 0 clean, 1 restorable with skipped frames, 2 not restorable.
 */
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, damageFrame, setFrame, storePath, writeRaw } from "./fixtures/stores.js";
import { sealWalFrame, walFrameCodec } from "../../src/wal/codec.js";

const tmp = tempDir("verify");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

interface VerifyDoc {
  exitCode: number;
  graphs: Array<{
    name: string;
    baselineSeq: number | null;
    frames: number;
    framesAbove: number;
    verdict: string;
    problems: Array<Record<string, unknown>>;
  }>;
}

function verifyJson(path: string, ...extra: string[]): { code: number | null; doc: VerifyDoc } {
  const r = runCli(["verify", path, "--json", ...extra]);
  expect(r.stderr).toBe("");
  return { code: r.code, doc: JSON.parse(r.stdout) as VerifyDoc };
}

describe.each(KINDS)("verify (%s store)", (kind) => {
  it("exits 0 for a clean store and says so", async () => {
    const path = storePath(kind, tmp.path("clean"));
    await buildStore(kind, path, [{ name: "g" }, { name: "h", baselineSeq: 20, frameSeqs: [21, 22] }]);
    const r = runCli(["verify", path]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('graph "g": baseline seq 1, 10 frames (10 above the baseline)\n  clean');
    expect(r.stdout).toContain('graph "h": baseline seq 20, 2 frames (2 above the baseline)\n  clean');
    expect(r.stdout).toContain("result: clean (exit 0)");
    expect(r.stderr).toBe("");
  });

  it("exits 1 for a torn tail: restore skips it", async () => {
    const path = storePath(kind, tmp.path("tail"));
    await buildStore(kind, path, [{ name: "g" }]);
    damageFrame(kind, path, "g", 11, "truncate");
    const r = runCli(["verify", path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/torn frame seq 11 \(g\/wal\/00000000000000000011\): decode-failed \(.*\); tail: restore skips it/);
    expect(r.stdout).toContain("result: restorable (exit 1)");

    const { code, doc } = verifyJson(path);
    expect(code).toBe(1);
    expect(doc.exitCode).toBe(1);
    expect(doc.graphs[0]).toMatchObject({ name: "g", verdict: "restorable", baselineSeq: 1, frames: 10, framesAbove: 10 });
    expect(doc.graphs[0]!.problems).toEqual([
      expect.objectContaining({ kind: "torn", seq: 11, reason: "decode-failed", position: "tail", restorable: true }),
    ]);
  });

  it("exits 2 for a mid-stream corruption and names the frame", async () => {
    const path = storePath(kind, tmp.path("mid"));
    await buildStore(kind, path, [{ name: "g" }]);
    damageFrame(kind, path, "g", 5, "checksum");
    const r = runCli(["verify", path]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(
      "torn frame seq 5 (g/wal/00000000000000000005): checksum-mismatch; mid-stream: restore aborts (torn-write-mid-stream)",
    );
    expect(r.stdout).toContain("NOT restorable");
    expect(r.stdout).toContain("result: not-restorable (exit 2)");
  });

  it("reports a tail and a mid-stream corruption together; the worst verdict wins", async () => {
    const path = storePath(kind, tmp.path("both"));
    await buildStore(kind, path, [{ name: "g" }, { name: "ok" }]);
    damageFrame(kind, path, "g", 7, "truncate");
    damageFrame(kind, path, "g", 11, "checksum");
    const { code, doc } = verifyJson(path);
    expect(code).toBe(2);
    const g = doc.graphs.find((x) => x.name === "g")!;
    expect(g.verdict).toBe("not-restorable");
    expect(g.problems.map((p) => [p.seq, p.reason, p.position])).toEqual([
      [7, "decode-failed", "mid-stream"],
      [11, "checksum-mismatch", "tail"],
    ]);
    expect(doc.graphs.find((x) => x.name === "ok")!.verdict).toBe("clean");
    // --graph checks one graph only.
    expect(verifyJson(path, "--graph", "ok").code).toBe(0);
  });

  it("exits 2 for a gap in the seq chain above the baseline (a lost frame)", async () => {
    const path = storePath(kind, tmp.path("gap"));
    await buildStore(kind, path, [{ name: "g" }]);
    damageFrame(kind, path, "g", 6, "delete");
    damageFrame(kind, path, "g", 7, "delete");
    const r = runCli(["verify", path]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("gap: seq 6..7 missing above the baseline");
  });

  it("expects the chain to start right after the baseline's own seq", async () => {
    const path = storePath(kind, tmp.path("late"));
    await buildStore(kind, path, [{ name: "g", baselineSeq: 3, frameSeqs: [5, 6] }]);
    const { code, doc } = verifyJson(path);
    expect(code).toBe(2);
    expect(doc.graphs[0]!.problems).toEqual([{ kind: "gap", from: 4, to: 4, restorable: false }]);
  });

  it("damage at or below the baseline never blocks restore: exit 1, reported as below-baseline", async () => {
    const path = storePath(kind, tmp.path("below"));
    // Frames 2..4 were kept by compaction below baseline 4; 5..6 are live. Seq gaps below a baseline are normal.
    await buildStore(kind, path, [{ name: "g", baselineSeq: 4, frameSeqs: [1, 3, 4, 5, 6] }]);
    damageFrame(kind, path, "g", 3, "checksum");
    const { code, doc } = verifyJson(path);
    expect(code).toBe(1);
    expect(doc.graphs[0]).toMatchObject({ frames: 5, framesAbove: 2, verdict: "restorable" });
    expect(doc.graphs[0]!.problems).toEqual([expect.objectContaining({ kind: "torn", seq: 3, position: "below-baseline" })]);
  });

  it("treats a frame whose frame_seq disagrees with its key as torn, and reports the duplicate claim", async () => {
    const path = storePath(kind, tmp.path("dup"));
    await buildStore(kind, path, [{ name: "g" }]);
    // Key 5 holds a well-formed, correctly checksummed frame that says it is frame 6.
    writeRaw(kind, path, "g/wal/00000000000000000005", walFrameCodec.encode(sealWalFrame(setFrame(6, "a", 6))));
    const { code, doc } = verifyJson(path);
    expect(code).toBe(2);
    expect(doc.graphs[0]!.problems).toEqual([
      expect.objectContaining({ kind: "torn", seq: 5, reason: "decode-failed", detail: "frame_seq 6 does not match its key", position: "mid-stream" }),
      { kind: "duplicate", seq: 6, key: "g/wal/00000000000000000006", restorable: true },
    ]);
  });

  it("exits 2 when frames exist but no usable baseline does", async () => {
    const path = storePath(kind, tmp.path("nobase"));
    await buildStore(kind, path, [{ name: "g", baselineSeq: null, frameSeqs: [1, 2] }, { name: "h" }]);
    writeRaw(kind, path, "h", new TextEncoder().encode('{"mode":"diff","name":"h"}'));
    const r = runCli(["verify", path]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('graph "g": no usable baseline, 2 frames (2 above the baseline)');
    expect(r.stdout).toContain("no baseline record: restore fails (baseline-missing)");
    expect(r.stdout).toContain('baseline record is not valid: mode must be "full", got "diff"');
  });
});

/**
 * Rows another program wrote into a SQLite store with the wrong types (issue 11 item 7): a TEXT or INTEGER value
 * where bytes belong, a BLOB key. verify names each such row and what it found, and exits with its corruption code
 * (2: restore would fail on it); inspect and frames fail with the typed corrupt-store error, never an internal one.
 */
describe("verify (sqlite store with rows of the wrong type)", () => {
  const FRAME_5 = "g/wal/00000000000000000005";

  async function storeWith(name: string, sql: string, ...params: unknown[]): Promise<string> {
    const path = storePath("sqlite", tmp.path(name));
    await buildStore("sqlite", path, [{ name: "g" }]);
    const db = new Database(path);
    db.prepare(sql).run(...params);
    db.close();
    return path;
  }

  it.each([
    ["TEXT", "not bytes", "a value of type TEXT"],
    ["INTEGER", 42, "a value of type a number"],
  ])("a %s value under a frame key: named with what was found, exit 2", async (_t, value, found) => {
    const path = await storeWith(`value-${String(value)}`, "UPDATE graphrefly_storage SET v = ? WHERE k = ?", value, FRAME_5);
    const r = runCli(["verify", path]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`corrupt row ${FRAME_5}: ${found}`);
    const { code, doc } = verifyJson(path);
    expect(code).toBe(2);
    expect(doc.graphs[0]!.verdict).toBe("not-restorable");
    expect(doc.graphs[0]!.problems).toContainEqual(expect.objectContaining({ kind: "corrupt-row", key: FRAME_5, found }));

    for (const args of [["inspect", path], ["frames", path, "--graph", "g"]]) {
      const other = runCli(args);
      expect(other.code).toBe(4);
      expect(other.stderr).toMatch(/^error corrupt-store: .*00000000000000000005/);
    }
  });

  it("a BLOB key (a foreign tool's row): named in hex with what was found, exit 2; inspect/frames give corrupt-store", async () => {
    const path = await storeWith("blob-key", "INSERT INTO graphrefly_storage (k, v) VALUES (?, ?)", Buffer.from("g/wal/x"), Buffer.from([1]));
    const hex = `0x${Buffer.from("g/wal/x").toString("hex")}`;
    const r = runCli(["verify", path]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`corrupt row ${hex}:`);
    const { code, doc } = verifyJson(path);
    expect(code).toBe(2);
    expect(doc.exitCode).toBe(2);
    expect(JSON.stringify(doc)).toContain(hex);

    const inspect = runCli(["inspect", path]);
    expect(inspect.code).toBe(4);
    expect(inspect.stderr).toBe(`error corrupt-store: sqlite store ${path}: row "${hex}" holds a key of type a BLOB, not what graphrefly-storage writes (a TEXT key and a BLOB value)\n`);
    // A graph's frames are a range of TEXT keys, which never meets a BLOB key (SQLite sorts BLOBs after TEXT).
    const frames = runCli(["frames", path, "--graph", "g"]);
    expect(frames.stderr).toBe("");
    expect(frames.code).toBe(0);
  });
});
