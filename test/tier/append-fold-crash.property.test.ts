/**
 * Property (design §3.11, review r349 H1): random appends, flushes and compactions of an append-log (segments
 * layout, one bucket or several), each flush or compaction possibly cut off after any number of its backend ops, as
 * a process killed inside a batch that a backend applies op by op (the file store: `atomicBatch` false). After each
 * cut a fresh tier (a new process: its own segment allocator) opens the same store. At every point the log holds
 * every acknowledged entry exactly once, in acknowledgement order per bucket, and nothing else but, at most once
 * each, entries of a flush that was cut off (in doubt: its write may have landed). In overwrite mode, the log
 * holds what the last acknowledged flush held, or what a flush cut off since held (review r349 H4).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { BatchOp, ExpectedValue, StorageBackend } from "../../src/backend/types.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import type { AppendLogStorageTier } from "../../src/tier/types.js";

type Cmd =
  | { t: "append"; count: number; bucket: number }
  | { t: "flush"; cutAfter: number | undefined }
  | { t: "compact"; cutAfter: number | undefined };

const cut = fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant("append" as const), count: fc.integer({ min: 1, max: 3 }), bucket: fc.integer({ min: 0, max: 1 }) }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant("flush" as const), cutAfter: cut }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("compact" as const), cutAfter: cut }), weight: 2 },
);

interface Entry {
  b: string;
  n: number;
}

class Killed extends Error {}

/** A process's view of the store: applies batches op by op, and dies (every later call throws) after `budget` ops. */
function processOver(inner: StorageBackend): { backend: StorageBackend; arm(ops: number | undefined): void; dead(): boolean } {
  let budget: number | undefined;
  let dead = false;
  const alive = (): void => {
    if (dead) throw new Killed("the process was killed");
  };
  const step = (): void => {
    alive();
    if (budget !== undefined && budget-- <= 0) {
      dead = true;
      throw new Killed("killed inside a batch");
    }
  };
  const apply = (ops: readonly BatchOp[]): void => {
    for (const op of ops) {
      step();
      if (op.op === "put") inner.write(op.key, op.value);
      else inner.delete!(op.key);
    }
  };
  const backend: StorageBackend = {
    name: "torn",
    supports: { ...inner.supports, atomicBatch: false },
    read: (k) => (alive(), inner.read(k)),
    list: (p) => (alive(), inner.list!(p)),
    write: (k, v) => apply([{ op: "put", key: k, value: v }]),
    delete: (k) => apply([{ op: "delete", key: k }]),
    writeBatch: (ops) => apply(ops),
    writeBatchIf(expected: ExpectedValue | readonly ExpectedValue[], ops: readonly BatchOp[]) {
      alive();
      const list = Array.isArray(expected) ? (expected as readonly ExpectedValue[]) : [expected as ExpectedValue];
      for (const e of list) {
        const v = inner.read(e.key) as Uint8Array | undefined;
        const same = e.value === undefined ? v === undefined : v !== undefined && Buffer.from(v).equals(Buffer.from(e.value));
        if (!same) return false;
      }
      apply(ops);
      return true;
    },
  };
  return { backend, arm: (ops) => (budget = ops), dead: () => dead };
}

/**
 * A log in a process that may be killed: `attempt` runs a flush or compaction cut off after `cutAfter` ops (none
 * when undefined) and says whether it was; a cut one leaves the log to a new process, opened as `open` opens it.
 */
function killableLog(inner: StorageBackend, open: (backend: StorageBackend) => AppendLogStorageTier<Entry>) {
  let proc = processOver(inner);
  let log = open(proc.backend);
  return {
    log: () => log,
    async attempt(c: Exclude<Cmd, { t: "append" }>, step: number): Promise<"cut" | "done"> {
      proc.arm(c.cutAfter);
      try {
        if (c.t === "flush") await log.flush();
        else await log.compact();
      } catch {
        expect(proc.dead(), `step ${step}: only the cut fails a write`).toBe(true);
        log.rollback();
        proc = processOver(inner);
        log = open(proc.backend);
        return "cut";
      }
      proc.arm(undefined);
      return "done";
    },
  };
}

