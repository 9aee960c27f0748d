/**
 * Suite 1's child runner: forks one of the bench's child scripts (dist/bench/lib/*-child.js) with a JSON config as
 * argv[2] and resolves with the result it sends back over IPC as `{ ok, result }` (or rejects with its error or
 * stderr). Each measured variant runs in a fresh process of its own, so no variant's figures carry another's heap,
 * open engine or JIT state, and a peak RSS is the variant's own.
 */
import { fork } from "node:child_process";

export function runChild<Config, Result>(script: string, cfg: Config, what: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = fork(script, [JSON.stringify(cfg)], { stdio: ["ignore", "ignore", "pipe", "ipc"], serialization: "json" });
    let stderr = "";
    let answer: { ok: boolean; result?: Result; error?: string } | undefined;
    child.stderr?.on("data", (d: Buffer) => void (stderr += d.toString()));
    child.on("message", (m: typeof answer) => void (answer = m));
    child.on("error", reject);
    child.on("close", (code) => {
      if (answer?.ok && answer.result !== undefined) resolve(answer.result);
      else reject(new Error(`${what} ${JSON.stringify(cfg)} failed (exit ${String(code)}): ${answer?.error ?? stderr}`));
    });
  });
}

/** The child's side: run `work` on the config in argv[2] and send its result (or error) to the parent, then exit. */
export function serveChild<Config, Result>(work: (cfg: Config) => Promise<Result>): void {
  const cfg = JSON.parse(process.argv[2] ?? "null") as Config | null;
  if (cfg === null || process.send === undefined) return;
  work(cfg).then(
    (result) => process.send!({ ok: true, result }, () => process.exit(0)),
    (err: unknown) => process.send!({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.exit(1)),
  );
}
