/**
 * Stored content no store of this format can hold, written by another writer (the TS reference's legacy checksum
 * matches it): a frame holding a lone surrogate or nested past MAX_JSON_DEPTH, a baseline written by JSON.stringify
 * with a lone surrogate. verify's verdict must be restore's outcome, and export / compact must agree with both
 * (they used to say "clean" while restore failed and export / compact failed every time). `frames` prints every
 * frame, whatever one of them holds.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, openBackend, setFrame, storePath, restoreOutcome as restored, type Kind } from "./fixtures/stores.js";
import { createGraph } from "../../src/graph/graph.js";
import { restoreSnapshot } from "../../src/persistence/restore.js";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";

const tmp = tempDir("unstorable");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

/** The TS reference's checksum text: keys sorted and re-inserted, then JSON.stringify (docs/protocol.md §2.2). */
function legacyText(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
      : v,
  );
}

/** Frame `seq` setting `a` to `valueJson` (JSON text), sealed with the legacy checksum, as the TS reference stores it. */
function legacyFrameBytes(seq: number, valueJson: string): Uint8Array {
  const head = `{"change":{"change":{"kind":"node.set","path":"a","value":`;
  const tail = `},"lifecycle":"data","structure":"graph.value","t_ns":${seq},"version":0},"frame_seq":${seq},"frame_t_ns":${seq},"lifecycle":"data","path":"a","t":"c"}`;
  const body = head + valueJson + tail;
  const checksum = createHash("sha256").update(legacyText(JSON.parse(body))).digest("hex");
  return new TextEncoder().encode(`${body.slice(0, -1)},"checksum":"${checksum}","format_version":1}`);
}

function writeKeys(kind: Kind, path: string, entries: ReadonlyArray<[string, Uint8Array]>): void {
  const b = openBackend(kind, path);
  try {
    for (const [key, bytes] of entries) b.write(key, bytes);
  } finally {
    b.close();
  }
}

const frameKey = (seq: number): string => walFrameKey(graphWalPrefix("g"), seq);

const restoreOutcome = restored;

/** verify's exit code for what restore did: 0/1 when it restored, 2 when it failed. */
function expectAgreement(verify: number | null, restored: string): void {
  if (restored === "ok") expect([0, 1]).toContain(verify);
  else expect(verify).toBe(2);
}

const SURROGATE = '"x\\ud800y"';
const DEEP = "[".repeat(1500) + "]".repeat(1500);

