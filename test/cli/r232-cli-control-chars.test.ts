/**
 * r232 attack: bytes of a hostile store or input file reach the terminal raw. JSON.parse's message quotes the
 * offending token and a snippet of the text, and the CLI prints that message as is: a frame value holding ESC [ 8 m
 * (conceal) makes a terminal hide the rest of `verify`'s output, "NOT restorable" and the verdict line included
 * (the exit code stays 2); OSC sequences set the window title, CSI ones erase lines. Same for `import`'s error line.
 * Real SQLite and file stores, the compiled bin.
 */
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { graphWalPrefix, walFrameKey } from "../../src/wal/keys.js";
import { requireBuiltBin, runCli, tempDir } from "./fixtures/cli.js";
import { KINDS, buildStore, storePath, writeRaw } from "./fixtures/stores.js";

const tmp = tempDir("r232-control-chars");
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());

// C0 controls but tab and newline, DEL, C1 controls: none belongs in a line meant for a terminal.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
const HOSTILE = new TextEncoder().encode('{"t":\u001b[8m}');

describe.each(KINDS)("hostile bytes never reach the terminal raw (%s store)", (kind) => {
  it("verify of a store whose frame holds ESC [ 8 m", async () => {
    const store = storePath(kind, tmp.path("esc"));
    await buildStore(kind, store, [{ name: "g" }]);
    writeRaw(kind, store, walFrameKey(graphWalPrefix("g"), 3), HOSTILE);
    const r = runCli(["verify", store]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/NOT restorable/);
    expect(r.stdout + r.stderr).not.toMatch(CONTROL);
  });

  it("verify of a frame holding a C1 CSI and a newline: no forged line, nothing a terminal acts on", async () => {
    const store = storePath(kind, tmp.path("c1"));
    await buildStore(kind, store, [{ name: "g" }]);
    writeRaw(kind, store, walFrameKey(graphWalPrefix("g"), 3), new TextEncoder().encode('{"t":\u009b8m\nresult: clean (exit 0)\n'));
    const r = runCli(["verify", store]);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).not.toMatch(CONTROL);
    expect(r.stdout).not.toMatch(/^result: clean/m);
    expect(r.stdout).toMatch(/^result: .*\(exit 2\)$/m);
  });

  it("import of a file holding ESC [ 8 m", () => {
    const file = tmp.path("evil.json");
    writeFileSync(file, HOSTILE);
    const r = runCli(["import", file, storePath(kind, tmp.path("new")), "--backend", kind]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^error invalid-input: /);
    expect(r.stdout + r.stderr).not.toMatch(CONTROL);
  });
});
