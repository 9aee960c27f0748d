/**
 * A PostgreSQL server that accepts connections and then never answers (review s13a F2): a frozen host, or a network
 * that drops the answers and keeps the socket open. Here a fake server in front of the real one: a proxy that
 * swallows the answers of connections whose client sent a marker, or, frozen, passes nothing either way and never
 * closes its side of a socket (as a frozen host's kernel, which takes the FIN and waits for a process that never
 * runs). Before: the session setup run on each new connection (prepareSession) had no bound and the answer watch did
 * not see it, so an open, or a write that reconnected after a network blip, flush() and close() waited for ever; the
 * schema check at open had no bound either (no answer watch runs yet); a read-only handle's statements had none at
 * all (the answer watch was a writer's); and close() waited for ever for a frozen server to close its side after the
 * Terminate. Now the setup counts into connectTimeoutMs (the open bound), the schema check gets the same bound, both
 * fail as backend-error (not in doubt: nothing of a write was sent), a reader's statements are watched as a writer's
 * are, and closing a connection destroys its socket past that bound.
 */
import { afterEach, describe, expect, it } from "vitest";
import { postgresBackend, type PostgresBackend } from "../../src/backend/postgres.js";
import { StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { usePipes } from "../support/postgres-pipe.js";
import { errorOf } from "../support/wait.js";

const database = useTestDatabase();
const pipes = usePipes();
const backends: PostgresBackend[] = [];
afterEach(async () => {
  for (const b of backends.splice(0)) await b.close().catch(() => undefined);
});

/** Safety net for a hang: far above every bound involved (connect timeout 1.5 s, lease 1 s); never what is asserted. */
const HANG_MS = 30_000;

/** What `p` settled with ("resolved", or the error), or "hung" when it did not settle within HANG_MS. */
async function settled(p: Promise<unknown>): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(
        () => "resolved",
        (err: unknown) => err,
      ),
      new Promise((r) => {
        timer = setTimeout(() => r("hung"), HANG_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

interface SilentServer {
  readonly url: string;
  /** From now on a connection whose client sends `marker` gets no answer from that message on (until heal()). */
  silenceAfter(marker: string): void;
  /** Drops every connection made so far (a network blip). */
  cut(): void;
  /** Passes nothing more, either way, and never closes its side of any socket. */
  freeze(): void;
  heal(): void;
}

async function silentServer(url: string): Promise<SilentServer> {
  let marker: string | undefined;
  let frozen = false;
  const pipe = await pipes(url, {
    toServer: (d, pass, conn) => {
      if (frozen) return;
      if (marker !== undefined && d.includes(marker)) conn.marked = true;
      pass();
    },
    toClient: (_d, pass, conn) => {
      if (!frozen && !conn.marked) pass();
    },
    frozen: () => frozen,
  });
  return {
    url: pipe.url,
    silenceAfter: (m) => void (marker = m),
    cut: pipe.cut,
    freeze: () => void (frozen = true),
    heal: () => void (marker = undefined),
  };
}

/** The session setup's statement (prepareSession), sent on every new connection of a handle's data connection. */
const SETUP = "server_encoding";
/** The schema check's catalog query (postgres-schema.ts), the first statement of every open. */
const SCHEMA_CHECK = "pg_catalog.pg_inherits";

async function openThrough(url: string, schema: string, store: string, readOnly = false): Promise<PostgresBackend> {
  const b = await postgresBackend({ url, schema, store, readOnly, lease: { ttlMs: 1_000 }, connectTimeoutMs: 1_500 });
  backends.push(b);
  return b;
}

/** A store holding a = [1], and a read-only handle on it through a silent server, which has read it once. */
async function readerThrough(store: string): Promise<{ server: SilentServer; reader: PostgresBackend }> {
  const db = await database();
  const writer = await openThrough(db.url, db.schema, store);
  await writer.write("a", Uint8Array.of(1));
  const server = await silentServer(db.url);
  const reader = await openThrough(server.url, db.schema, store, true);
  expect(await reader.read("a")).toEqual(Uint8Array.of(1));
  return { server, reader };
}

/** A read that settled as a failure, not a hang. */
function expectFailedRead(err: unknown): void {
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe("backend-error");
}

function expectUnanswered(err: unknown, what = /session setup within 1500 ms/): void {
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe("backend-error");
  expect((err as StorageError).message).toMatch(what);
  expect((err as StorageError).details.inDoubt).toBeUndefined();
}

/** Opens a writer and a read-only handle through a server silent from `marker` on: each open fails, saying `what`. */
async function expectOpenUnanswered(marker: string, what: RegExp): Promise<void> {
  const db = await database();
  const server = await silentServer(db.url);
  server.silenceAfter(marker);
  for (const readOnly of [false, true]) {
    const opened = postgresBackend({ url: server.url, schema: db.schema, store: "open", readOnly, connectTimeoutMs: 1_500 });
    opened.then((b) => backends.push(b), () => undefined);
    expectUnanswered(await settled(opened), what);
  }
}

describe("a PostgreSQL server that accepts connections and never answers", () => {
  it("an open whose session setup gets no answer fails (writer and read-only)", async () => {
    await expectOpenUnanswered(SETUP, /session setup within 1500 ms/);
  }, 60_000);

  it("an open whose schema check gets no answer fails (writer and read-only)", async () => {
    await expectOpenUnanswered(SCHEMA_CHECK, /schema check at open within 1500 ms/);
  }, 60_000);

  it("a write that reconnects after a network blip, its session setup unanswered: flush fails not in doubt, close ends, the retry stores it", async () => {
    const db = await database();
    const server = await silentServer(db.url);
    const backend = await openThrough(server.url, db.schema, "reconnect-setup");
    const kv = kvStorage<number>(backend, { name: "kv", debounceMs: 60_000 });
    kv.save("a", 1);
    await kv.flush();
    // The blip drops the data connection; its replacement (whenever the handle notices the drop) gets no answer to
    // its session setup. The lease's connection sends no setup and renews on.
    server.silenceAfter(SETUP);
    server.cut();
    await errorOf(() => backend.read("a")); // fails on the dropped connection, or on the unanswered replacement
    kv.save("b", 2);
    expectUnanswered(await settled(kv.flush()));
    expect(backend.lease).toBeDefined();
    server.heal();
    expect(await settled(kv.flush())).toBe("resolved");
    expect(await settled(backend.close())).toBe("resolved");
    // Stored, as seen by another handle on the server itself.
    const reader = await openThrough(db.url, db.schema, "reconnect-setup", true);
    expect(await kvStorage<number>(reader, { name: "kv" }).load("b")).toBe(2);
  }, 60_000);

  it("a read-only handle's read whose answer is lost: the read fails, later reads work, close ends", async () => {
    const { server, reader } = await readerThrough("reader-lost");
    server.silenceAfter("grf_read"); // the read's statement; the watch's questions on another connection pass
    expectFailedRead(await settled(reader.read("a")));
    server.heal();
    expect(await reader.read("a")).toEqual(Uint8Array.of(1));
    expect(await settled(reader.close())).toBe("resolved");
  }, 60_000);

  it("a read-only handle's read against a frozen server (it cannot be asked either): the read fails, close ends", async () => {
    const { server, reader } = await readerThrough("reader-frozen");
    server.freeze();
    expectFailedRead(await settled(reader.read("a")));
    expect(await settled(reader.close())).toBe("resolved");
  }, 60_000);

  it("close() against a frozen server (it never closes its side): settles (writer and read-only)", async () => {
    const db = await database();
    const server = await silentServer(db.url);
    const writer = await openThrough(server.url, db.schema, "frozen-close");
    await writer.write("a", new Uint8Array([1]));
    const reader = await openThrough(server.url, db.schema, "frozen-close", true);
    expect(await reader.read("a")).toEqual(new Uint8Array([1]));
    server.freeze();
    expect(await settled(reader.close())).toBe("resolved");
    expect(await settled(writer.close())).toBe("resolved");
  }, 90_000);
});
