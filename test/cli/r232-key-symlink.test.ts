/**
 * r232 attack: the file backend opens a key's file by name (src/backend/file.ts:315, O_RDONLY | O_NONBLOCK, no
 * O_NOFOLLOW), so a hostile store directory whose frame file is a symbolic link to a file outside the store makes
 * the read commands read that file and print it: `frames` prints it whole as the undecodable frame's `raw`, `verify`
 * a snippet in its message. Whatever the user running the CLI may read (as root: anything) leaks. The backend itself
 * never writes a link (every write is a rename of a temp file opened "wx"). Real file store, the compiled bin.
 */
import { rmSync, symlinkSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeKeyToFileName } from "../../src/backend/file-names.js";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { buildStore } from "./fixtures/stores.js";

const tmp = tempDir("r232-key-symlink");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

describe("a file store whose frame file is a symbolic link out of the store", () => {
  it("frames and verify never print the linked file's content", async () => {
    const store = tmp.path("store");
    await buildStore("file", store, [{ name: "g" }]);
    const secret = tmp.path("secret.txt");
    writeFileSync(secret, "SECRET-TOKEN=hunter2\n", { mode: 0o600 });
    const frame = `${store}/${encodeKeyToFileName(walFrameKey(graphWalPrefix("g"), 3))}`;
    rmSync(frame);
    symlinkSync(secret, frame);
    for (const args of [["frames", store, "--graph", "g"], ["verify", store]]) {
      const r = runCli(args);
      expect(r.stdout + r.stderr).not.toMatch(/SECRET/);
    }
  });
});
