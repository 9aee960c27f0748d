/**
 * A real backend wrapped for tests: counts what reaches it, fails chosen mutating calls, can turn
 * every call asynchronous and hold writes at a gate, and can hide `list`. The data always lives in
 * the wrapped (real) backend; nothing is simulated.
 */
import type { BackendSupports, BatchOp, StorageBackend } from "../../src/backend/types.js";

export interface BackendCounts {
  /** Keys read, by read or readMany. */
  reads: number;
  /** readMany calls. */
  readManyCalls: number;
  /** sizes calls. */
  sizesCalls: number;
  lists: number;
  /** Successful put operations (a batch counts each put). */
  puts: number;
  /** Successful delete operations (a batch counts each delete). */
  deletes: number;
  /** Successful write/writeBatch/delete calls. */
  calls: number;
  /** Bytes of successful puts. */
  bytes: number;
  /** Mutating calls that failed by injection. */
  failed: number;
}

export interface TestBackend extends StorageBackend {
  readonly inner: StorageBackend;
  readonly counts: BackendCounts;
  /** The next `n` mutating calls (write, writeBatch, delete) fail with an EIO error. */
  failNext(n?: number): void;
  /** Every mutating call fails until `heal()`. */
  failAll(): void;
  heal(): void;
  /** Mutating calls wait until the returned function runs (only for `async: true` wrappers). */
  holdWrites(): () => void;
}

export interface WrapOptions {
  /** Every method returns a Promise settled on a later macrotask, as real async I/O does. */
  async?: boolean;
  /** false hides `list` (a backend that cannot enumerate). */
  list?: boolean;
  /** true passes the inner backend's `readMany` through (hidden by default: readers then read key by key). */
  readMany?: boolean;
  /** true passes the inner backend's `sizes` through (hidden by default: readers then size reads by what they read). */
  sizes?: boolean;
}

function zeroCounts(): BackendCounts {
  return { reads: 0, readManyCalls: 0, sizesCalls: 0, lists: 0, puts: 0, deletes: 0, calls: 0, bytes: 0, failed: 0 };
}

/** The failure a flaky disk gives: a system error with an errno code, not a typed StorageError. */
export function injectedFailure(): Error {
  return Object.assign(new Error("EIO: injected write failure"), { code: "EIO" });
}

const nextMacrotask = (): Promise<void> => new Promise((r) => setImmediate(r));

export function wrapBackend(inner: StorageBackend, opts: WrapOptions = {}): TestBackend {
  const isAsync = opts.async === true;
  const hasList = opts.list !== false && typeof inner.list === "function";
  const counts = zeroCounts();
  const sizes = opts.sizes === true ? inner.sizes?.bind(inner) : undefined;
  let failRemaining = 0;
  let gate: Promise<void> | undefined;

  const supports: BackendSupports = Object.freeze({
    ...inner.supports,
    list: hasList,
    sync: inner.supports.sync && !isAsync,
    readPrefix: false, // not passed through: readers read whole values
    sizes: sizes !== undefined,
  });

  /** Decides at execution time (after any gate) whether this mutating call fails. */
  function mutate(apply: () => unknown, record: () => void): unknown {
    const run = (): unknown => {
      if (failRemaining > 0) {
        failRemaining--;
        counts.failed++;
        throw injectedFailure();
      }
      const r = apply();
      const done = (): void => {
        counts.calls++;
        record();
      };
      if (r instanceof Promise) return r.then(done);
      done();
      return undefined;
    };
    if (!isAsync) return run();
    return (async () => {
      await nextMacrotask();
      while (gate) await gate;
      await run();
    })();
  }

  function plain<T>(fn: () => T | Promise<T>): T | Promise<T> {
    if (!isAsync) return fn();
    return nextMacrotask().then(fn);
  }

  const wrapped: TestBackend = {
    name: inner.name,
    supports,
    inner,
    counts,
    read(key: string) {
      return plain(() => {
        counts.reads++;
        return inner.read(key);
      });
    },
    write(key: string, bytes: Uint8Array) {
      return mutate(
        () => inner.write(key, bytes),
        () => {
          counts.puts++;
          counts.bytes += bytes.byteLength;
        },
      ) as void | Promise<void>;
    },
    delete(key: string) {
      return mutate(
        () => inner.delete?.(key),
        () => {
          counts.deletes++;
        },
      ) as void | Promise<void>;
    },
    writeBatch(ops: readonly BatchOp[]) {
      return mutate(
        () => {
          if (inner.writeBatch) return inner.writeBatch(ops);
          return sequential(inner, ops);
        },
        () => {
          for (const op of ops) {
            if (op.op === "put") {
              counts.puts++;
              counts.bytes += op.value.byteLength;
            } else counts.deletes++;
          }
        },
      ) as void | Promise<void>;
    },
    close() {
      return inner.close?.();
    },
    failNext(n = 1) {
      failRemaining = n;
    },
    failAll() {
      failRemaining = Number.POSITIVE_INFINITY;
    },
    heal() {
      failRemaining = 0;
    },
    holdWrites() {
      if (!isAsync) throw new Error("test bug: holdWrites needs an async wrapper");
      let open!: () => void;
      const held = new Promise<void>((r) => (open = r));
      gate = held;
      return () => {
        if (gate === held) gate = undefined;
        open();
      };
    },
  };
  const readMany = opts.readMany === true ? inner.readMany?.bind(inner) : undefined;
  if (readMany) {
    wrapped.readMany = (keys: readonly string[]) =>
      plain(() => {
        counts.readManyCalls++;
        counts.reads += keys.length;
        return readMany(keys);
      });
  }
  if (sizes) {
    wrapped.sizes = (keys: readonly string[]) =>
      plain(() => {
        counts.sizesCalls++;
        return sizes(keys);
      });
  }
  if (hasList) {
    wrapped.list = (prefix?: string) =>
      plain(() => {
        counts.lists++;
        return inner.list!(prefix);
      });
  }
  return wrapped;
}

function sequential(inner: StorageBackend, ops: readonly BatchOp[]): void | Promise<void> {
  let chain: Promise<void> | undefined;
  for (const op of ops) {
    const step = (): void | Promise<void> => (op.op === "put" ? inner.write(op.key, op.value) : inner.delete?.(op.key));
    if (chain) chain = chain.then(step);
    else {
      const r = step();
      if (r instanceof Promise) chain = r;
    }
  }
  return chain;
}

/** Resets counters between phases of a test. */
export function resetCounts(b: TestBackend): void {
  Object.assign(b.counts, zeroCounts());
}
