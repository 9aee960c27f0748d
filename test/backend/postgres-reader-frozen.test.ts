/**
 * A read-only PostgreSQL handle against a frozen host (the server's processes SIGSTOPped): its read fails in about
 * the lease time or so (docs/design.md §3.20). The reader's answer watch asked about a statement after the lease
 * time, waited the lease time for the question's answer, and counted the server unasked only from that wait's end,
 * so it gave up a second question later: 6.5 s for a 2 s lease (3.2×). Now a question waits half the lease time,
 * and one that got no answer and no byte counts from when it was asked: 3.05 s (1.5×).
 * The clock is faked (vitest fake timers for the watch's ticks, its bounds and performance.now), so the test asserts
 * where the failure falls on the watch's clock, never wall time; the server, its sockets and the freeze are real.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, expect, it, vi } from "vitest";
import { startPostgresServer, type PostgresServer } from "../../bench/lib/postgres-server.js";
import { postgresBackend, type PostgresBackend } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";

let server: PostgresServer;
let frozen: number[] = [];
const backends: PostgresBackend[] = [];

beforeAll(async () => {
  server = await startPostgresServer(); // this file's own: freezing it touches no other test
  await server.ready();
}, 90_000);
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  vi.useRealTimers();
  thaw();
  for (const b of backends.splice(0)) await b.close().catch(() => undefined);
});

/** Stops the server's processes (the postmaster and every backend it forked). */
function freeze(): void {
  const postmaster = Number(readFileSync(join(server.root, "data/postmaster.pid"), "utf8").split("\n")[0]);
  const children = execFileSync("pgrep", ["-P", String(postmaster)], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
  frozen = [postmaster, ...children];
  for (const pid of frozen) process.kill(pid, "SIGSTOP");
}

function thaw(): void {
  for (const pid of frozen.splice(0)) {
    try {
      process.kill(pid, "SIGCONT");
    } catch {
      // gone already
    }
  }
}

/** Lets real I/O run (sockets connecting, closing) between steps of the fake clock. */
async function realTurns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

it("a read on a frozen host fails within 2 lease times of the watch's clock (it took 3.2)", async () => {
  const ttlMs = 2000;
  const writer = await postgresBackend({ url: server.url, store: "frozen-reader" });
  backends.push(writer);
  await writer.writeBatch([{ op: "put", key: "k", value: new Uint8Array([1]) }]);
  // The watch's interval, its question's bound and its clock are created fake from here on.
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "performance"] });
  const reader = await postgresBackend({ url: server.url, store: "frozen-reader", readOnly: true, lease: { ttlMs } });
  backends.push(reader);
  expect(Array.from((await reader.read("k")) ?? [])).toEqual([1]);
  freeze();
  let outcome: unknown;
  const reading = reader.read("k").then(
    () => (outcome = "resolved"),
    (err: unknown) => (outcome = err),
  );
  // 50 ms of the watch's clock at a time, real I/O between steps, up to 2 lease times.
  const steps = (2 * ttlMs) / 50;
  for (let i = 0; i < steps && outcome === undefined; i++) {
    await vi.advanceTimersByTimeAsync(50);
    await realTurns(20);
  }
  vi.useRealTimers();
  thaw();
  await reading;
  expect(outcome).toBeInstanceOf(StorageError);
  expect((outcome as StorageError).code).toBe("backend-error");
}, 60_000);
