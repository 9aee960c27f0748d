/**
 * Fault injection for reliability tests: wraps a real backend and makes chosen calls fail the way a
 * sick disk does — an Error carrying a system `code` (EIO, ENOSPC, EACCES), `errno` and `syscall`,
 * never a typed StorageError (typing it is the job of the layers above). The data always lives in
 * the wrapped backend; a call that does not fail is passed through unchanged.
 */
import type { BackendSupports, BatchOp, StorageBackend } from "../../src/backend/types.js";

export type FaultOp = "read" | "write" | "writeBatch" | "delete" | "list";
export type FaultErrno = "EIO" | "ENOSPC" | "EACCES";

export interface FaultRule {
  /** Which call fails. */
  readonly op: FaultOp;
  readonly errno: FaultErrno;
  /** Matching calls that fail (default: all until `heal()`). */
  readonly times?: number;
  /** Matching calls let through before failures start (default 0). */
  readonly after?: number;
  /** Only calls touching a key (a batch: any op key; list: the prefix) that matches. */
  readonly key?: RegExp;
  /**
   * writeBatch only: apply the first `torn` ops of the batch, then fail — what a non-atomic backend
   * (the file backend: one rename per key) leaves behind when the disk fails mid-batch.
   */
  readonly torn?: number;
  /** writeBatch only: only batches holding a delete (a batch of puts passes). */
  readonly deletesOnly?: boolean;
}

export interface FaultyBackendOptions {
  /** Every call returns a Promise settled on a later macrotask, as real async I/O does (default false). */
  readonly async?: boolean;
}

export interface FaultRecord {
  readonly op: FaultOp;
  readonly errno: FaultErrno;
  readonly keys: readonly string[];
}

export interface FaultyBackend extends StorageBackend {
  readonly inner: StorageBackend;
  /** Calls that reached the wrapper, per op (failed ones included). */
  readonly calls: Record<FaultOp, number>;
  /** Every injected failure, in order. */
  readonly failures: readonly FaultRecord[];
  /** Adds a rule (rules are checked in the order they were added; the first match decides). */
  inject(rule: FaultRule): void;
  /** Removes every rule: the fault has cleared. */
  heal(): void;
  /**
   * Resolves once no call is waiting for its async hop (at once for a synchronous wrapper): a test that heals after
   * it knows every call issued before was decided under the faults, not after the heal.
   */
  idle(): Promise<void>;
  read(key: string): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  write(key: string, bytes: Uint8Array): void | Promise<void>;
  delete(key: string): void | Promise<void>;
  list(prefix?: string): readonly string[] | Promise<readonly string[]>;
  writeBatch(ops: readonly BatchOp[]): void | Promise<void>;
}

const ERRNO: Record<FaultErrno, { errno: number; text: string }> = {
  EIO: { errno: -5, text: "i/o error" },
  ENOSPC: { errno: -28, text: "no space left on device" },
  EACCES: { errno: -13, text: "permission denied" },
};

const SYSCALL: Record<FaultOp, string> = {
  read: "read",
  write: "write",
  writeBatch: "rename",
  delete: "unlink",
  list: "scandir",
};

/** The shape Node gives a failed fs call (`uvException`): message "CODE: text, syscall 'path'". */
export function systemError(errno: FaultErrno, op: FaultOp, path: string): Error {
  const { errno: n, text } = ERRNO[errno];
  const syscall = SYSCALL[op];
  return Object.assign(new Error(`${errno}: ${text}, ${syscall} '${path}'`), { code: errno, errno: n, syscall, path });
}

interface LiveRule {
  readonly rule: FaultRule;
  seen: number;
  failed: number;
}

const nextMacrotask = (): Promise<void> => new Promise((r) => setImmediate(r));

