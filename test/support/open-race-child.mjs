// One racer of test/backend/sqlite-open-race (tests only): loads the compiled backend (run `npm run build` first),
// says "ready", waits until the file argv[3] exists (the parent's start signal, so every racer opens at once), opens the
// SQLite store argv[2] and prints "opened" or the error's code. A winner holds the store until its stdin ends.
import { existsSync } from "node:fs";

const { sqliteBackend } = await import("../../dist/src/backend/sqlite.js");
const [path, go] = process.argv.slice(2);
process.stdout.write("ready\n");
while (!existsSync(go)) {} // spin: a timer's delay would spread the racers out
try {
  const b = sqliteBackend(path);
  process.stdout.write("opened\n");
  process.stdin.resume();
  process.stdin.on("end", () => {
    b.close();
    process.exit(0);
  });
} catch (e) {
  process.stdout.write(`${e.code ?? "no-code"} ${e.message}\n`);
  process.exit(0);
}