describe.each(KINDS)("content no store can hold (%s store)", (kind) => {
  it.each([
    ["a lone surrogate", SURROGATE],
    ["nesting 1500 deep", DEEP],
  ])("a legacy-sealed tail frame holding %s is a torn tail: verify, restore, export and compact agree", async (_label, value) => {
    const path = storePath(kind, tmp.path("tail"));
    await buildStore(kind, path, [{ name: "g", frameSeqs: [2, 3] }]);
    writeKeys(kind, path, [[frameKey(4), legacyFrameBytes(4, value)]]);

    const verify = runCli(["verify", path, "--graph", "g"]);
    expect(verify.stdout).toMatch(/torn frame seq 4 \(g\/wal\/00000000000000000004\): decode-failed \(it holds what no store can hold: .* at \$\.change\.change\.value.*\); tail: restore skips it/);
    expect(verify.code).toBe(1);
    const restored = await restoreOutcome(kind, path);
    expect(restored).toEqual({ code: "ok", a: 3 });
    expectAgreement(verify.code, restored.code);

    const exported = runCli(["export", path, "--graph", "g"]);
    expect(exported.code).toBe(0);
    expect(exported.stderr).toContain("skipped torn tail frame seq 4 (decode-failed)");
    expect((JSON.parse(exported.stdout) as { nodes: { a: { value: unknown } } }).nodes.a.value).toBe(3);
    const compacted = runCli(["compact", path, "--graph", "g"]);
    expect(compacted.code).toBe(0);
    expect(await restoreOutcome(kind, path)).toEqual({ code: "ok", a: 3 });
  });

  it("the same frame mid-stream: verify says not restorable, restore, export and compact refuse alike", async () => {
    const path = storePath(kind, tmp.path("mid"));
    await buildStore(kind, path, [{ name: "g", frameSeqs: [2, 3] }]);
    writeKeys(kind, path, [
      [frameKey(4), legacyFrameBytes(4, SURROGATE)],
      [frameKey(5), walFrameCodec.encode(setFrame(5, "a", 5))],
    ]);
    const verify = runCli(["verify", path, "--graph", "g"]);
    expect(verify.stdout).toContain("mid-stream: restore aborts (torn-write-mid-stream)");
    const restored = await restoreOutcome(kind, path);
    expect(restored.code).toBe("torn-write-mid-stream");
    expectAgreement(verify.code, restored.code);
    for (const cmd of ["export", "compact"]) {
      const r = runCli([cmd, path, "--graph", "g"]);
      expect(r.code, cmd).toBe(4);
      expect(r.stderr, cmd).toMatch(/^error torn-write-mid-stream: .*frame_seq=4 \(decode-failed: it holds what no store can hold/);
    }
  });

  it("a baseline written by JSON.stringify holding a lone surrogate is no usable baseline, for verify as for restore", async () => {
    const path = storePath(kind, tmp.path("baseline"));
    await buildStore(kind, path, [{ name: "g", frameSeqs: [] }]);
    const b = openBackend(kind, path);
    try {
      const record = JSON.parse(new TextDecoder().decode(b.read("g")!)) as { snapshot: { nodes: { a: { value: unknown } } } };
      record.snapshot.nodes.a.value = "x\ud800y";
      b.write("g", new TextEncoder().encode(JSON.stringify(record)));
    } finally {
      b.close();
    }
    const verify = runCli(["verify", path, "--graph", "g", "--json"]);
    const doc = JSON.parse(verify.stdout) as { graphs: Array<{ problems: Array<{ kind: string; detail: string }> }> };
    expect(doc.graphs[0]!.problems).toEqual([
      expect.objectContaining({ kind: "baseline-invalid", detail: expect.stringContaining("lone surrogate") as unknown }),
    ]);
    const restored = await restoreOutcome(kind, path);
    expect(restored.code).toBe("baseline-missing");
    expectAgreement(verify.code, restored.code);
    const exported = runCli(["export", path, "--graph", "g"]);
    expect(exported.code).toBe(4);
    expect(exported.stderr).toMatch(/^error baseline-missing: .*lone surrogate/);
  });

  it("frames prints every frame: one that cannot be printed as a frame gets the error line", async () => {
    const path = storePath(kind, tmp.path("frames"));
    await buildStore(kind, path, [{ name: "g", frameSeqs: [2] }]);
    // seq 4's checksum (outside the checksummed body) holds a lone surrogate: the frame decodes, but its canonical
    // JSON line cannot be written.
    const badChecksum = { ...setFrame(4, "a", 4), checksum: "\ud800" + "0".repeat(63) };
    writeKeys(kind, path, [
      [frameKey(3), legacyFrameBytes(3, SURROGATE)],
      [frameKey(4), new TextEncoder().encode(JSON.stringify(badChecksum))],
      [frameKey(5), walFrameCodec.encode(setFrame(5, "a", 5))],
    ]);
    const r = runCli(["frames", path, "--graph", "g"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.seq)).toEqual([2, 3, 4, 5]);
    expect(lines[0]).toMatchObject({ checksum_ok: true });
    expect(lines[1]).toMatchObject({ key: frameKey(3), error: expect.stringContaining("lone surrogate") as unknown });
    expect(lines[1]!.raw).toContain("x\\ud800y");
    expect(lines[2]).toMatchObject({ key: frameKey(4), error: expect.stringContaining("lone surrogate") as unknown });
    expect(lines[3]).toMatchObject({ checksum_ok: true, seq: 5 });
  });
});
