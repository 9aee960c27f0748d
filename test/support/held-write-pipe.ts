/**
 * A network that holds a writer's write request on its way to PostgreSQL and delivers it late: the setup of the tests
 * of a write in doubt whose request reaches the server after the writer was told (postgres-late-write,
 * postgres-unsettled-doubt). Built on test/support/postgres-pipe.ts.
 */
import type { TestDatabase } from "./postgres-db.js";
import type { PipeConnection, usePipes } from "./postgres-pipe.js";
import { until } from "./wait.js";

const TERMINATE = "pg_terminate_backend";

export interface HeldWritePipe {
  /** The server's URL through this pipe. */
  readonly url: string;
  /** While `refuseEnds` is set the server refuses every request to end a session, with an error (see below). */
  readonly state: { refuseEnds: boolean };
  /** Holds the next write request (grf_write_…) and whatever follows it on its connection. */
  hold(): void;
  /** Delivers the held request, and waits until the server answered it or had ended its session before. */
  deliver(): Promise<void>;
}

/**
 * A pipe to `db` that holds the first write request sent after `hold()`; that connection alone is frozen, so its
 * server session stays open when the client drops it (other connections close as they should: frozen, each close()
 * would wait for its connections' bound). It tells when the held request was settled on the server: answered after
 * `deliver()`, or its session ended (an ErrorResponse with SQLSTATE 57P01, admin_shutdown) before.
 * - `dropEnds`: the request ending the held session is lost on its way (a second network fault): nothing confirms its
 *   end;
 * - `state.refuseEnds`: the server refuses the end (the role may not end the session): the pipe renames the function,
 *   same length so the message stays well formed, and the server answers "function does not exist".
 */
export async function heldWritePipe(pipes: ReturnType<typeof usePipes>, db: TestDatabase, opts: { dropEnds?: boolean } = {}): Promise<HeldWritePipe> {
  let holding = false;
  let held: PipeConnection | undefined;
  const passes: Array<() => void> = [];
  let delivered = false;
  let settled = false;
  const state = { refuseEnds: false };
  const pipe = await pipes(db.url, {
    frozen: (conn) => conn === held,
    toServer: (d, pass, conn) => {
      if (opts.dropEnds === true && d.includes(TERMINATE)) return;
      const at = d.indexOf(TERMINATE);
      if (state.refuseEnds && at >= 0) d.write("X", at + TERMINATE.length - 1);
      if (holding && d.includes("grf_write_")) {
        holding = false;
        held = conn;
      }
      if (conn === held && !delivered) return void passes.push(pass);
      pass();
    },
    toClient: (d, pass, conn) => {
      if (conn === held && (delivered || d.includes("57P01"))) settled = true;
      pass();
    },
  });
  return {
    url: pipe.url,
    state,
    hold: () => void (holding = true),
    deliver: async () => {
      delivered = true;
      for (const pass of passes.splice(0)) pass();
      await until(() => settled, "the held request settled on the server", { timeoutMs: 30_000 });
    },
  };
}
