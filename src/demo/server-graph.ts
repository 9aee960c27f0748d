/**
 * The demo's "server": per-session counters (state nodes) grouped into shards, each shard mounted as a subgraph
 * with derived aggregates (request total, active sessions), and root totals over every shard. Writes come from a
 * seeded PRNG so a run is reproducible.
 */
import { createGraph } from "../graph/graph.js";
import type { JsonValue, ReactiveGraph } from "../graph/types.js";

export const DEMO_GRAPH_NAME = "demo-server";

/** Sessions per shard: small enough that a shard's aggregates stay cheap to recompute. */
const SHARD_SIZE = 50;

export interface ServerGraph {
  readonly graph: ReactiveGraph;
  /** Qualified paths of the session state nodes. */
  readonly sessions: readonly string[];
}

interface Session {
  requests: number;
  active: boolean;
}

/** Builds the server graph with `sessions` session nodes (>= 1), every session starting at zero requests. */
export function buildServerGraph(sessions: number): ServerGraph {
  if (!Number.isSafeInteger(sessions) || sessions < 1) {
    throw new RangeError(`buildServerGraph: sessions must be an integer >= 1, got ${String(sessions)}`);
  }
  const graph = createGraph(DEMO_GRAPH_NAME);
  const paths: string[] = [];
  const shardTotals: string[] = [];
  const shardActive: string[] = [];
  const shards = Math.ceil(sessions / SHARD_SIZE);
  for (let s = 0; s < shards; s++) {
    const shardName = `shard-${String(s).padStart(4, "0")}`;
    graph.mount(shardName);
    const shard = graph.subgraph(shardName);
    const local: string[] = [];
    for (let i = s * SHARD_SIZE; i < Math.min(sessions, (s + 1) * SHARD_SIZE); i++) {
      const name = `session-${String(i).padStart(6, "0")}`;
      shard.state(name, { requests: 0, active: false });
      local.push(name);
      paths.push(`${shardName}::${name}`);
    }
    shard.derived("requests", local, (...v) => sumOf(v, (x) => x.requests));
    shard.derived("active", local, (...v) => sumOf(v, (x) => (x.active ? 1 : 0)));
    shardTotals.push(`${shardName}::requests`);
    shardActive.push(`${shardName}::active`);
  }
  graph.derived("total-requests", shardTotals, (...v) => v.reduce<number>((a, b) => a + (b as number), 0));
  graph.derived("active-sessions", shardActive, (...v) => v.reduce<number>((a, b) => a + (b as number), 0));
  return { graph, sessions: paths };
}

function sumOf(values: readonly JsonValue[], pick: (s: Session) => number): number {
  let n = 0;
  for (const v of values) n += pick(v as unknown as Session);
  return n;
}

/**
 * Applies `count` session updates as one wave (one batch): a request on a random session, which also flips it
 * active or idle now and then. Returns the number of state changes written.
 */
export function applyUpdates(server: ServerGraph, random: () => number, count: number): number {
  const { graph, sessions } = server;
  graph.batch(() => {
    for (let i = 0; i < count; i++) {
      const path = sessions[Math.floor(random() * sessions.length)]!;
      const cur = graph.get(path) as unknown as Session;
      graph.set(path, { requests: cur.requests + 1, active: random() < 0.1 ? !cur.active : cur.active });
    }
  });
  return count;
}
