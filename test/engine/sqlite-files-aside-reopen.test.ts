/**
 * An engine's SQLite store whose files (s.db, -wal, -shm, -lock) are moved aside while their directory stays (a shared
 * data directory), its worker lost meanwhile: the reopen said not-owner "held-meanwhile" (final) and the pair stopped,
 * though the very files came back (review r298 F1). Now the reopen fails store-moved (may pass) while they are away
 * and opens them once back; what is written then is read back from the store. A directory removed and made again
 * stays not-owner: the lost writer's lock directory identity travels with its tenure to the reopen. Compare
 * test/engine/reopen-moved-aside (the directory itself moved aside).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import type { StoreSpec } from "../../src/engine/index.js";
import { createGraph } from "../../src/graph/graph.js";
import { attachSnapshotStorage } from "../../src/persistence/attach.js";
import { walFrameCodec } from "../../src/wal/codec.js";
import { openFaultEngine } from "../support/faults.js";
import { restoredA } from "../support/restored-a.js";

const root = mkdtempSync(join(tmpdir(), "grf-sqlite-files-aside-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const RETRY = { retry: { initialMs: 5, maxMs: 20 } };

const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => "resolved",
    (e: unknown) => `rejected ${(e as { code?: string }).code ?? String(e)}`,
  );

async function attached(dir: string) {
  mkdirSync(dir);
  const spec: StoreSpec = { kind: "sqlite", path: join(dir, "s.db") };
  const heard: string[] = [];
  const engine = openFaultEngine({ threads: 1, onError: (e) => void heard.push((e as { code?: string }).code ?? "?") });
  const g = createGraph("g");
  g.state("a", 0);
  const h = attachSnapshotStorage(g, [{ snapshot: engine.snapshot(spec, RETRY), wal: engine.kv(spec, { codec: walFrameCodec, ...RETRY }) }], { onError: () => {} });
  g.set("a", 1);
  expect(await outcome(h.flush())).toBe("resolved");
  const end = async (): Promise<void> => {
    await h.dispose().catch(() => {});
    await engine.close().catch(() => {});
  };
  return { spec, engine, g, h, heard, end };
}

it("files moved aside (directory kept), worker lost: store-moved while away; moved back, written again", async () => {
  const dir = join(root, "data");
  const aside = join(root, "aside");
  mkdirSync(aside);
  const { spec, engine, g, h, heard, end } = await attached(dir);
  try {
    await engine.injectFault(spec, "terminate");
    const files = readdirSync(dir);
    for (const f of files) renameSync(join(dir, f), join(aside, f));
    g.set("a", 2);
    expect(await outcome(h.flush())).toBe("rejected backend-error"); // the reopen: store-moved, may pass
    expect(readdirSync(dir)).toEqual([]); // nothing made at the path
    for (const f of files) renameSync(join(aside, f), join(dir, f));
    let back = await outcome(h.flush());
    for (let i = 0; i < 50 && back === "rejected backend-error"; i++) back = await outcome(h.flush());
    expect(heard).not.toContain("not-owner"); // before the fix: held-meanwhile, final
    if (back === "rejected write-refused") await h.rebaseline();
    g.set("a", 3);
    expect(await outcome(h.flush())).toBe("resolved");
  } finally {
    await end();
  }
  const reader = sqliteBackend(spec.kind === "sqlite" ? spec.path : "", { readOnly: true });
  try {
    expect(await restoredA(reader)).toBe(3);
  } finally {
    reader.close();
  }
}, 60_000);

it("directory removed and made again, worker lost: not-owner, nothing created there", async () => {
  const dir = join(root, "remade");
  const { spec, engine, g, h, heard, end } = await attached(dir);
  try {
    await engine.injectFault(spec, "terminate");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    g.set("a", 2);
    let res = await outcome(h.flush());
    for (let i = 0; i < 20 && res === "rejected backend-error" && !heard.includes("not-owner"); i++) res = await outcome(h.flush());
    expect(heard).toContain("not-owner");
    expect(existsSync(join(dir, "s.db"))).toBe(false);
  } finally {
    await end();
  }
}, 60_000);
