/**
 * Task 385: a writer's open looks for older holds of this process (lock-older-hold.ts) through /proc/self/fd, and read
 * every descriptor's link: a server with thousands of sockets paid a readlink (a walk of /proc) for each, at every
 * open. Now a descriptor is fstat'ed first and only a regular file on the lock files' device is read by name. Counted,
 * not timed: the readlinks of /proc/self/fd entries during an open, with 300 socket pairs open. The refusal itself
 * (both lock files removed under an open handle) is backend/file-check-lock-moved's. Real sockets, a real store.
 */
import fs, { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { fileBackend } from "../../src/backend/file.js";

const root = mkdtempSync(join(tmpdir(), "lock-older-hold-sockets-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const PAIRS = 300;

/** Runs `fn` counting the readlinks of /proc/self/fd entries it makes (the library imports readlinkSync by name). */
function countingFdReadlinks(fn: () => void): number {
  const original = fs.readlinkSync;
  let count = 0;
  fs.readlinkSync = ((path: fs.PathLike, ...rest: unknown[]) => {
    if (String(path).startsWith("/proc/self/fd/")) count++;
    return (original as (...args: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readlinkSync;
  syncBuiltinESMExports();
  try {
    fn();
  } finally {
    fs.readlinkSync = original;
    syncBuiltinESMExports();
  }
  return count;
}

it("a writer's open reads by name none of the process's sockets (only descriptors that may be lock files)", async () => {
  const dir = join(root, "store");
  fileBackend(dir).close();
  const server = net.createServer(() => {});
  const clients: net.Socket[] = [];
  await new Promise<void>((resolve) => server.listen(join(root, "sock"), resolve));
  try {
    for (let i = 0; i < PAIRS; i++) clients.push(await new Promise<net.Socket>((resolve) => {
      const c = net.connect(join(root, "sock"), () => resolve(c));
    }));
    const fds = readdirSync("/proc/self/fd").length;
    const readlinks = countingFdReadlinks(() => fileBackend(dir).close());
    // Before: one per descriptor of the process (>= 2 * PAIRS).
    expect(fds).toBeGreaterThan(2 * PAIRS);
    expect(readlinks).toBeLessThan(fds - 2 * PAIRS);
  } finally {
    for (const c of clients) c.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});
