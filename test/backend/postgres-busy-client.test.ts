/**
 * A read whose answer is arriving is not taken for a lost one when this process is slow to take it in. Under a busy
 * event loop (here 300 ms of synchronous work at every turn, as a loaded main thread), a big answer's tail drains
 * from the socket's buffers over several turns while the server already shows the session idle, and the answer
 * watch's own question (a reader opens its connection at the first one: several round trips, one a turn) is not
 * answered within the patience. The watch dropped the healthy read (backend-error "Connection terminated"); bytes
 * arriving on the data socket now tell it the answer is coming (src/backend/postgres-answer-watch.ts).
 */
import { describe, expect, it } from "vitest";
import type { PostgresBackend } from "../../src/backend/postgres.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";

const database = useTestDatabase();
const open = useBackends(database, "busy-client");

/**
 * Big enough that the answer drains over many busy turns, well past the lease time: a 300 ms turn takes in about
 * half a MiB (24 MiB took ~16 s in CI, for no more coverage). At 8 MiB both cases still fail at 121ac40, before the
 * answer watch counted arriving bytes ("Connection terminated").
 */
const BIG = 8 * 1024 * 1024;
const LEASE = { ttlMs: 1_000 };

function pattern(bytes: number, seed: number): Uint8Array {
  const v = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) v[i] = (i + seed) % 251;
  return v;
}

/** Runs `read` while every turn of the event loop spends `turnMs` busy; what it resolved or rejected with. */
async function whileBusy<T>(turnMs: number, read: () => Promise<T>): Promise<T | unknown> {
  let done = false;
  const turn = (): void => {
    if (done) return;
    const end = performance.now() + turnMs;
    while (performance.now() < end); // synchronous work: nothing else of this process runs meanwhile
    setImmediate(turn);
  };
  setImmediate(turn);
  try {
    return await read().catch((err: unknown) => err);
  } finally {
    done = true;
  }
}

/** "equal", or what `got` is instead (a 24 MiB diff would not print). */
function against(got: unknown, want: Uint8Array | undefined): string {
  if (!(got instanceof Uint8Array) || want === undefined) return String(got);
  return Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want)) ? "equal" : `${got.byteLength} other bytes`;
}

async function storeWith(values: Record<string, Uint8Array>): Promise<string> {
  const writer = await open();
  for (const [k, v] of Object.entries(values)) await writer.write(k, v);
  const store = writer.store;
  await writer.close();
  return store;
}

describe("a read whose answer arrives slowly at a busy process", () => {
  it("a reader's read of a big value (slices) resolves with its bytes", async () => {
    const value = pattern(BIG, 1);
    const reader: PostgresBackend = await open({ store: await storeWith({ v: value }), readOnly: true, lease: LEASE });
    const got = await whileBusy(300, () => reader.read("v"));
    expect(against(got, value)).toBe("equal");
  }, 60_000);

  it("a reader's readMany of big values (several statements in one snapshot) resolves with them", async () => {
    const values = { a: pattern(BIG / 4, 2), b: pattern(BIG / 4, 3), c: pattern(BIG / 2, 4) };
    const reader = await open({ store: await storeWith(values), readOnly: true, lease: LEASE });
    const got = await whileBusy(300, () => reader.readMany(["a", "b", "c"]));
    const all = Array.isArray(got) ? got : [got, got, got];
    expect(all.map((v, i) => against(v, [values.a, values.b, values.c][i]))).toEqual(["equal", "equal", "equal"]);
  }, 60_000);
});
