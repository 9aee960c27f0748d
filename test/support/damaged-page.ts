/** Damaging a SQLite database file in place, as a bad sector or a torn copy would. */
import { Buffer } from "node:buffer";
import { closeSync, openSync, statSync, writeSync } from "node:fs";

/** Overwrites the 4 KiB page in the middle of the file at `path` with junk (0xab bytes). */
export function damageMiddlePage(path: string): void {
  const fd = openSync(path, "r+");
  try {
    const page = Buffer.alloc(4096, 0xab);
    writeSync(fd, page, 0, page.length, Math.floor(statSync(path).size / 2 / 4096) * 4096);
  } finally {
    closeSync(fd);
  }
}
