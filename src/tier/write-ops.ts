import { transientEncoder } from "../codec/bytes.js";
import { codecFailure } from "../codec/user-codec.js";
import type { Codec } from "../codec/types.js";
import type { BatchOp, StorageBackend } from "../backend/types.js";
import type { Step } from "./maybe.js";

/**
 * Encodes every entry; entries the codec rejects are set aside (a retry could never write them). The bytes only
 * live until the backend write returns, so built-in codecs write them into pooled memory.
 */
export function encodeAll<T>(
  entries: Map<string, T>,
  codec: Codec<T>,
): { ops: BatchOp[]; rejected: Map<string, Error> } {
  const ops: BatchOp[] = [];
  const rejected = new Map<string, Error>();
  const encode = transientEncoder(codec);
  // forEach, not for-of: no entry array and iterator result per value (a WAL batch holds up to 2,000).
  entries.forEach((value, key) => {
    try {
      const encoded = encode(value);
      ops.push({ op: "put", key, value: encoded });
    } catch (err) {
      // Whatever a user codec threw, refused as CodecError (a stable code, the throw as its cause).
      rejected.set(key, codecFailure(err, "encode", codec.name));
    }
  });
  return { ops, rejected };
}

/**
 * Commits ops as one backend batch when the backend has one (one SQLite transaction per flush), else one
 * by one, checking `cancelled()` (a rollback) before each write.
 */
export function* writeOps(backend: StorageBackend, ops: readonly BatchOp[], cancelled: () => boolean): Step {
  if (backend.writeBatch && ops.length > 1) {
    if (cancelled()) return;
    yield backend.writeBatch(ops);
    return;
  }
  for (const op of ops) {
    if (cancelled()) return;
    if (op.op === "put") yield backend.write(op.key, op.value);
    else if (backend.delete) yield backend.delete(op.key);
  }
}
