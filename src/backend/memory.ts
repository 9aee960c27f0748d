/**
 * In-process backend: a Map of copied bytes. Not persistent; every method is synchronous.
 */
import { refuseUnknownKeys } from "../base/options.js";
import { isRecord } from "../base/records.js";
import { StorageError } from "../errors.js";
import { assertBytes, assertKeyArray, assertPrefixLength, assertValidBatch, assertValidKey, sortKeys } from "./keys.js";
import { expectedList, holdsAll } from "./conditional.js";
import type { BackendSupports, BatchOp, ExpectedValue, SyncStorageBackend } from "./types.js";

export interface MemoryBackendOptions {
  /** Diagnostic name; default "memory". */
  readonly name?: string;
}

/** A memory backend (synchronous, every optional method present). */
export interface MemoryBackend extends SyncStorageBackend {
}

const SUPPORTS: BackendSupports = Object.freeze({
  list: true,
  delete: true,
  atomicBatch: true,
  conditionalBatch: true,
  conditionalKeys: true,
  persistent: false,
  durable: false,
  sync: true,
  readPrefix: true,
  sizes: true,
});

class MemoryStore implements MemoryBackend {
  readonly supports = SUPPORTS;
  private readonly entries = new Map<string, Uint8Array>();
  private closed = false;

  constructor(readonly name: string) {}

  readMany(keys: readonly string[]): Array<Uint8Array | undefined> {
    this.ensureOpen();
    assertKeyArray(keys);
    return keys.map((key) => this.read(key));
  }

  read(key: string): Uint8Array | undefined {
    this.ensureOpen();
    assertValidKey(key);
    const v = this.entries.get(key);
    // Copies on both sides so callers can never alias stored bytes.
    return v === undefined ? undefined : v.slice();
  }

  readPrefix(key: string, maxBytes: number): Uint8Array | undefined {
    this.ensureOpen();
    assertValidKey(key);
    assertPrefixLength(maxBytes);
    return this.entries.get(key)?.slice(0, maxBytes);
  }

  sizes(keys: readonly string[]): Array<number | undefined> {
    this.ensureOpen();
    assertKeyArray(keys);
    return keys.map((key) => {
      assertValidKey(key);
      return this.entries.get(key)?.byteLength;
    });
  }

  write(key: string, bytes: Uint8Array): void {
    this.ensureOpen();
    assertValidKey(key);
    assertBytes(bytes);
    this.entries.set(key, bytes.slice());
  }

  delete(key: string): void {
    this.ensureOpen();
    assertValidKey(key);
    this.entries.delete(key);
  }

  list(prefix?: string): readonly string[] {
    this.ensureOpen();
    if (prefix === undefined || prefix === "") return sortKeys(this.entries.keys());
    assertValidKey(prefix, "prefix");
    const out: string[] = [];
    for (const k of this.entries.keys()) if (k.startsWith(prefix)) out.push(k);
    return sortKeys(out);
  }

  writeBatch(ops: readonly BatchOp[]): void {
    this.ensureOpen();
    assertValidBatch(ops);
    // Validated first and applied without yielding, so the batch is trivially atomic.
    for (const op of ops) {
      if (op.op === "put") this.entries.set(op.key, op.value.slice());
      else this.entries.delete(op.key);
    }
  }

  /** Checked and applied in one synchronous call: nothing runs between. */
  writeBatchIf(expected: ExpectedValue | readonly ExpectedValue[], ops: readonly BatchOp[]): boolean {
    this.ensureOpen();
    const list = expectedList(expected);
    assertValidBatch(ops);
    if (!holdsAll(list, (key) => this.entries.get(key))) return false;
    this.writeBatch(ops);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.entries.clear();
  }

  private ensureOpen(): void {
    if (this.closed) throw new StorageError("closed", `${this.name} backend is closed`);
  }
}

/** Creates an empty in-memory backend (name "memory" unless `opts.name` is given). */
export function memoryBackend(opts: MemoryBackendOptions = {}): MemoryBackend {
  if (!isRecord(opts as unknown)) throw new TypeError("memoryBackend options must be an object");
  refuseUnknownKeys(opts, ["name"], "memoryBackend");
  const name = opts.name ?? "memory";
  if (typeof name !== "string") throw new TypeError("opts.name must be a string");
  return new MemoryStore(name);
}
