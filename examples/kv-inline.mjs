// Inline key-value storage over an embedded SQLite file: no worker threads, the tier runs in this process.
// Run: node examples/kv-inline.mjs [dir]
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqliteKv } from "graphrefly-storage";

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), "grf-example-kv-"));
const path = join(dir, "sessions.db");

const sessions = sqliteKv(path, { debounceMs: 10 }); // writes within 10 ms share one transaction
sessions.save("user:1", { name: "Ada", visits: 3 });
sessions.save("user:2", { name: "Linus", visits: 1 });
await sessions.flush(); // resolves once SQLite committed both (synchronous=FULL)

console.log("user:1 =", JSON.stringify(await sessions.load("user:1")));
console.log("keys   =", (await sessions.list("user:")).join(", "));

// A value JSON cannot carry is refused with a typed error, never silently dropped.
try {
  sessions.save("user:3", { joined: new Date() });
  await sessions.flush();
} catch (err) {
  console.log("refused:", err.name, err.code);
}
await sessions.close();
console.log("stored in", path);
