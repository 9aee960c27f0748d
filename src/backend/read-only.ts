/** The error of a write through a read-only handle, one wording for every backend. Layer 1. */
import { StorageError } from "../errors.js";

export function readOnlyError(name: string): StorageError {
  return new StorageError("read-only", `${name} was opened read-only: writes are refused`, { backend: name });
}