export function faultyBackend(
  inner: StorageBackend,
  plan: readonly FaultRule[] = [],
  opts: FaultyBackendOptions = {},
): FaultyBackend {
  if (!inner.list || !inner.writeBatch || !inner.delete) {
    throw new TypeError("faultyBackend wraps a backend with list, delete and writeBatch");
  }
  const isAsync = opts.async === true;
  const rules: LiveRule[] = [];
  const calls: Record<FaultOp, number> = { read: 0, write: 0, writeBatch: 0, delete: 0, list: 0 };
  const failures: FaultRecord[] = [];

  // A torn batch is only possible on a non-atomic backend: the wrapper must not promise atomicity then.
  const supports: BackendSupports = Object.freeze({
    ...inner.supports,
    atomicBatch: inner.supports.atomicBatch && !plan.some((r) => r.torn !== undefined),
    conditionalBatch: false, // not passed through: a fault plan decides per writeBatch
    sync: inner.supports.sync && !isAsync,
    readPrefix: false, // not passed through: readers read whole values
    sizes: false,
  });

  function inject(rule: FaultRule): void {
    if (rule.torn !== undefined && rule.op !== "writeBatch") throw new TypeError("torn applies to writeBatch only");
    if (rule.torn !== undefined && supports.atomicBatch) {
      throw new TypeError("torn batches need a plan that declares them up front (supports.atomicBatch must be false)");
    }
    if (rule.torn !== undefined && !inner.supports.sync) throw new TypeError("torn batches need a synchronous inner backend");
    rules.push({ rule, seen: 0, failed: 0 });
  }
  for (const r of plan) inject(r);

  /** The rule that fails this call, if any (counts the call against every matching rule it passes). */
  function faultFor(op: FaultOp, keys: readonly string[], deletes: boolean): FaultRule | undefined {
    for (const live of rules) {
      const { rule } = live;
      if (rule.op !== op) continue;
      if (rule.deletesOnly && !deletes) continue;
      if (rule.key && !keys.some((k) => rule.key!.test(k))) continue;
      live.seen++;
      if (live.seen <= (rule.after ?? 0)) continue;
      if (live.failed >= (rule.times ?? Number.POSITIVE_INFINITY)) continue;
      live.failed++;
      failures.push({ op, errno: rule.errno, keys });
      return rule;
    }
    return undefined;
  }

  /** Runs one call: decides on the fault when the call executes (after the async hop), then passes through. */
  function call<T>(op: FaultOp, keys: readonly string[], pass: () => T, torn?: (rule: FaultRule) => void, deletes = op === "delete"): T | Promise<T> {
    const run = (): T => {
      calls[op]++;
      const rule = faultFor(op, keys, deletes);
      if (rule) {
        if (rule.torn !== undefined && torn) torn(rule);
        throw systemError(rule.errno, op, keys[0] ?? "");
      }
      return pass();
    };
    if (!isAsync) return run();
    inFlight++;
    return nextMacrotask().then(async () => {
      inFlight--;
      if (inFlight === 0) for (const wake of idlers.splice(0)) wake();
      return run();
    });
  }
  let inFlight = 0;
  const idlers: Array<() => void> = [];

  const wrapped: FaultyBackend = {
    name: `faulty(${inner.name})`,
    supports,
    inner,
    calls,
    failures,
    inject,
    heal() {
      rules.length = 0;
    },
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((r) => idlers.push(r))),
    read: (key) => call("read", [key], () => inner.read(key)) as Uint8Array | undefined | Promise<Uint8Array | undefined>,
    write: (key, bytes) => call("write", [key], () => inner.write(key, bytes)) as void | Promise<void>,
    delete: (key) => call("delete", [key], () => inner.delete!(key)) as void | Promise<void>,
    list: (prefix) =>
      call("list", [prefix ?? ""], () => inner.list!(prefix)) as readonly string[] | Promise<readonly string[]>,
    writeBatch: (ops) =>
      call(
        "writeBatch",
        ops.map((o) => o.key),
        () => inner.writeBatch!(ops),
        (rule) => {
          // Applied one by one, as the non-atomic backend would have done before the disk failed.
          for (const op of ops.slice(0, rule.torn)) {
            if (op.op === "put") void inner.write(op.key, op.value);
            else void inner.delete!(op.key);
          }
        },
        ops.some((o) => o.op === "delete"),
      ) as void | Promise<void>,
    close: () => inner.close?.(),
  };
  return wrapped;
}
