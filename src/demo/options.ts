/** Command-line options of `npm run demo` (node:util parseArgs), validated into one plain object. */
import { resolve } from "node:path";
import { parseArgs } from "node:util";

export type DemoRole = "main" | "child" | "verify";

export interface DemoOptions {
  role: DemoRole;
  /** Seconds of load in the main phase. */
  seconds: number;
  /** Session state nodes in the server graph. */
  nodes: number;
  /** Session updates per wave (one batch per tick). */
  batch: number;
  /** Absolute directory holding demo.db. */
  dataDir: string;
  /** Seed of the update generator. */
  seed: number;
  /** Milliseconds the crash child writes before it is killed. */
  crashAfterMs: number;
  /** `--verify` only: the last seq the crashed writer acknowledged. */
  targetSeq: number | undefined;
}

export const USAGE = `Usage: npm run demo -- [options]
  --seconds <n>     seconds of load in the main phase (default 10; 2.5 with --quick)
  --nodes <n>       session state nodes in the server graph (default 5000; 500 with --quick)
  --batch <n>       session updates per wave (default 500; 100 with --quick)
  --data-dir <dir>  where demo.db is written (default ./data, created if missing)
  --seed <n>        seed of the update generator (default 1)
  --quick           a short run with a small graph (tests, CI)
  -h, --help        this text`;

/** Parses `argv`; throws TypeError / RangeError naming the bad option. Returns undefined for --help. */
export function parseDemoOptions(argv: readonly string[]): DemoOptions | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      seconds: { type: "string" },
      nodes: { type: "string" },
      batch: { type: "string" },
      "data-dir": { type: "string" },
      seed: { type: "string" },
      quick: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      // Internal roles: the demo spawns itself as the crash child and as the fresh verifying process.
      child: { type: "boolean", default: false },
      verify: { type: "boolean", default: false },
      "target-seq": { type: "string" },
      "crash-after-ms": { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return undefined;
  const quick = values.quick === true;
  const role: DemoRole = values.child ? "child" : values.verify ? "verify" : "main";
  return {
    role,
    seconds: num(values.seconds, "--seconds", quick ? 2.5 : 10, 0.1, false),
    nodes: num(values.nodes, "--nodes", quick ? 500 : 5000, 1, true),
    batch: num(values.batch, "--batch", quick ? 100 : 500, 1, true),
    dataDir: resolve(values["data-dir"] ?? "data"),
    seed: num(values.seed, "--seed", 1, 0, true),
    crashAfterMs: num(values["crash-after-ms"], "--crash-after-ms", quick ? 1200 : 3000, 1, true),
    targetSeq: values["target-seq"] === undefined ? undefined : num(values["target-seq"], "--target-seq", 0, 0, true),
  };
}

/** Turns the options back into the arguments a spawned role needs. */
export function roleArgs(opts: DemoOptions, role: Exclude<DemoRole, "main">, extra: Record<string, string> = {}): string[] {
  const args = [`--${role}`, "--data-dir", opts.dataDir, "--nodes", String(opts.nodes), "--batch", String(opts.batch)];
  args.push("--seed", String(opts.seed), "--crash-after-ms", String(opts.crashAfterMs));
  for (const [k, v] of Object.entries(extra)) args.push(`--${k}`, v);
  return args;
}

function num(raw: string | undefined, name: string, fallback: number, min: number, integer: boolean): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n)) throw new TypeError(`${name} must be a number, got "${raw}"`);
  if (n < min || (integer && !Number.isSafeInteger(n))) {
    throw new RangeError(`${name} must be ${integer ? "an integer" : "a number"} >= ${min}, got ${raw}`);
  }
  return n;
}
