/**
 * A user-written backend that throws a value String() cannot convert (a null-prototype object: no toString). The
 * wrapping into StorageError("backend-error") called String() on it and threw a TypeError ("Cannot convert object to
 * primitive value") instead: the caller got an untyped error (review r314, task 316's report).
 */
import { expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import type { StorageBackend } from "../../src/backend/types.js";
import { StorageError, asStorageError } from "../../src/errors.js";
import { compactGraph } from "../../src/persistence/compaction.js";

const bare = (): object => Object.assign(Object.create(null) as object, { reason: "quota" });

it("asStorageError wraps a thrown null-prototype object as backend-error", () => {
  const wrapped = asStorageError(bare(), "reading k failed");
  expect(wrapped).toBeInstanceOf(StorageError);
  expect(wrapped).toMatchObject({ code: "backend-error", message: "reading k failed: [object Object]" });
});

it("a compaction over a backend whose reads throw a null-prototype object rejects with StorageError backend-error", async () => {
  const inner = memoryBackend();
  // Every method the memory backend has, bound to it; its reads and listings throw the bare object.
  const backend = {} as Record<string, unknown>;
  for (const key of Object.getOwnPropertyNames(Object.getPrototypeOf(inner)) as (keyof StorageBackend)[]) {
    const m = inner[key];
    if (typeof m === "function" && key !== ("constructor" as keyof StorageBackend)) backend[key] = m.bind(inner);
  }
  Object.assign(backend, { name: "throws-bare", supports: inner.supports });
  for (const key of ["read", "readMany", "readPrefix", "sizes", "list"]) {
    backend[key] = () => {
      throw bare();
    };
  }
  const outcome = await compactGraph({ backend: backend as unknown as StorageBackend }, { graphName: "g" }).then(
    () => "resolved",
    (e: unknown) => e,
  );
  expect(outcome).toBeInstanceOf(StorageError);
  expect(outcome).toMatchObject({ code: "backend-error" });
});
