/**
 * A /proc read failing once (EMFILE) when a thread first asks its own identity (base/kernel-thread.ts) must not turn
 * the ended-thread check off for the thread's life: in the owner (its floors buffer named no owner) or in the actor
 * (it never dropped any buffer), an ended worker's shared-WAL floor was held until the process ended (review r235).
 * Real child processes under `ulimit -n 300`, real worker threads, /proc. Both cases failed before the fix (floor 7).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const fixture = fileURLToPath(new URL("./fixtures/emfile-floors-owner.mjs", import.meta.url));

function run(mode: string): { floorAfterEnd: number | string; whileAlive: number } {
  const out = spawnSync("bash", ["-c", `ulimit -n 300 && exec "${process.execPath}" "${fixture}" ${mode}`], { encoding: "utf8" });
  expect(out.status, out.stderr).toBe(0);
  return JSON.parse(out.stdout.trim().split("\n").pop() as string) as { floorAfterEnd: number | string; whileAlive: number };
}

describe("a transient EMFILE at a thread's first /proc read", () => {
  it("control: descriptors fine, the ended worker's floor is dropped", () => {
    const r = run("none");
    expect(r.whileAlive).toBe(7);
    expect(r.floorAfterEnd).toBe("Infinity");
  });
  for (const mode of ["owner", "actor"]) {
    it(`${mode} out of descriptors once: the ended worker's floor is still dropped`, () => {
      const r = run(mode);
      expect(r.whileAlive).toBe(7); // the live worker's floor holds
      expect(r.floorAfterEnd).toBe("Infinity"); // fails: 7, held until the process ends
    });
  }
});
