/**
 * readMany on PostgreSQL returns at most READ_MANY_BYTES of values per statement: node-postgres holds a statement's
 * whole answer (bytea as hex text) before any row is used, so one answer of 512 frames of 1 MB peaked at 2.2× the
 * memory of reading them one by one (a review's measurement). Checked by the largest answer the server sends between
 * two ReadyForQuery messages, seen by a loopback proxy that parses the wire protocol's message frames, so no timing
 * and no mock: values of 24 MiB in all came back as one answer of ~48 MiB before; now no answer exceeds ~20 MiB,
 * and every value reads back exactly, past the budget and above the one-field limit (slices) alike, also inside
 * readConsistent.
 */
import { randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";

const database = useTestDatabase();
const open = useBackends(database, "read-many-bytes");
const servers: Array<{ server: Server; sockets: Set<Socket> }> = [];
afterEach(async () => {
  for (const { server, sockets } of servers.splice(0)) {
    for (const s of sockets) s.destroy(); // a backend still open on it would keep close() waiting
    await new Promise((r) => server.close(r));
  }
});

/** A proxy to `url` that records the bytes of every answer the server sends (up to and including ReadyForQuery). */
async function measuringProxy(url: string): Promise<{ url: string; answers: number[] }> {
  const target = new URL(url);
  const answers: number[] = [];
  const sockets = new Set<Socket>();
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
    client.on("data", (d) => upstream.write(d));
    // Server messages: a type byte, then an int32 length that counts itself. The first answer (to the startup
    // message) is framed the same way.
    let pending = Buffer.alloc(0);
    let answer = 0;
    upstream.on("data", (d: Buffer) => {
      client.write(d);
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 5) {
        const size = 1 + pending.readInt32BE(1);
        if (pending.length < size) break;
        answer += size;
        if (pending[0] === 0x5a /* Z: ReadyForQuery */) {
          answers.push(answer);
          answer = 0;
        }
        pending = pending.subarray(size);
      }
    });
  });
  servers.push({ server, sockets });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const proxied = new URL(url);
  proxied.port = String((server.address() as { port: number }).port);
  proxied.hostname = "127.0.0.1";
  return { url: proxied.toString(), answers };
}

const MiB = 1024 * 1024;

describe("postgresBackend readMany: bytes per statement", () => {
  it("a chunk of large values comes back in answers of bounded size, every value exact", async () => {
    const db = await database();
    const writer = await open();
    // Random bytes: the server cannot compress them, so what is stored is what crosses.
    const values = new Map<string, Uint8Array>();
    for (let i = 0; i < 48; i++) values.set(`f${String(i).padStart(3, "0")}`, randomBytes(512 * 1024));
    values.set("f024b", randomBytes(3 * MiB)); // above the one-field limit: read by slices
    values.set("g", Uint8Array.of(7));
    for (const batch of [...values].reduce<Array<Array<[string, Uint8Array]>>>((out, e, i) => (i % 8 === 0 ? [...out, [e]] : (out[out.length - 1]!.push(e), out)), [])) {
      await writer.writeBatch(batch.map(([key, value]) => ({ op: "put", key, value })));
    }
    const proxy = await measuringProxy(db.url);
    const reader = await open({ url: proxy.url, store: writer.store, readOnly: true });
    const keys = [...values.keys(), "missing"];
    const expected = keys.map((k) => values.get(k));
    for (const consistent of [false, true]) {
      proxy.answers.length = 0;
      const read = consistent ? await reader.readConsistent(() => reader.readMany(keys)) : await reader.readMany(keys);
      expect(read.map((v) => (v === undefined ? undefined : Buffer.from(v).toString("base64")))).toEqual(
        expected.map((v) => (v === undefined ? undefined : Buffer.from(v).toString("base64"))),
      );
      const largest = Math.max(...proxy.answers);
      // 8 MiB of values (one more value may cross the line) as hex text: ~17 MiB; before, all 27 MiB at once (~54 MiB).
      expect(largest, `answers ${proxy.answers.map((a) => (a / MiB).toFixed(1)).join(", ")} MiB`).toBeLessThan(20 * MiB);
      expect(largest).toBeGreaterThan(8 * MiB); // the budget is used, not read value by value
    }
  });
});
