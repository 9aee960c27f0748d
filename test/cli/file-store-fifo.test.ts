/**
 * A FIFO named like a key in a file-backend store: `inspect` reads every record to find the graphs, and blocked
 * forever on it. It now ends with one typed line (corrupt-store, exit 4).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, requireBuiltBin, tempDir } from "./fixtures/cli.js";
import { buildStore } from "./fixtures/stores.js";

const tmp = tempDir("file-fifo");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

describe("a FIFO in a file store", () => {
  it("inspect answers with corrupt-store instead of blocking", async () => {
    const dir = tmp.path("store");
    await buildStore("file", dir, [{ name: "g" }]);
    execFileSync("mkfifo", [join(dir, "other.bin")]);
    // The timeout only guards against the hang this test is about; nothing here measures time.
    const r = spawnSync(process.execPath, [BIN, "inspect", dir], { encoding: "utf8", timeout: 20_000, killSignal: "SIGKILL" });
    expect(r.signal, "inspect blocked on the FIFO and was killed").toBeNull();
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/^error corrupt-store: file backend: .*other\.bin \(key "other"\) is a FIFO, not a file/);
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
  }, 30_000);
});
