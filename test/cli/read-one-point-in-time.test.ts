/**
 * Task 386: a read command reads the store at one point in time from its first read to its last. On SQLite the
 * command's read transaction (begun at the open) was ended by the reader's first readConsistent, which joined it and
 * then committed it, so verify's second pass (the fold, which finds frames restore ignores or refuses) read a later
 * state than its survey; on PostgreSQL each pass (and each of inspect's reads) was its own point in time. A writer's
 * commit between two passes then made the command say what no single state of the store would have made it say:
 * verify reported a frame its own frame count did not include (restorable, exit 1, on a store that was clean when it
 * counted), inspect on PostgreSQL counted frames a compaction deleted after its listing as undecodable under the new
 * baseline. (inspect on SQLite makes no readConsistent call, so it kept its transaction: that case passed before.)
 *
 * Real parts: the compiled bin in a child process, a writer process holding the store (SQLite in WAL mode with its
 * lock, PostgreSQL with its lease; fixtures/commit-on-ask.mjs), the test PostgreSQL server. Test seam:
 * fixtures/pause-at-statement.mjs holds the CLI before one of its statements (a clean run of the same command counts
 * them) while the writer commits; the paused run must say exactly what the clean run before the commit said.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { WALFrame } from "../../src/wal/frame.js";
import { killChildren } from "../support/child-processes.js";
import { useTestDatabase } from "../support/postgres-db.js";
import { requireBuiltBin, runCli, tempDir, type CliRun } from "./fixtures/cli.js";
import { runCounting, runPlacingAtPause } from "./fixtures/paused-cli.js";
import { baselineSnapshot, setFrame } from "./fixtures/stores.js";

const tmp = tempDir("one-point-in-time");
const database = useTestDatabase();
beforeAll(requireBuiltBin);
afterAll(() => tmp.remove());
const children = new Set<ChildProcess>();
afterEach(() => killChildren(children));

const HOOK = fileURLToPath(new URL("./fixtures/pause-at-statement.mjs", import.meta.url));
const WRITER = fileURLToPath(new URL("./fixtures/commit-on-ask.mjs", import.meta.url));

type Kind = "sqlite" | "postgres";

interface Commit {
  readonly frames?: readonly WALFrame[];
  readonly baseline?: unknown;
  readonly drop?: readonly number[];
}

const baseline = (seq: number) => ({ name: "g", mode: "full", snapshot: baselineSnapshot("g"), seq, timestamp_ns: 1_700_000_000_000_000_000, format_version: 1 });
const seqs = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The writer process of a new store (fixtures/commit-on-ask.mjs); `commit` resolves once it committed. */
async function startWriter(kind: Kind, name: string): Promise<{ store: string; commit(c: Commit): Promise<void> }> {
  let at: Record<string, string>;
  let store: string;
  if (kind === "sqlite") {
    store = tmp.path(`${name}.db`);
    at = { kind, path: store };
  } else {
    const db = await database();
    at = { kind, url: db.url, schema: db.schema, store: name };
    const u = new URL(db.url);
    u.searchParams.set("store", name);
    u.searchParams.set("schema", db.schema);
    store = u.href;
  }
  const child = fork(WRITER, [JSON.stringify(at)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  children.add(child);
  const next = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the writer exited (${String(code)})`));
      child.once("exit", onExit);
      child.once("message", () => {
        child.off("exit", onExit);
        resolve();
      });
    });
  await next(); // ready
  return {
    store,
    commit(c) {
      const done = next();
      child.send({ t: "commit", ...c });
      return done;
    },
  };
}

/** Where the CLI pauses: before the `nth` statement whose SQL contains `sql`. */
interface Seam {
  readonly sql: string;
  readonly nth: number;
}

/** The command run clean, then again held at the seam while (after `first`) the writer commits `commit`: both runs. */
async function runCommittingAtPause(
  writer: { store: string; commit(c: Commit): Promise<void> },
  command: readonly string[],
  seam: Seam,
  commit: Commit,
  first?: () => Promise<void>,
): Promise<{ clean: CliRun; paused: CliRun }> {
  const args = [command[0]!, writer.store, ...command.slice(1)];
  const { run: clean, calls } = runCounting(HOOK, { GRF_PAUSE_SQL: seam.sql }, tmp.path("calls"), args);
  // The clean run makes that statement at least `nth` times: else the paused run would end before its pause.
  expect(calls, `statements "${seam.sql}" of a clean run`).toBeGreaterThanOrEqual(seam.nth);
  const paused = await runPlacingAtPause(HOOK, { GRF_PAUSE_SQL: seam.sql, GRF_PAUSE_NTH: String(seam.nth) }, tmp.path("pause.fifo"), command, writer.store, async () => {
    await first?.();
    await writer.commit(commit);
  });
  return { clean, paused };
}

/** A WAL listing: one statement per list call (SQLite's range scan; PostgreSQL's named query). */
const WAL_LISTING: Record<Kind, string> = { sqlite: "k >= ? AND k < ?", postgres: "grf_list_range" };
/** A read of one key (inspect reads frame by frame): the first is of the first listed frame. */
const KEY_READ: Record<Kind, string> = { sqlite: "SELECT v FROM", postgres: "grf_read " };

describe.each<Kind>(["sqlite", "postgres"])("read commands on a live %s store read one point in time", (kind) => {
  it("verify: a frame committed between its survey and its fold is seen by neither (it said restorable, exit 1, naming a frame its own count left out)", async () => {
    const writer = await startWriter(kind, "verify");
    await writer.commit({ baseline: baseline(1), frames: seqs(2, 11).map((s) => setFrame(s, "a", s)) });
    // Paused at its second WAL listing (of keys whose seq is out of range), after the survey and before the fold: a
    // fold that began its own point in time there read the commit.
    const { clean, paused } = await runCommittingAtPause(writer, ["verify", "--graph", "g", "--json"], { sql: WAL_LISTING[kind], nth: 2 }, {
      frames: [setFrame(12, "ghost", 7)],
    });
    expect(clean.code, clean.stderr).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ exitCode: 0, graphs: [{ verdict: "clean", frames: 10, framesAbove: 10, problems: [] }] });
    expect(paused.stderr).toBe("");
    expect(JSON.parse(paused.stdout)).toEqual(JSON.parse(clean.stdout));
    expect(paused.code).toBe(0);
    // The commit did land while the command ran: a run now sees it.
    const after = runCli(["verify", writer.store, "--graph", "g", "--json"]);
    expect(JSON.parse(after.stdout)).toMatchObject({ exitCode: 1, graphs: [{ verdict: "restorable", frames: 11, problems: [{ kind: "unknown-node", seq: 12 }] }] });
  });

  it("inspect: a compaction committed after its listing leaves its counts as listed (it counted the deleted frames undecodable under the new baseline)", async () => {
    const writer = await startWriter(kind, "inspect");
    await writer.commit({ baseline: baseline(1), frames: seqs(2, 11).map((s) => setFrame(s, "a", s)) });
    // Paused at its first read of a frame, after its listing and before the baseline's read.
    const { clean, paused } = await runCommittingAtPause(writer, ["inspect", "--graph", "g", "--json"], { sql: KEY_READ[kind], nth: 1 }, {
      baseline: baseline(11),
      drop: seqs(2, 11),
    });
    expect(clean.code, clean.stderr).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ graphs: [{ baseline: { state: "ok", seq: 1 }, wal: { frames: 10, undecodable: 0 } }] });
    expect(paused.stderr).toBe("");
    expect(JSON.parse(paused.stdout)).toEqual(JSON.parse(clean.stdout));
    expect(paused.code).toBe(0);
    const after = runCli(["inspect", writer.store, "--graph", "g", "--json"]);
    expect(JSON.parse(after.stdout)).toMatchObject({ graphs: [{ baseline: { state: "ok", seq: 11 }, wal: { frames: 0 } }] });
  });
});

/** `store` (a PostgreSQL store URL) with `params` added: libpq connection options the CLI passes to the server. */
function withParams(store: string, params: Readonly<Record<string, string>>): string {
  const u = new URL(store);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.href;
}

describe("a PostgreSQL read command's point in time (review r392)", () => {
  it("verify: its data session ended while a frame commits fails exit 4, point-in-time-lost (a failed read of frame sizes was passed over and the fold read the live store: unknown-node seq 12, exit 1)", async () => {
    const writer = await startWriter("postgres", "cut");
    await writer.commit({ baseline: baseline(1), frames: seqs(2, 11).map((s) => setFrame(s, "a", s)) });
    const raw = await (await database()).raw();
    const named = { ...writer, store: withParams(writer.store, { application_name: "t393-cut" }) };
    // Paused before its second read of frame sizes (the fold's), which the reader passes over when it fails.
    const cut = async (): Promise<void> => {
      const ended = await raw.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 't393-cut'");
      expect(ended.rows.length).toBeGreaterThan(0);
    };
    const { clean, paused } = await runCommittingAtPause(named, ["verify", "--graph", "g", "--json"], { sql: "grf_sizes", nth: 2 }, { frames: [setFrame(12, "ghost", 7)] }, cut);
    expect(JSON.parse(clean.stdout)).toMatchObject({ exitCode: 0, graphs: [{ verdict: "clean", frames: 10 }] });
    expect(paused.stdout).toBe("");
    expect(paused.stderr).toContain("point-in-time-lost");
    expect(paused.code).toBe(4);
  });

  it("verify held past the server's idle_in_transaction_session_timeout between its passes reads on at its point in time (the server ended its session: exit 4)", async () => {
    const writer = await startWriter("postgres", "held");
    await writer.commit({ baseline: baseline(1), frames: seqs(2, 11).map((s) => setFrame(s, "a", s)) });
    // transaction_timeout (PostgreSQL 17) is turned off the same way; the tests' server (15) has none.
    const held = { ...writer, store: withParams(writer.store, { options: "-c idle_in_transaction_session_timeout=200" }) };
    // Held past the timeout before the fold's listing (a slow consumer, a stopped terminal), then a commit.
    const hold = () => new Promise<void>((resolve) => setTimeout(resolve, 1000));
    const { clean, paused } = await runCommittingAtPause(held, ["verify", "--graph", "g", "--json"], { sql: "grf_list_range", nth: 2 }, { frames: [setFrame(12, "ghost", 7)] }, hold);
    expect(clean.code, clean.stderr).toBe(0);
    expect(paused.stderr).toBe("");
    expect(JSON.parse(paused.stdout)).toEqual(JSON.parse(clean.stdout));
    expect(paused.code).toBe(0);
  });
});
