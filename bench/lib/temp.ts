/** Temp directories under os.tmpdir(), all removed when the run ends (also on Ctrl-C). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const created = new Set<string>();

export function makeTempDir(label: string): string {
  const safe = label.replace(/[^A-Za-z0-9_-]/g, "-");
  const dir = mkdtempSync(join(tmpdir(), `graphrefly-bench-${safe}-`));
  created.add(dir);
  return dir;
}

/** Removes one temp dir now (suites free disk between sizes). */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  created.delete(dir);
}

export function removeAllTempDirs(): void {
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
  created.clear();
}
