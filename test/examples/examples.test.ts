/**
 * Every example in examples/ runs, so none can rot: once against the repository (the package imports itself by
 * name), once as shipped in the tarball `npm pack` makes, installed into a scratch project, which proves what the
 * package ships is enough (the examples themselves, compiled workers found inside node_modules, the CLI bin, the
 * type-free entry).
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTestDatabase } from "../support/postgres-db.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), "grf-examples-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** What each example must print: the lines that show it did its job. */
const EXPECTED: Record<string, RegExp[]> = {
  "kv-inline.mjs": [/^user:1 = \{"name":"Ada","visits":3\}$/m, /^keys {3}= user:1, user:2$/m, /^refused: CodecError encode-failed$/m],
  "graph-two-processes.mjs": [/^writer: durable up to seq (\d+)$/m, /^restored at seq \d+: orders=5 revenue=100 average=20$/m],
  "compaction.mjs": [/^frames before: 200, after: 0; new baseline at seq 201$/m],
  "cli-inspect.mjs": [/^graph "app"$/m, /^result: clean \(exit 0\)$/m, /"value":"hello, world"/],
  "postgres.mjs": [/^writer: durable up to seq \d+$/m, /^restored at seq \d+: apples=12 pears=30 fruit=42$/m],
};

/** The tests' throwaway PostgreSQL server (started by the test run itself) for examples/postgres.mjs. */
const database = useTestDatabase();
const exampleSchemas: string[] = [];
afterAll(async () => {
  if (exampleSchemas.length === 0) return;
  const client = await (await database()).raw();
  for (const schema of exampleSchemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
});

async function runExample(dir: string, file: string): Promise<string> {
  if (file === "postgres.mjs") {
    const db = await database();
    // Its own schema, so the two runs (repository, packed package) do not share a store.
    const schema = `${db.schema}_${dir.includes("project") ? "packed" : "repo"}`;
    exampleSchemas.push(schema);
    return execFileSync(process.execPath, [join(dir, file), schema], {
      cwd: dir,
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, PG_URL: db.url },
    });
  }
  const out = mkdtempSync(join(scratch, "data-"));
  return execFileSync(process.execPath, [join(dir, file), out], { cwd: dir, encoding: "utf8", timeout: 60_000 });
}

function checkOutput(file: string, stdout: string): void {
  for (const re of EXPECTED[file] ?? []) expect(stdout, `${file} printed:\n${stdout}`).toMatch(re);
}

it("every example has its expected output listed here", () => {
  expect(readdirSync(join(REPO, "examples")).filter((f) => f.endsWith(".mjs")).sort()).toEqual(Object.keys(EXPECTED).sort());
});

describe("examples run against the repository", () => {
  for (const file of Object.keys(EXPECTED)) {
    it(file, async () => checkOutput(file, await runExample(join(REPO, "examples"), file)), 60_000);
  }
});

describe("examples run against the packed package", () => {
  let project = "";
  beforeAll(() => {
    project = join(scratch, "project");
    const modules = join(project, "node_modules");
    mkdirSync(modules, { recursive: true });
    // dist/ is built by `npm test`'s pretest; --ignore-scripts keeps pack from rebuilding it mid-run.
    const tarball = execFileSync("npm", ["pack", "--ignore-scripts", "--pack-destination", scratch], { cwd: REPO, encoding: "utf8" })
      .trim()
      .split("\n")
      .pop()!;
    const unpacked = join(scratch, "unpacked");
    mkdirSync(unpacked);
    execFileSync("tar", ["-xzf", join(scratch, tarball), "-C", unpacked]);
    cpSync(join(unpacked, "package"), join(modules, "graphrefly-storage"), { recursive: true });
    // The package's dependencies, already installed for the repository (no registry needed in tests).
    for (const entry of readdirSync(join(REPO, "node_modules"))) {
      if (entry.startsWith(".")) continue;
      symlinkSync(join(REPO, "node_modules", entry), join(modules, entry));
    }
  }, 120_000);

  // The copies the package ships, as a user who installed it runs them (node_modules/graphrefly-storage/examples).
  for (const file of Object.keys(EXPECTED)) {
    it(file, async () => checkOutput(file, await runExample(join(project, "node_modules", "graphrefly-storage", "examples"), file)), 60_000);
  }
});
