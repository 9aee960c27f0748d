/**
 * Review r350 of task 348: the child Vitest runs behind describeWithTmpfs (and the test that runs them as another
 * user). A child that hung was sent SIGTERM alone: its forked test worker, kept alive by a worker thread or a child
 * process, was left running (in the namespace, its tmpfs mounts with it), and the failure said `code: 143`, not that
 * it timed out. Every failure got a note on user namespaces, and a describe whose name starts with the wrapped one's
 * ran in the child as if it were one of its tests.
 *
 * Each case runs this file in a child Vitest with GRF_CHILD_FIXTURE naming what it registers there instead of these
 * tests. As root the child runs as nobody (who may not mount, as a contributor), otherwise as this user.
 */
import { spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterAll, describe, expect, it } from "vitest";
import { runChildVitest, type ChildVitestOptions } from "../support/child-vitest.js";
import { describeWithTmpfs, IN_USER_NAMESPACE } from "../support/tmpfs.js";

const FIXTURE = process.env.GRF_CHILD_FIXTURE;

/** A process as /proc names it: its pid there and its start time (a pid used again is another process). */
interface Proc {
  pid: number;
  start: string;
}
const procOf = (stat: string): Proc & { state: string } => {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { pid: Number(stat.slice(0, stat.indexOf(" "))), state: fields[0]!, start: fields[19]! };
};
/** Still running (a zombie has ended: it holds nothing but its exit status). */
function running(p: Proc): boolean {
  try {
    const now = procOf(readFileSync(`/proc/${p.pid}/stat`, "utf8"));
    return now.start === p.start && now.state !== "Z";
  } catch {
    return false;
  }
}

