import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // A throwaway PostgreSQL server for the run (or PG_URL), started in the background.
    globalSetup: ["test/support/postgres-global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Vitest's own default is one worker fewer than the cores: ONE on the 2-core CI machine, where the 417 files ran
    // one after another (the run's wall time was the sum of the files' times). Most files spend their time waiting
    // (leases, PostgreSQL, child processes, worker threads, debounces), so two run side by side on two cores; on more
    // cores this is Vitest's default. Each PostgreSQL file has its own schema on the shared server.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
