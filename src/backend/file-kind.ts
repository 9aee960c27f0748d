/**
 * What a directory entry that is not a regular file is, in words for messages and `details.found` ("a FIFO"). One
 * list for every backend refusal of a special file (key files, lock files, a SQLite store's path). Layer 1.
 */
import type { BigIntStats, Stats } from "node:fs";

export function fileKind(stats: Stats | BigIntStats): string {
  if (stats.isSymbolicLink()) return "a symbolic link";
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isSocket()) return "a socket";
  return "not a regular file";
}
