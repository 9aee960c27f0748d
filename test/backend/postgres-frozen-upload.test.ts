/**
 * A writer frozen (SIGSTOP) or cut off in the middle of sending a statement (review s13b F1). After a Parse the
 * server waits for the rest of the statement in state `active` (wait_event ClientRead), where
 * idle_in_transaction_session_timeout never fires: inside a split batch, whose transaction holds the lease row's lock
 * since its first statement, the store was locked for as long as the writer stayed frozen (a contender waiting 10 s
 * failed with "Query read timeout", its abandoned lock waits left running on the server), and the stalled writer's
 * own batch and close() never settled. Now a contender ends the session of a holder whose lease lapsed by the
 * database clock (its lock waits end on the server: lock_timeout), and the writer's answer watch drops a request
 * that stopped arriving; one whose bytes were still queued in the writer is reported as not stored (not in doubt).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { postgresBackend, type PostgresBackend } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { sleep } from "../support/wait.js";
import { settledTo } from "../support/settled.js";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ENTRY = new URL("../../dist/src/index.js", import.meta.url).href;
const database = useTestDatabase();
const servers: Array<{ server: Server; sockets: Set<Socket> }> = [];
const children: ChildProcess[] = [];
const backends: PostgresBackend[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill("SIGCONT");
    c.kill("SIGKILL");
  }
  for (const { server, sockets } of servers.splice(0)) {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
  for (const b of backends.splice(0)) await b.close().catch(() => undefined);
});

/** The part of a split batch's second statement that is new on the connection: its Parse names the deletes. */
const SECOND_STATEMENT = "DELETE FROM";

async function listen(server: Server, sockets: Set<Socket>, url: string): Promise<string> {
  servers.push({ server, sockets });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const proxied = new URL(url);
  proxied.port = String((server.address() as { port: number }).port);
  return proxied.href;
}

/** A plain proxy that calls `onMarker` (synchronously) the first time a client sends bytes containing `marker`. */
async function watchingProxy(url: string, marker: string, onMarker: () => void): Promise<string> {
  const target = new URL(url);
  const sockets = new Set<Socket>();
  let seen = false;
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (d: Buffer) => {
      if (!seen && d.includes(marker)) {
        seen = true;
        onMarker();
      }
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => void client.write(d));
  });
  return listen(server, sockets, url);
}

/**
 * A proxy reading the client's protocol messages: once armed, the first Parse message containing the marker passes,
 * then half of the message after it (the Bind carrying the values), and nothing more (the network stalls there; the
 * server's answers still pass). `holdBack`: the stalled client's bytes are not read any more either (they stay queued
 * in the client), else they are read and dropped.
 */
async function stallingProxy(url: string, holdBack = false) {
  const target = new URL(url);
  const sockets = new Set<Socket>();
  let marker: string | undefined;
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    let pending = Buffer.alloc(0);
    let started = false; // the startup message has no type byte
    let stalled = false;
    let afterParse = false;
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (d: Buffer) => {
      if (stalled) return;
      pending = Buffer.concat([pending, d]);
      for (;;) {
        if (!started) {
          if (pending.length < 4) return;
          const len = pending.readInt32BE(0);
          if (pending.length < len) return;
          upstream.write(pending.subarray(0, len));
          pending = pending.subarray(len);
          started = true;
          continue;
        }
        if (pending.length < 5) return;
        const type = String.fromCharCode(pending[0] as number);
        const len = pending.readInt32BE(1) + 1;
        if (afterParse) {
          upstream.write(pending.subarray(0, Math.min(pending.length, Math.floor(len / 2))));
          stalled = true;
          if (holdBack) client.pause();
          return;
        }
        if (pending.length < len) return;
        const msg = pending.subarray(0, len);
        upstream.write(msg);
        pending = pending.subarray(len);
        if (marker !== undefined && type === "P" && msg.includes(marker)) {
          afterParse = true;
          marker = undefined;
        }
      }
    });
    upstream.on("data", (d: Buffer) => void client.write(d));
  });
  const proxied = await listen(server, sockets, url);
  return { url: proxied, stallAfterParseOf: (m: string) => void (marker = m) };
}

const WRITER = `
const [, url, schema, store, entry] = process.argv;
const { postgresBackend } = await import(entry);
const b = await postgresBackend({ url, schema, store, lease: { ttlMs: 1000 }, maxStatementBytes: 30 * 1024 * 1024 });
await b.write("d", Uint8Array.of(1)); // the write statement of puts has been used on the data connection
process.stdout.write("ready\\n");
process.stdin.once("data", async () => {
  const big = new Uint8Array(24 * 1024 * 1024).fill(5);
  const r = await b.writeBatch([
    { op: "put", key: "x", value: big },
    { op: "put", key: "y", value: big },
    { op: "delete", key: "d" },
  ]).then(() => "resolved", (e) => "rejected " + e.code);
  process.stdout.write(r + "\\n");
});
`;