async function run(commands: Cmd[], keyed: boolean): Promise<void> {
  const inner = memoryBackend();
  const buckets = keyed ? ["a", "b"] : ["log"];
  const proc = killableLog(inner, (backend) =>
    appendLogStorage<Entry>(backend, { name: "log", debounceMs: 60_000, onError: () => {}, keyOf: keyed ? (e) => e.b : undefined }),
  );
  let next = 0;
  let pending: Entry[] = [];
  const acked: Entry[] = [];
  const inDoubt = new Set<number>();

  const check = async (where: string): Promise<void> => {
    const reader = appendLogStorage<Entry>(processOver(inner).backend, { name: "log", keyOf: keyed ? (e) => e.b : undefined });
    for (const b of buckets) {
      const got = (await reader.loadEntries(keyed ? { keyFilter: b } : undefined)).entries;
      const ns = got.map((e) => e.n);
      expect(new Set(ns).size, `${where}: bucket ${b} holds an entry twice: ${JSON.stringify(ns)}`).toBe(ns.length);
      const want = acked.filter((e) => keyed ? e.b === b : true).map((e) => e.n);
      expect(ns.filter((n) => !inDoubt.has(n)), `${where}: bucket ${b}`).toEqual(want);
    }
  };

  for (const [i, c] of commands.entries()) {
    if (c.t === "append") {
      const entries = Array.from({ length: c.count }, () => ({ b: buckets[c.bucket % buckets.length]!, n: next++ }));
      proc.log().appendEntries(entries);
      pending.push(...entries);
      continue;
    }
    const failed = (await proc.attempt(c, i)) === "cut";
    // Killed: what it held is in doubt (a batch cut after its segment put landed it).
    if (failed) for (const e of pending) inDoubt.add(e.n);
    else acked.push(...pending);
    pending = [];
    await check(`after step ${i} (${c.t}${failed ? ", cut" : ""})`);
  }
  await proc.log().compact(); // flushes first
  acked.push(...pending);
  await check("after a last compaction");
}

/** Overwrite mode: each flush replaces the log with what it held; a cut one leaves the old content or its own. */
async function runOverwrite(commands: Cmd[]): Promise<void> {
  const inner = memoryBackend();
  // A bucket as base + segment (a flush holding a failed flush's chunk and a new one stored it so before §3.11's folds).
  inner.write("log", new TextEncoder().encode('[{"b":"log","n":-2}]'));
  inner.write("log\u001f00000000000000000001", new TextEncoder().encode('[{"b":"log","n":-1}]'));
  const proc = killableLog(inner, (backend) => appendLogStorage<Entry>(backend, { name: "log", mode: "overwrite", debounceMs: 60_000, onError: () => {} }));
  let next = 0;
  let pending: Entry[] = [];
  let possible: number[][] = [[-2, -1]];
  for (const [i, c] of commands.entries()) {
    if (c.t === "append") {
      const entries = Array.from({ length: c.count }, () => ({ b: "log", n: next++ }));
      proc.log().appendEntries(entries);
      pending.push(...entries);
      continue;
    }
    const content = pending.map((e) => e.n);
    const failed = (await proc.attempt(c, i)) === "cut";
    if (content.length > 0) {
      if (failed) possible.push(content);
      else possible = [content];
    }
    pending = [];
    const reader = appendLogStorage<Entry>(processOver(inner).backend, { name: "log", mode: "overwrite" });
    const got = (await reader.loadEntries()).entries.map((e) => e.n);
    expect(possible, `after step ${i} (${c.t}${failed ? ", cut" : ""}): ${JSON.stringify(got)}`).toContainEqual(got);
    possible = [got];
  }
}

describe("append-log merges cut off after any op (design §3.11)", () => {
  it("overwrite mode: a flush cut off after any op leaves the old content or the new, never a mix", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 30 }), (commands) => runOverwrite(commands)),
      { numRuns: 150 },
    );
  }, 120_000);

  for (const keyed of [false, true]) {
    it(`reads every acknowledged entry once, in order (${keyed ? "two buckets" : "one bucket"})`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 30 }), (commands) => run(commands, keyed)),
        { numRuns: 150 },
      );
    }, 120_000);
  }
});
