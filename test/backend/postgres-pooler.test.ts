/**
 * Behind a connection pooler (PgBouncer) a PostgreSQL backend cannot work (docs/postgres.md, "Connection poolers"),
 * and PgBouncer says so only as "unsupported startup parameter: …" (08P01) when it refuses the session settings each
 * connection sends at its start (review r286 F4). The open's backend-error now names the pooler as the likely cause,
 * and a writer waiting for the store (lease.waitMs) reports it at once: a protocol violation is no outage to wait out.
 *
 * The pooler is a loopback server answering the real driver's startup packet as PgBouncer does (an ErrorResponse with
 * SQLSTATE 08P01, then closing): no pgbouncer install. The mapping itself (pgError) is checked on its own too.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { describeTarget, isTransientOutage, pgError } from "../../src/backend/postgres-errors.js";
import { postgresBackend } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";
import { errorOf } from "../support/wait.js";

const REFUSAL = "unsupported startup parameter: lock_timeout";

function withCode(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** An ErrorResponse message of the PostgreSQL protocol: severity, SQLSTATE and message fields. */
function errorResponse(code: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`, "utf8");
  const head = Buffer.alloc(5);
  head.write("E", 0, "latin1");
  head.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

const servers: Array<{ server: Server; sockets: Set<Socket> }> = [];
afterEach(async () => {
  for (const { server, sockets } of servers.splice(0)) {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
});

/** A pooler that refuses every connection's startup parameters; `startups` counts the connections it refused. */
async function refusingPooler(): Promise<{ url: string; startups: () => number }> {
  let startups = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.on("close", () => sockets.delete(socket));
    socket.once("data", () => {
      startups++;
      socket.end(errorResponse("08P01", REFUSAL));
    });
  });
  servers.push({ server, sockets });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return { url: `postgres://grf:secret-pw@127.0.0.1:${port}/grf`, startups: () => startups };
}

describe("a PostgreSQL backend behind a connection pooler", () => {
  it("fails the open with backend-error 08P01 whose message says poolers are not supported", async () => {
    const pooler = await refusingPooler();
    const err = await errorOf(() => postgresBackend({ url: pooler.url, store: "pooled", connectTimeoutMs: 5_000 }));
    expect(err).toBeInstanceOf(StorageError);
    const e = err as StorageError;
    expect({ code: e.code, pgCode: e.details.pgCode }).toEqual({ code: "backend-error", pgCode: "08P01" });
    expect(e.message).toContain(REFUSAL);
    expect(e.message).toContain("connection pooler");
    expect(e.message).toContain('docs/postgres.md, "Connection poolers"');
    expect(e.message).not.toContain("secret-pw");
  });

  it("a writer waiting for the store reports the refusal at once instead of waiting it out", async () => {
    const pooler = await refusingPooler();
    // A 10-minute wait: before, 08P01 counted as an outage (class 08) and the open tried again until the wait ended.
    const err = await errorOf(() =>
      postgresBackend({ url: pooler.url, store: "pooled-wait", connectTimeoutMs: 5_000, lease: { holder: "A", waitMs: 600_000 } }),
    );
    expect({ code: (err as StorageError).code, pgCode: (err as StorageError).details.pgCode }).toEqual({
      code: "backend-error",
      pgCode: "08P01",
    });
    expect(pooler.startups()).toBe(1);
  });
});

describe("pgError on a pooler's refusal", () => {
  const target = describeTarget({ url: "postgres://u:pw@db.example:6432/app" });

  it("adds the pooler hint to 08P01 'unsupported startup parameter' only", () => {
    const refused = pgError(withCode("08P01", REFUSAL), "cannot open store", target) as StorageError;
    expect(refused.message).toBe(
      `cannot open store (postgres://u@db.example:6432/app): ${REFUSAL}. This looks like a connection pooler (such as` +
        ` PgBouncer) between this process and PostgreSQL: poolers are not supported, connect to the server directly` +
        ` (docs/postgres.md, "Connection poolers")`,
    );
    expect(refused.details).toMatchObject({ pgCode: "08P01", server: "postgres://u@db.example:6432/app" });
    // Another protocol violation, and the same words under another code, are not a pooler's startup refusal.
    const other = pgError(withCode("08P01", "invalid message length"), "postgres write failed", target) as StorageError;
    expect(other.message).not.toContain("pooler");
    const notPg = pgError(new Error(REFUSAL), "postgres write failed", target) as StorageError;
    expect(notPg.message).not.toContain("pooler");
  });

  it("a protocol violation (08P01) is not an outage a waiting writer sits out; a lost connection (08006) still is", () => {
    expect(isTransientOutage(withCode("08P01", REFUSAL))).toBe(false);
    expect(isTransientOutage(withCode("08006", "connection failure"))).toBe(true);
  });
});
