/**
 * Big writes over a slow uplink (review s13b F2): a proxy passes client→server bytes at 2 MiB/s, answers at once.
 * While the server read the Bind of a statement the connection had prepared before, its session showed `idle` with
 * an unchanged state_change: the answer watch took the write for one whose answer was lost and dropped it (in doubt,
 * nothing stored), and inside a split batch idle_in_transaction_session_timeout (the lease time) ended the batch; its
 * lease lapsed meanwhile, so the retries failed not-owner. Writes now go unnamed (a Parse first: the session is
 * `active` while the rest arrives) and the watch leaves a request alone while it is still arriving.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";

const database = useTestDatabase();
const open = useBackends(database, "slow-link");
const servers: Array<{ server: Server; sockets: Set<Socket> }> = [];
afterEach(async () => {
  for (const { server, sockets } of servers.splice(0)) {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
});

/** A proxy passing client→server bytes at `bytesPerSec` per connection (a slow uplink); answers pass at once. */
async function slowProxy(url: string, bytesPerSec: number): Promise<string> {
  const target = new URL(url);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    const queue: Buffer[] = [];
    const perTick = Math.max(1, Math.floor(bytesPerSec / 50));
    const timer = setInterval(() => {
      let budget = perTick;
      while (budget > 0 && queue.length > 0) {
        const head = queue[0] as Buffer;
        if (head.length <= budget) {
          upstream.write(head);
          budget -= head.length;
          queue.shift();
        } else {
          upstream.write(head.subarray(0, budget));
          queue[0] = head.subarray(budget);
          budget = 0;
        }
      }
    }, 20);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        clearInterval(timer);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (d: Buffer) => void queue.push(d));
    upstream.on("data", (d: Buffer) => void client.write(d));
  });
  servers.push({ server, sockets });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const proxied = new URL(url);
  proxied.port = String((server.address() as { port: number }).port);
  return proxied.href;
}

const LINK = 2 * 1024 * 1024; // 2 MiB/s
/**
 * The lease: the requests below take longer than it to arrive. 2 s, not less: every write checks the writer's own
 * deadline, which only a renewal answered within the lease moves on, and a 1 s lease (renewal every 250 ms) ran out
 * at a load average of ~24 (renewals through this proxy, in this process, beside megabytes of buffers: "its lease ran
 * out"), correct behaviour for a writer that could not renew in time, not what this file tests.
 */
const LEASE_MS = 2_000;

describe("big writes on a slow uplink (lease 2 s)", () => {
  it("a write whose request takes longer than the lease time to arrive commits", async () => {
    const db = await database();
    const backend = await open({ url: await slowProxy(db.url, LINK), lease: { ttlMs: LEASE_MS }, connectTimeoutMs: 5_000 });
    await backend.write("small", new Uint8Array([1])); // the write statement has been used on this connection
    // ~4 s on the wire: past the answer watch's first look (a lease time) and two of its ticks (renewal interval).
    const big = new Uint8Array(8 * 1024 * 1024).fill(7);
    await backend.write("big", big);
    expect((await backend.read("big"))?.byteLength).toBe(big.byteLength);
  }, 60_000);

  it("a split batch whose statements each take longer than the lease time to arrive commits, and the writer keeps its lease", async () => {
    const db = await database();
    const backend = await open({
      url: await slowProxy(db.url, LINK),
      lease: { ttlMs: LEASE_MS },
      connectTimeoutMs: 5_000,
      maxStatementBytes: 6 * 1024 * 1024,
    });
    await backend.write("small", new Uint8Array([1]));
    // Two statements of ~2.5 s each on the wire: the second arrives past idle_in_transaction_session_timeout (the lease).
    const v = new Uint8Array(5 * 1024 * 1024).fill(9);
    await backend.writeBatch([
      { op: "put", key: "x", value: v },
      { op: "put", key: "y", value: v },
    ]);
    expect((await backend.read("x"))?.byteLength).toBe(v.byteLength);
    expect((await backend.read("y"))?.byteLength).toBe(v.byteLength);
    await backend.write("after", new Uint8Array([2])); // still the store's writer
    expect(backend.lease).toBeDefined();
  }, 60_000);
});
