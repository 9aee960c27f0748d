/**
 * Worker of bench/turn-ring.ts, a stand-in for a store actor's intake: takes one turn's writes as a writes message
 * (the engine's flat array, protocol.ts packWrites) or from the TurnRing, decodes them and only counts them (with a
 * checksum of what it decoded, in the order applied), so the bench times the hand-off alone. It drains the ring on a 1 ms timer while
 * records arrive and sleeps in Atomics.waitAsync after `idlePolls` empty polls (MODE); a SYNC message carries the
 * ring position at its send, and everything before it is applied before it is answered.
 */
import { parentPort, workerData } from "node:worker_threads";
import { isWritesMessage, unpackWrites } from "../../src/engine/protocol.js";
import { columnsLayout, type FrameColumns } from "../../src/wal/frame-columns.js";
import { TurnRingReader, type RingOp } from "./turn-ring.js";
import { MODE, OPS, SYNC, SYNCED, type SyncedMessage, type TurnRingWorkerData } from "./turn-ring-shared.js";

const data = workerData as TurnRingWorkerData;
const reader = new TurnRingReader(data.ring);
let applied = 0;
let checksum = 0;
let records = 0;
let messages = 0;
let sleeps = 0;
let idlePolls = 20;

function sum(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}

/** Order matters: a write applied out of issue order changes the checksum. */
const mix = (h: number, write: number): number => (Math.imul(h, 1_000_003) + write) | 0;

function apply(ops: readonly RingOp[]): void {
  for (const op of ops) {
    if (op.t === "puts") {
      for (let i = 0; i < op.keys.length; i++) checksum = mix(checksum, (sum(op.keys[i]!) + sum(JSON.stringify(op.values[i]))) | 0);
      applied += op.keys.length;
    } else {
      const cols = op.cols as FrameColumns;
      for (let i = 0; i < op.keys.length; i++) {
        checksum = mix(checksum, (sum(op.keys[i]!) + sum(JSON.stringify(columnsLayout.payload(cols, i))) + sum(String(columnsLayout.path(cols, i)))) | 0);
      }
      applied += op.n;
    }
  }
}

function drain(until?: number): number {
  let n = 0;
  for (let r = reader.next(messages, until); r !== undefined; r = reader.next(messages, until)) {
    apply(r.ops);
    records++;
    n++;
  }
  return n;
}

const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 1));

async function loop(): Promise<void> {
  let idle = 0;
  for (;;) {
    if (drain() > 0) idle = 0;
    else idle++;
    if ((idlePolls === 0 || idle > idlePolls) && !reader.unread()) {
      sleeps++;
      await reader.sleep();
      idle = 0;
    } else await pause();
  }
}
void loop();

parentPort!.on("message", (m: unknown) => {
  if (isWritesMessage(m)) {
    apply(unpackWrites(m) as unknown as RingOp[]);
    messages++;
    return;
  }
  const msg = m as { type?: string; position?: number; idlePolls?: number; batch?: unknown };
  if (msg.type === OPS) {
    // A batch the ring could not take: everything written to the ring before it goes first.
    drain(msg.position);
    if (isWritesMessage(msg.batch)) apply(unpackWrites(msg.batch) as unknown as RingOp[]);
    messages++;
  } else if (msg.type === MODE) {
    idlePolls = msg.idlePolls!;
    messages++;
  } else if (msg.type === SYNC) {
    drain(msg.position);
    messages++;
    const answer: SyncedMessage = { type: SYNCED, applied, checksum, records, messages, sleeps };
    parentPort!.postMessage(answer);
  }
});