describe("a writer frozen inside a split batch, in the middle of sending a statement", () => {
  it("a frozen process (SIGSTOP): a waiting contender takes the store over, and nothing of the batch is stored", async () => {
    const db = await database();
    const store = "sigstop-after-parse";
    let child: ChildProcess | undefined;
    let stopped = false;
    // Chunk 1: x (puts); chunk 2: y + delete d (its Parse goes first, then a 24 MB Bind, cut by the freeze).
    const url = await watchingProxy(db.url, SECOND_STATEMENT, () => {
      child?.kill("SIGSTOP");
      stopped = true;
    });
    child = spawn(process.execPath, ["--input-type=module", "-e", WRITER, url, db.schema, store, ENTRY], {
      cwd: REPO_ROOT,
      stdio: ["pipe", "pipe", "inherit"],
    });
    children.push(child);
    let out = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (s: string) => void (out += s));
    while (!out.includes("ready")) await sleep(20);
    child.stdin?.write("go\n");
    while (!stopped) await sleep(20);
    const b = await postgresBackend({ url: db.url, schema: db.schema, store, lease: { ttlMs: 1000, waitMs: 10_000, holder: "B" } });
    backends.push(b);
    expect(b.lease?.holder).toBe("B");
    expect(await b.read("x")).toBeUndefined();
    expect(await b.read("y")).toBeUndefined();
    expect(Array.from((await b.read("d")) ?? [])).toEqual([1]);
    child.kill("SIGCONT");
    while (!/resolved|rejected/.test(out)) await sleep(20);
    expect(out).toContain("rejected");
    expect(await b.read("x")).toBeUndefined();
  }, 90_000);

  it("a stalled network: the contender takes over, leaves no lock wait behind, and the writer's batch and close() settle", async () => {
    const db = await database();
    const proxy = await stallingProxy(db.url);
    const store = "stall-after-parse";
    const a = await postgresBackend({ url: proxy.url, schema: db.schema, store, lease: { ttlMs: 1_000, holder: "A" }, maxStatementBytes: 2_500_000 });
    backends.push(a);
    await a.write("d", new Uint8Array([1]));
    const big = new Uint8Array(2_000_000).fill(3);
    proxy.stallAfterParseOf(SECOND_STATEMENT);
    const batch = settledTo(
      a.writeBatch([
        { op: "put", key: "x", value: big },
        { op: "put", key: "y", value: big },
        { op: "delete", key: "d" },
      ]),
    );
    const raw = await db.raw();
    const b = await postgresBackend({ url: db.url, schema: db.schema, store, lease: { ttlMs: 1_000, waitMs: 8_000, holder: "B" } });
    backends.push(b);
    expect(b.lease?.epoch).toBe(a.lease!.epoch + 1);
    // This file's statements only (they name its schema): files running in parallel share the server, and another
    // file's reader waiting for a lock it took on purpose is no lock wait of this store.
    const waits = await raw.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = 'graphrefly-storage' AND wait_event_type = 'Lock' AND strpos(query, $1) > 0`,
      [db.schema],
    );
    expect(waits.rows[0].n).toBe(0);
    // The server ended A's session (its transaction rolled back): the batch fails, nothing of it stored, not in doubt.
    const err = await batch;
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).details.inDoubt).not.toBe(true);
    expect(await b.read("x")).toBeUndefined();
    expect(Array.from((await b.read("d")) ?? [])).toEqual([1]);
    expect(await settledTo(a.close())).toBe("resolved");
  }, 60_000);

  it("a stalled network and no contender: the writer's batch fails, not in doubt, and close() ends", async () => {
    const db = await database();
    const proxy = await stallingProxy(db.url);
    const a = await postgresBackend({ url: proxy.url, schema: db.schema, store: "stall-alone", lease: { ttlMs: 1_000 }, maxStatementBytes: 300_000 });
    backends.push(a);
    await a.write("d", new Uint8Array([1]));
    const v = new Uint8Array(200_000).fill(3);
    proxy.stallAfterParseOf(SECOND_STATEMENT);
    const err = await settledTo(
      a.writeBatch([
        { op: "put", key: "x", value: v },
        { op: "put", key: "y", value: v },
        { op: "delete", key: "d" },
      ]),
    );
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("backend-error");
    expect((err as StorageError).details.inDoubt).not.toBe(true);
    expect(await settledTo(a.close())).toBe("resolved");
  }, 60_000);

  it("a write dropped while part of it is still queued in the writer is reported as not stored, not in doubt", async () => {
    const db = await database();
    const proxy = await stallingProxy(db.url, true);
    const a = await postgresBackend({ url: proxy.url, schema: db.schema, store: "stall-queued", lease: { ttlMs: 1_000 } });
    backends.push(a);
    // A single statement, new on the connection (its Parse goes first): the server commits at its end, which never
    // leaves the writer (the proxy reads no more of it).
    proxy.stallAfterParseOf("INSERT INTO");
    const err = await settledTo(a.write("big", new Uint8Array(16 * 1024 * 1024).fill(4)));
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("backend-error");
    expect((err as StorageError).details.inDoubt).not.toBe(true);
    expect((err as StorageError).message).toMatch(/not yet sent/);
    proxy.stallAfterParseOf("never");
    expect(await settledTo(a.close())).toBe("resolved");
  }, 60_000);
});
