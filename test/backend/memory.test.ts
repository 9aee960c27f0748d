import { describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { backendSuite } from "../conformance/backend-suite.js";

backendSuite({ name: "memoryBackend", factory: () => memoryBackend() });

describe("memoryBackend specifics", () => {
  it("is named memory unless a name is given", () => {
    expect(memoryBackend().name).toBe("memory");
    expect(memoryBackend({ name: "scratch" }).name).toBe("scratch");
  });

  it("declares itself non-persistent and atomic", () => {
    expect(memoryBackend().supports).toEqual({
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
  });

  it("keeps separate instances separate", () => {
    const a = memoryBackend();
    const b = memoryBackend();
    a.write("k", Uint8Array.of(1));
    expect(b.read("k")).toBeUndefined();
  });

  it("rejects a non-string name", () => {
    expect(() => memoryBackend({ name: 1 as unknown as string })).toThrow(TypeError);
  });
});
