/**
 * Worker of bench/turn-ring.ts: receives one turn's ops by a comlink `apply` call (answered, as the store actor
 * answers), by a plain port message (not answered), or from a TurnRing (drained when woken), and only counts
 * them, so the bench times the hand-off alone.
 */
import { parentPort, workerData } from "node:worker_threads";
import { expose } from "comlink";
import nodeEndpoint from "comlink/dist/esm/node-adapter.mjs";
import { TurnRingReader } from "./turn-ring.js";
import { OPS, type TurnRingWorkerData } from "./turn-ring-shared.js";

interface Batch {
  readonly t: string;
  readonly keys?: readonly string[];
  readonly cols?: { readonly keys: readonly string[] };
}


let applied = 0;
const count = (ops: readonly Batch[]): void => {
  for (const op of ops) applied += op.keys?.length ?? op.cols?.keys.length ?? 1;
};

const data = workerData as TurnRingWorkerData;
const reader = new TurnRingReader(data.ring);
let messages = 0;

function drain(until?: number): void {
  for (let r = reader.next(messages, until); r !== undefined; r = reader.next(messages, until)) count(r.value as Batch[]);
}

async function loop(): Promise<void> {
  for (;;) {
    drain();
    await reader.wait();
  }
}
void loop();
parentPort!.on("message", (m: { type?: unknown; ops?: Batch[] }) => {
  if (m.type === OPS) count(m.ops!);
});

expose(
  {
    apply(ops: Batch[]): { results: never[]; errors: never[] } {
      count(ops);
      return { results: [], errors: [] };
    },
    /** Everything the ring held up to `position` is applied; answers the count of ops seen. */
    sync(position: number): number {
      drain(position);
      messages++;
      return applied;
    },
  },
  nodeEndpoint(parentPort!),
);
