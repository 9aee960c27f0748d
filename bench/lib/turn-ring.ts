/**
 * The turn ring's codec, for the bench prototype (bench/turn-ring.ts, docs/design.md §3.35): the engine's own since
 * task 184 (src/engine/ring.ts), re-exported so the prototype measures what the engine runs.
 */
export { DEFAULT_TURN_RING_BYTES, TurnRingReader, TurnRingWriter, createTurnRing, type RingOp, type RingRecord } from "../../src/engine/ring.js";
