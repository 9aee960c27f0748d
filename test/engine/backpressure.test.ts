/**
 * Issue 11 item 1: backpressure. A child process saves far faster than its store's actor can commit (a slow codec
 * in the worker stands in for a slow disk). Past maxPendingBytes a save throws StorageError("backpressure") and
 * is not accepted; the producer awaits tier.drained() and saves it again. The process's RSS stays within a bound
 * set by maxPendingBytes (before: the backlog piled up in message queues, ~2 GB per 4 M saves), engine.stats()
 * shows the pending bytes, and every value is stored at the end. Memory is asserted, never time.
 */
import { fork } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { openStorageEngine } from "../../src/engine/index.js";
import { REPO_ROOT, tempRoot } from "./fixtures/helpers.js";

const root = tempRoot("backpressure");
afterAll(() => root.remove());

const PRODUCER = join(REPO_ROOT, "test/engine/fixtures/overload-producer.mjs");
const SLOW_CODEC = pathToFileURL(join(REPO_ROOT, "test/engine/fixtures/slow-codec.mjs")).href;
const MiB = 1024 * 1024;

interface Report {
  baselineRss: number;
  peakRss: number;
  accepted: number;
  refusals: number;
  pendingBytesSeen: number;
  error?: string;
}

function produce(cfg: Record<string, unknown>): Promise<Report> {
  return new Promise((resolve, reject) => {
    const child = fork(PRODUCER, [JSON.stringify(cfg)], { cwd: REPO_ROOT, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    let report: Report | undefined;
    child.on("message", (m) => (report = m as Report));
    child.on("exit", (code) => (report ? resolve(report) : reject(new Error(`producer exited with ${code} without a report`))));
  });
}

describe("backpressure (engine)", () => {
  it("a producer several times faster than its store stays within the memory bound and loses nothing", async () => {
    const path = root.fresh("overload.db");
    const maxPendingBytes = 8 * MiB;
    const total = 60_000;
    const valueBytes = 4000;
    const r = await produce({ path, total, valueBytes, maxPendingBytes, codecUrl: SLOW_CODEC });
    expect(r.error).toBeUndefined();
    expect(r.refusals, "saves were refused with backpressure").toBeGreaterThan(0);
    // stats() shows the pending bytes: within one save of the bound when a save was refused, never past it (a write
    // is refused when it would not fit, docs/design.md §3.19).
    expect(r.pendingBytesSeen).toBeGreaterThan(maxPendingBytes - 64 * 1024);
    expect(r.pendingBytesSeen).toBeLessThanOrEqual(maxPendingBytes);
    // 240 MB were saved; the process grew by a bounded amount (pending values live as a message, an object and
    // bytes; the rest is allocator and GC slack, independent of the total). Before: the whole backlog, or the
    // worker died of it.
    expect(r.peakRss - r.baselineRss).toBeLessThan(2 * maxPendingBytes + 160 * MiB);

    const backend = sqliteBackend(path);
    try {
      const keys = backend.list("k");
      expect(keys).toHaveLength(total);
      for (const i of [0, total / 2, total - 1]) {
        const bytes = backend.read(`k${String(i).padStart(8, "0")}`);
        expect(JSON.parse(new TextDecoder().decode(bytes))).toEqual({ i, pad: "x".repeat(valueBytes) });
      }
    } finally {
      backend.close();
    }
  }, 300_000);

  it("maxPendingBytes is validated when the engine opens", () => {
    expect(() => openStorageEngine({ maxPendingBytes: 0 })).toThrow(RangeError);
    expect(() => openStorageEngine({ maxPendingBytes: -1 })).toThrow(RangeError);
    expect(() => openStorageEngine({ maxPendingBytes: "64MB" as unknown as number })).toThrow(TypeError);
  });
});
