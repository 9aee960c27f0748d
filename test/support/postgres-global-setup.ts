/**
 * vitest globalSetup: one throwaway PostgreSQL server per test run, unless PG_URL names an existing one. Startup
 * runs in the background (tests that need the server wait for it in postgres-db.ts), so runs that do not touch
 * PostgreSQL pay almost nothing. The server stops when the run ends, or when this process dies.
 */
import type { TestProject } from "vitest/node";
import { startPostgresServer } from "../../bench/lib/postgres-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Connection URL of the test server. */
    pgUrl: string;
    /** The throwaway server's directory ("" for PG_URL): its status file tells when it is ready. */
    pgRoot: string;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const given = process.env.PG_URL;
  if (given) {
    project.provide("pgUrl", given);
    project.provide("pgRoot", "");
    return undefined;
  }
  const server = await startPostgresServer();
  project.provide("pgUrl", server.url);
  project.provide("pgRoot", server.root);
  return () => server.stop();
}