if (FIXTURE === "hang") {
  it("hangs holding a worker thread and a child process and a temp directory", { timeout: 3_600_000 }, async () => {
    const temp = mkdtempSync(join(tmpdir(), "grf-hang-"));
    new Worker("Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)", { eval: true });
    // The shell reads its own /proc entry (the PID namespace's parent's numbering: /proc is not remounted), then
    // becomes sleep.
    const sleep = spawn("sh", ["-c", "read -r stat < /proc/self/stat; echo \"$stat\"; exec sleep 3600"], { stdio: ["ignore", "pipe", "ignore"] });
    const sleepStat = await new Promise<string>((resolve) => sleep.stdout.once("data", (d: Buffer) => resolve(d.toString().split("\n")[0]!)));
    const pids = { worker: procOf(readFileSync("/proc/self/stat", "utf8")), sleep: procOf(sleepStat), temp };
    const file = process.env.GRF_CHILD_PIDS!;
    writeFileSync(`${file}.tmp`, JSON.stringify(pids));
    renameSync(`${file}.tmp`, file);
    await new Promise(() => undefined);
  });
} else if (FIXTURE === "describes") {
  // Bodies for the child only (never registered in the suite's own run): each checks it runs as that fixture's child.
  describeWithTmpfs(import.meta.url, "a failing wrapped describe", () => {
    it("fails", () => expect(1).toBe(2));
  });
  describeWithTmpfs(import.meta.url, "a wrapped describe", () => {
    it("passes", () => expect(process.env.GRF_CHILD_FIXTURE).toBe("describes"));
  });
  describe("a wrapped describe too", () => {
    it("passes", () => expect(process.env.GRF_CHILD_FIXTURE).toBe("describes"));
  });
} else if (FIXTURE === "nested-hang") {
  describeWithTmpfs(import.meta.url, "a wrapped describe", () => {
    it("hangs", { timeout: 3_600_000 }, () => new Promise(() => undefined));
  });
} else if (FIXTURE === "refused") {
  describeWithTmpfs(import.meta.url, "a wrapped describe", () => {
    it("passes", () => expect(process.env.GRF_CHILD_FIXTURE).toBe("refused"));
  });
} else {
  const NOBODY = 65534;
  const ROOT = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), "grf-child-vitest-runs-"));
  if (ROOT) chownSync(dir, NOBODY, NOBODY);
  // Written by the child: as nobody, or as root of a user namespace (whose root may not write a directory of a user
  // the namespace does not map).
  const pidsDir = mkdtempSync(join(tmpdir(), "grf-child-vitest-pids-"));
  chmodSync(pidsDir, 0o777);
  afterAll(() => [dir, pidsDir].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const another: Pick<ChildVitestOptions, "as"> = ROOT ? { as: { uid: NOBODY, gid: NOBODY } } : {};
  const fixture = (name: string, env: NodeJS.ProcessEnv = {}): Pick<ChildVitestOptions, "files" | "env"> => ({
    files: [import.meta.url],
    env: { GRF_CHILD_FIXTURE: name, HOME: dir, ...env },
  });
  /** The failure messages of the child's test with this title. */
  const failureOf = (run: Awaited<ReturnType<typeof runChildVitest>>, title: string): string => {
    const test = (run.files ?? []).flatMap((f) => f.tests).find((t) => t.title === title);
    expect(test?.status, run.output).toBe("failed");
    return (test!.failureMessages ?? []).join("\n");
  };

  describe("a child Vitest run", () => {
    it.for([
      ["another user", another],
      ["root of a user namespace", { as: "namespace-root" }],
    ] as const)("as %s, stopped while its test hangs holding a worker thread and a child process, leaves no process and no temp directory behind", { timeout: 300_000 }, async ([label, as]) => {
      const pidsFile = join(pidsDir, `pids-${label.replace(/\W/g, "-")}.json`);
      const stop = new AbortController();
      const poll = setInterval(() => existsSync(pidsFile) && stop.abort(), 50);
      try {
        const run = await runChildVitest({ ...fixture("hang", { GRF_CHILD_PIDS: pidsFile }), ...as, timeoutMs: 240_000, signal: stop.signal });
        expect(existsSync(pidsFile), run.output).toBe(true);
        const pids = JSON.parse(readFileSync(pidsFile, "utf8")) as Record<"worker" | "sleep", Proc> & { temp: string };
        expect({ aborted: run.aborted, worker: running(pids.worker), sleep: running(pids.sleep) }, run.output).toEqual({ aborted: true, worker: false, sleep: false });
        // Made in the child's TMPDIR, the run's own, removed with it (it was this process's, where a killed child's stayed).
        expect(existsSync(pids.temp), pids.temp).toBe(false);
        expect(run.output).toContain("(stopped by its caller: killed with every process it started)");
      } finally {
        clearInterval(poll);
      }
    });

    it("that hangs past its time says it timed out", { timeout: 120_000 }, async () => {
      const run = await runChildVitest({ ...fixture("hang", { GRF_CHILD_PIDS: join(pidsDir, "timeout.json") }), ...another, timeoutMs: 3_000 });
      expect(run.timedOutAfterMs, run.output).toBe(3_000);
      expect(run.output).toContain("(timed out after 3000 ms: killed with every process it started)");
    });
  });

  describe("describeWithTmpfs, as a user who may not mount", () => {
    it("fails a wrapped describe whose test fails without a note on user namespaces, and one whose -t filter also ran another describe's tests", { timeout: 300_000 }, async () => {
      const run = await runChildVitest({ ...fixture("describes"), ...another, timeoutMs: 240_000 });
      const failing = failureOf(run, `a failing wrapped describe ${IN_USER_NAMESPACE}`);
      expect(failing).toContain("expected 1 to be 2");
      expect(failing).not.toMatch(/user namespace of its own/);
      const colliding = failureOf(run, `a wrapped describe ${IN_USER_NAMESPACE}`);
      expect(colliding).toContain(`the child ran tests outside describe "a wrapped describe", whose names its -t filter also matches`);
      expect(colliding).toContain("a wrapped describe too passes");
    });

    it("run inside a child run whose test hangs, times out before its parent does, and says so", { timeout: 300_000 }, async () => {
      const run = await runChildVitest({ ...fixture("nested-hang"), ...another, timeoutMs: 45_000 });
      expect(run.timedOutAfterMs, run.output).toBeUndefined();
      expect(failureOf(run, `a wrapped describe ${IN_USER_NAMESPACE}`)).toMatch(/\(timed out after \d+ ms: killed with every process it started\)/);
    });

    it("refused a user namespace, says so and why", { timeout: 300_000 }, async () => {
      // Its user has no mapping in the user namespace it runs in (as under a restricting AppArmor profile, a new
      // namespace's first write to uid_map fails): the kernel refuses it another (EPERM).
      const run = await runChildVitest({ ...fixture("refused"), ...another, before: ["unshare", "--user", "--"], timeoutMs: 240_000 });
      const refused = failureOf(run, `a wrapped describe ${IN_USER_NAMESPACE}`);
      expect(refused).toMatch(/this user may mount only in a user namespace of its own, and was refused one \(unshare: [^\n]*Operation not permitted\)/);
    });

    it("refused a user namespace by a sysctl, names the sysctl, its value and what to do", { timeout: 300_000 }, async () => {
      // Run in a user namespace whose user.max_user_namespaces is 0 (a limit of that namespace only, which its root
      // may set): the child's unshare is refused one, ENOSPC, and the refusal reads that setting where it ran.
      const zeroNamespaces = ["unshare", "--user", "--map-root-user", "--", "sh", "-c", 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', "sh"];
      const run = await runChildVitest({ ...fixture("refused"), ...another, before: zeroNamespaces, timeoutMs: 240_000 });
      const refused = failureOf(run, `a wrapped describe ${IN_USER_NAMESPACE}`);
      expect(refused).toMatch(
        /\(this user may mount only in a user namespace of its own, and was refused one \(unshare: [^\n]*No space left on device\): sysctl user\.max_user_namespaces = 0 \(no user namespace may be made\)[^\n]*\. Allow them \(or run these tests as root\)\)/,
      );
    });
  });
}
