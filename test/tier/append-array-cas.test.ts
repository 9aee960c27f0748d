/**
 * An array-layout append-log flush reads each bucket's stored array, appends, and rewrites it. Another handle of the
 * same store (a second SQLite or file-store handle, an engine's worker beside an inline tier, another process) that
 * writes a bucket between that read and that write must not be overwritten: its entries, acknowledged by its own
 * flush, stay stored. The rewrite is conditional on the bytes read (writeBatchIf, every bucket of the flush in one
 * step): changed bytes are read again and merged again, a bounded number of times, then StorageError("store-busy").
 *
 * The other handle writes at the one moment that matters, deterministically: a pass-through wrapper of the tier's
 * real backend runs it right after the tier's read of the bucket returns, as another thread or process would.
 */
import { afterAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { sqliteBackend } from "../../src/backend/sqlite.js";
import { fileBackend } from "../../src/backend/file.js";
import { setWriterTenure } from "../../src/backend/tenure.js";
import type { BatchOp, ExpectedValue, StorageBackend } from "../../src/backend/types.js";
import { jsonCodec } from "../../src/codec/json.js";
import { StorageError } from "../../src/errors.js";
import { appendLogStorage, ARRAY_WRITE_ATTEMPTS } from "../../src/tier/append-log.js";
import { tempDir } from "../graph-compaction/fixtures.js";

const HELD = 60_000;
const shared = { keyOf: (e: string) => e.slice(0, 1), layout: "array", debounceMs: HELD, retry: { initialMs: HELD, maxMs: HELD } } as const;
const tmp = tempDir("append-array-cas");
afterAll(() => tmp.remove());

type Hook = (key: string) => void | Promise<void>;

/** The tier's backend: `inner` passed through whole (its conditional batch too), with a hook after each read. */
interface Interleaved extends StorageBackend {
  /** Runs after reads of `key` return to the tier (`times` of them; default every one until disarmed). */
  afterRead(key: string, hook: Hook, times?: number): void;
  disarm(): void;
  /** The next write (conditional or not) is applied and then fails (its answer lost), once. */
  loseNextAnswer(): void;
  conditionalWrites: number;
}

function interleaved(inner: StorageBackend, async: boolean): Interleaved {
  let armed: { key: string; hook: Hook; left: number } | undefined;
  let lose = false;
  const after = (key: string): void | Promise<void> => {
    if (armed === undefined || armed.key !== key || armed.left <= 0) return;
    armed.left--;
    return armed.hook(key);
  };
  const answer = <R>(result: R, applied: boolean): R => {
    if (lose && applied) {
      lose = false;
      throw Object.assign(new Error("EIO: i/o error, answer lost"), { code: "EIO" });
    }
    return result;
  };
  const writeIf = (expected: ExpectedValue | readonly ExpectedValue[], ops: readonly BatchOp[]) => {
    backend.conditionalWrites++;
    const applied = inner.writeBatchIf!(expected, ops) as boolean;
    return answer(applied, applied);
  };
  const write = (k: string, v: Uint8Array) => answer(inner.write(k, v), true);
  const writeBatch = (ops: readonly BatchOp[]) => answer(inner.writeBatch!(ops), true);
  const backend: Interleaved = {
    name: `interleaved:${inner.name}`,
    supports: { ...inner.supports, sync: !async },
    read: async
      ? async (key) => {
          const v = await inner.read(key);
          await after(key);
          return v;
        }
      : (key) => {
          const v = inner.read(key) as Uint8Array | undefined;
          const p = after(key);
          if (p !== undefined) throw new Error("a sync store's hook must be sync");
          return v;
        },
    write: async ? async (k, v) => write(k, v) : write,
    delete: async ? async (k) => inner.delete!(k) : (k) => inner.delete!(k),
    list: async ? async (p) => inner.list!(p) : (p) => inner.list!(p),
    writeBatch: async ? async (ops) => writeBatch(ops) : writeBatch,
    writeBatchIf: async ? async (e, ops) => writeIf(e, ops) : writeIf,
    afterRead(key, hook, times = Number.POSITIVE_INFINITY) {
      armed = { key, hook, left: times };
    },
    disarm() {
      armed = undefined;
    },
    loseNextAnswer() {
      lose = true;
    },
    conditionalWrites: 0,
  };
  return backend;
}

/** The tier's handle (wrapped) and another handle of the same store. */
interface Store {
  backend: Interleaved;
  other: StorageBackend;
  async: boolean;
  close(): Promise<void>;
}

const stores: Array<[string, () => Store]> = [
  [
    "memory, sync",
    () => {
      const mem = memoryBackend();
      return { backend: interleaved(mem, false), other: mem, async: false, close: async () => undefined };
    },
  ],
  [
    "memory, async (PostgreSQL-like)",
    () => {
      const mem = memoryBackend();
      return { backend: interleaved(mem, true), other: mem, async: true, close: async () => undefined };
    },
  ],
  [
    "file store, a second handle",
    () => {
      const dir = tmp.path("files");
      const inner = fileBackend(dir);
      const other = fileBackend(dir); // joins this process's store lock
      return { backend: interleaved(inner, false), other, async: false, close: async () => void (await other.close(), await inner.close()) };
    },
  ],
  [
    "SQLite, a second handle",
    () => {
      const path = tmp.path("store.db");
      const inner = sqliteBackend(path);
      const other = sqliteBackend(path); // joins this process's store lock
      return { backend: interleaved(inner, false), other, async: false, close: async () => void (await other.close(), await inner.close()) };
    },
  ],
];

/** The other handle appends `entries` to bucket `key` itself (read, append, rewrite: the reference layout). */
function appendOutside(other: StorageBackend, key: string, entries: string[]): void | Promise<void> {
  const put = (raw: Uint8Array | undefined) => {
    const stored = raw === undefined ? [] : (jsonCodec.decode(raw) as string[]);
    return other.write(key, jsonCodec.encode([...stored, ...entries]));
  };
  const raw = other.read(key);
  return raw instanceof Promise ? raw.then(put) : put(raw);
}

async function stored(other: StorageBackend, key: string): Promise<unknown> {
  const raw = await other.read(key);
  return raw === undefined ? undefined : jsonCodec.decode(raw);
}

describe.each(stores)("array-layout append-log beside another handle writing between its read and its write (%s)", (_name, open) => {
  it("the other handle's append landing between the read and the write is kept (read again, merged again)", async () => {
    const store = open();
    const ls = appendLogStorage<string>(store.backend, { name: "ls", ...shared });
    ls.appendEntries(["a0"]);
    await ls.flush();
    ls.appendEntries(["a1"]);
    store.backend.afterRead("a", () => appendOutside(store.other, "a", ["x1"]), 1);
    await ls.flush();
    expect(await stored(store.other, "a")).toEqual(["a0", "x1", "a1"]);
    expect((await ls.loadEntries({ keyFilter: "a" })).entries).toEqual(["a0", "x1", "a1"]);
    await ls.close();
    await store.close();
  });

  it("an append-log tier on the other handle whose flush resolved (acknowledged) in between: its entries stay stored", async () => {
    const store = open();
    const ls = appendLogStorage<string>(store.backend, { name: "ls", ...shared });
    const lo = appendLogStorage<string>(store.other, { name: "lo", ...shared });
    ls.appendEntries(["a0"]);
    await ls.flush();
    let acknowledged = false;
    let otherFlush: Promise<void> | undefined;
    ls.appendEntries(["a1"]);
    store.backend.afterRead(
      "a",
      () => {
        lo.appendEntries(["ax"]);
        otherFlush = lo.flush().then(() => void (acknowledged = true));
        // An async store's read waits for the other's acknowledgement; a sync store's tier wrote in the call.
        if (store.async) return otherFlush;
      },
      1,
    );
    await ls.flush();
    await otherFlush;
    expect(acknowledged).toBe(true);
    expect(await stored(store.other, "a")).toEqual(["a0", "ax", "a1"]);
    expect((await lo.loadEntries({ keyFilter: "a" })).entries).toEqual(["a0", "ax", "a1"]);
    await ls.close();
    await lo.close();
    await store.close();
  });

  it("a flush of several buckets: the other handle's write of one of them is kept, every bucket written in one conditional batch", async () => {
    const store = open();
    const ls = appendLogStorage<string>(store.backend, { name: "ls", ...shared });
    ls.appendEntries(["a0", "b0"]);
    await ls.flush();
    ls.appendEntries(["a1", "b1"]);
    // After the read of b (the flush read a first): a changed, b did not.
    store.backend.afterRead("b", () => appendOutside(store.other, "a", ["x1"]), 1);
    const before = store.backend.conditionalWrites;
    await ls.flush();
    expect(store.backend.conditionalWrites - before).toBe(2); // refused once (a changed), then applied
    expect(await stored(store.other, "a")).toEqual(["a0", "x1", "a1"]);
    expect(await stored(store.other, "b")).toEqual(["b0", "b1"]);
    await ls.close();
    await store.close();
  });

  it("a bucket that keeps changing: the flush fails with store-busy after a bounded number of tries, overwriting nothing; its retry stores it once", async () => {
    const store = open();
    const ls = appendLogStorage<string>(store.backend, { name: "ls", ...shared });
    ls.appendEntries(["a0"]);
    await ls.flush();
    ls.appendEntries(["a1"]);
    let n = 0;
    store.backend.afterRead("a", () => appendOutside(store.other, "a", [`x${n++}`]));
    const err = await ls.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("store-busy");
    expect(n).toBe(ARRAY_WRITE_ATTEMPTS);
    const others = Array.from({ length: n }, (_, i) => `x${i}`);
    expect(await stored(store.other, "a")).toEqual(["a0", ...others]);
    store.backend.disarm();
    await ls.flush();
    expect(await stored(store.other, "a")).toEqual(["a0", ...others, "a1"]);
    await ls.close();
    await store.close();
  });
});

describe.each([false, true])("array-layout append-log, a conditional write whose answer was lost (async %s)", (async) => {
  it("over a store only its handle writes (a lease: no conditional write needed): the retry stores its entries once", async () => {
    const backend = interleaved(memoryBackend(), async);
    setWriterTenure(backend, { id: "1", after: undefined, sole: true }); // the tenure a PostgreSQL lease gives
    const ls = appendLogStorage<string>(backend, { name: "ls", ...shared });
    ls.appendEntries(["a0", "b0"]);
    await ls.flush();
    ls.appendEntries(["a1", "b1"]);
    backend.loseNextAnswer();
    await expect(ls.flush()).rejects.toThrow(/answer lost/);
    ls.appendEntries(["a2"]);
    await ls.flush();
    expect((await ls.loadEntries({ keyFilter: "a" })).entries).toEqual(["a0", "a1", "a2"]);
    expect((await ls.loadEntries({ keyFilter: "b" })).entries).toEqual(["b0", "b1"]);
    expect(backend.conditionalWrites).toBe(0);
    await ls.close();
  });

  it("beside other handles: the retry appends again (at least once, never lost)", async () => {
    const backend = interleaved(memoryBackend(), async);
    const ls = appendLogStorage<string>(backend, { name: "ls", ...shared });
    ls.appendEntries(["a0"]);
    await ls.flush();
    ls.appendEntries(["a1"]);
    backend.loseNextAnswer();
    await expect(ls.flush()).rejects.toThrow(/answer lost/);
    await ls.flush();
    expect((await ls.loadEntries({ keyFilter: "a" })).entries).toEqual(["a0", "a1", "a1"]);
    await ls.close();
  });
});

describe.each(stores)("writeBatchIf with several expected values (%s)", (_name, open) => {
  it("applies only while every key holds its value, in one step", async () => {
    const store = open();
    const b = store.other;
    const enc = (s: string) => new TextEncoder().encode(s);
    await b.writeBatch!([
      { op: "put", key: "k1", value: enc("1") },
      { op: "put", key: "k2", value: enc("2") },
    ]);
    const ops: BatchOp[] = [
      { op: "put", key: "k1", value: enc("1'") },
      { op: "put", key: "k3", value: enc("3") },
    ];
    expect(b.supports.conditionalKeys).toBe(true);
    expect(await b.writeBatchIf!([{ key: "k1", value: enc("1") }, { key: "k2", value: enc("other") }], ops)).toBe(false);
    expect(await b.writeBatchIf!([{ key: "k1", value: enc("1") }, { key: "k3", value: enc("3") }], ops)).toBe(false);
    expect(await b.read("k3")).toBeUndefined();
    expect(new TextDecoder().decode(await b.read("k1"))).toBe("1");
    expect(await b.writeBatchIf!([{ key: "k1", value: enc("1") }, { key: "k2", value: enc("2") }, { key: "k3", value: undefined }], ops)).toBe(true);
    expect(new TextDecoder().decode(await b.read("k1"))).toBe("1'");
    expect(new TextDecoder().decode(await b.read("k3"))).toBe("3");
    await expect(async () => b.writeBatchIf!([], ops)).rejects.toThrow(TypeError);
    await store.close();
  });
});
