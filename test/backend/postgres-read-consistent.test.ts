/**
 * readConsistent on a read-only PostgreSQL handle: the reads made inside it see one point in time of the store
 * (one REPEATABLE READ transaction), whatever a writer commits meanwhile; a failed statement ends that transaction
 * without breaking the handle (the reads after it inside the call fail: they would read another state); a writer's handle refuses it. test/reliability/postgres-readers runs restores inside
 * it beside a writer process compacting in a loop.
 */
import { describe, expect, it } from "vitest";
import { StorageError } from "../../src/errors.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { usePipes } from "../support/postgres-pipe.js";
import { errorOf, until } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "consistent");
const pipes = usePipes();
const b = (n: number): Uint8Array => Uint8Array.of(n);

/** A proxy to `url` that, once armed, holds what a client sends from its first message containing `marker` on. */
async function holdingProxy(url: string, marker: string) {
  let armed = false;
  let holding = false;
  const held: Array<() => void> = [];
  const pipe = await pipes(url, {
    toServer: (d, pass) => {
      if (armed && d.includes(marker)) holding = true;
      if (holding) held.push(pass);
      else pass();
    },
  });
  return {
    url: pipe.url,
    arm: () => void (armed = true),
    get holding(): boolean {
      return held.length > 0;
    },
    /** Sends what was held; passes everything from now on. */
    release: () => {
      armed = false;
      holding = false;
      for (const send of held.splice(0)) send();
    },
  };
}

describe("postgresBackend readConsistent", () => {
  it("reads at one point in time while a writer commits, nested calls included; after it, the store as it is", async () => {
    const writer = await open();
    await writer.writeBatch([
      { op: "put", key: "k", value: b(1) },
      { op: "put", key: "old", value: b(2) },
    ]);
    const reader = await open({ store: writer.store, readOnly: true });
    const seen = await reader.readConsistent(async () => {
      const first = await reader.read("k");
      // A compaction-like commit: a new value, a deletion, a new key, in one transaction.
      await writer.writeBatch([
        { op: "put", key: "k", value: b(3) },
        { op: "delete", key: "old" },
        { op: "put", key: "new", value: b(4) },
      ]);
      const inner = await reader.readConsistent(async () => reader.readMany(["k", "old", "new"]));
      return { first, inner, list: await reader.list(), prefix: await reader.readPrefix("k", 10) };
    });
    expect(seen).toEqual({ first: b(1), inner: [b(1), b(2), undefined], list: ["k", "old"], prefix: b(1) });
    expect(await reader.readMany(["k", "old", "new"])).toEqual([b(3), undefined, b(4)]);
  });

  it("the point in time is the call's start, not its first read (a commit before fn reads is not seen)", async () => {
    const writer = await open();
    await writer.write("k", b(1));
    const reader = await open({ store: writer.store, readOnly: true });
    const seen = await reader.readConsistent(async () => {
      await writer.write("k", b(2)); // committed after the call began, before its first read
      return reader.read("k");
    });
    expect(seen).toEqual(b(1));
    expect(await reader.read("k")).toEqual(b(2));
  });

  it("fn starts once the point in time is taken: a write fn makes before the reader's BEGIN reaches the server is not seen", async () => {
    // The race the case above met about 1 run in 5, made certain: the reader's BEGIN is held on its way (a slow
    // link). fn started at the call (before the fix), and its write committed before the server took the snapshot.
    const db = await database();
    const writer = await open();
    await writer.write("k", b(1));
    const proxy = await holdingProxy(db.url, "REPEATABLE READ");
    const reader = await open({ url: proxy.url, store: writer.store, readOnly: true });
    proxy.arm();
    let wrote: Promise<void> | undefined;
    const seen = reader.readConsistent(async () => {
      wrote = writer.write("k", b(2));
      await wrote;
      return reader.read("k");
    });
    await until(() => proxy.holding, "the reader's BEGIN held by the proxy");
    if (wrote !== undefined) await wrote; // fn already running: its write commits while the BEGIN is on its way
    proxy.release();
    expect(await seen).toEqual(b(1));
    expect(await reader.read("k")).toEqual(b(2));
  });

  it("a statement that fails inside ends the transaction: the error is the call's, later reads inside fail point-in-time-lost (they read the new state), reads after it work", async () => {
    const db = await database();
    const writer = await open();
    await writer.write("k", b(1));
    const reader = await open({ store: writer.store, readOnly: true, statementTimeoutMs: 300 });
    const raw = await db.raw();
    const outcome = await reader.readConsistent(async () => {
      await reader.read("k");
      await raw.query("BEGIN");
      // The lease table (not the data table, which the transaction already holds a lock on: LOCK would wait for it).
      await raw.query(`LOCK TABLE "${db.schema}".graphrefly_storage_lease IN ACCESS EXCLUSIVE MODE`);
      const failed = await errorOf(() => reader.changeCounter()); // waits for the lock: statement timeout
      await raw.query("ROLLBACK");
      await writer.write("k", b(2));
      return { failed, after: await errorOf(() => reader.read("k")), nested: await errorOf(() => reader.readConsistent(() => reader.list())) };
    });
    expect((outcome.failed as StorageError).details.pgCode).toBe("57014");
    // The transaction is gone: a read now would see the write above, another state than the first read's.
    for (const err of [outcome.after, outcome.nested]) {
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ code: "backend-error", details: { reason: "point-in-time-lost" } });
      expect(((err as StorageError).cause as StorageError).details.pgCode).toBe("57014");
    }
    // Out of the call: the read works, at its own point in time.
    expect(await reader.read("k")).toEqual(b(2));
  });

  it("a writer's handle refuses it; a read-only handle with no tables yet runs it plainly", async () => {
    const writer = await open();
    const err = await errorOf(() => writer.readConsistent(async () => 1));
    expect((err as StorageError).code).toBe("invalid-argument");
    const db = await database();
    const empty = await open({ schema: `${db.schema}_none`, readOnly: true });
    expect(await empty.readConsistent(async () => empty.read("k"))).toBeUndefined();
  });
});
