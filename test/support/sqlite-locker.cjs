// Another process holding SQLite's write lock on a file (a program other than graphrefly-storage, e.g. a backup
// tool inside a transaction): BEGIN IMMEDIATE, says "locked" over IPC, and holds it until the parent sends
// "release" (so a test orders its steps on messages, never on time), then commits, says "released" and exits.
// { t: "exec", sql } runs `sql` inside the held transaction first (it lands with the commit) and answers "done".
// argv: <database path>. CommonJS: forked by node directly (test/support/sqlite-locker.ts).
const Database = require("better-sqlite3");

const db = new Database(process.argv[2]);
db.exec("BEGIN IMMEDIATE");
process.send({ t: "locked" });
process.on("message", (m) => {
  if (m?.t === "exec") {
    db.exec(m.sql);
    process.send({ t: "done" });
    return;
  }
  if (m !== "release") return;
  db.exec("COMMIT");
  db.close();
  process.send({ t: "released" }, () => process.exit(0));
});
