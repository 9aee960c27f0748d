/**
 * Suite 5: codec and checksum cost per frame, against the plain JSON built-ins. These are the per-change costs
 * docs/design.md §3.14 moves off the main thread in engine mode; `structuredClone` stands for what engine mode pays
 * instead (a frame crossing to the worker).
 */
import { jsonCodec } from "../../src/codec/index.js";
import { verifyWalFrameChecksum, walFrameChecksum, walFrameCodec, type WALFrame } from "../../src/wal/index.js";
import { info } from "../lib/goals.js";
import { batched, latencyOf, newBench, type Budget } from "../lib/timing.js";
import type { Row, Suite, SuiteOutput } from "../lib/types.js";
import { asUnsealed, makeFrameBody, makeValue } from "../lib/workload.js";

const FRAMES = 256;

interface Op {
  readonly name: string;
  /** Row whose time this one is compared with. */
  readonly baseline: string;
  readonly fn: (i: number) => number;
  /** Frames one call handles (the hand-off clones a coalesced array, as the engine's one message per tick does). */
  readonly frames?: number;
}

/** Frames per coalesced hand-off in the structuredClone row. */
const HANDOFF = 100;

export const codecSuite: Suite = {
  id: 5,
  title: "Codec and checksum per frame",
  async run(ctx): Promise<SuiteOutput> {
    const budget: Budget = ctx.quick
      ? { time: 150, iterations: 10, warmupTime: 50, warmupIterations: 5 }
      : { time: 1000, iterations: 50, warmupTime: 200, warmupIterations: 10 };
    const inner = ctx.quick ? 200 : 1000;
    const bodies = Array.from({ length: FRAMES }, (_, i) => makeFrameBody(i + 1, `graph::node-${i}`, makeValue(i)));
    const sealed: WALFrame[] = bodies.map((b) => walFrameCodec.decode(walFrameCodec.encode(asUnsealed(b))));
    const texts = sealed.map((f) => JSON.stringify(f));
    const jsonBytes = sealed.map((f) => jsonCodec.encode(f));
    const frameBytes = bodies.map((b) => walFrameCodec.encode(asUnsealed(b)));
    const at = <T>(xs: readonly T[], i: number): T => xs[i % FRAMES]!;
    const handoff = bodies.slice(0, HANDOFF);

    const STRINGIFY = "JSON.stringify(frame)";
    const PARSE = "JSON.parse(text)";
    const ops: Op[] = [
      { name: STRINGIFY, baseline: STRINGIFY, fn: (i) => JSON.stringify(at(sealed, i)).length },
      { name: "jsonCodec.encode(frame) (RFC 8785)", baseline: STRINGIFY, fn: (i) => jsonCodec.encode(at(sealed, i)).byteLength },
      { name: "walFrameChecksum(body) (RFC 8785 + SHA-256)", baseline: STRINGIFY, fn: (i) => walFrameChecksum(at(bodies, i)).length },
      { name: "walFrameCodec.encode(body) (seal + encode)", baseline: STRINGIFY, fn: (i) => walFrameCodec.encode(asUnsealed(at(bodies, i))).byteLength },
      {
        name: `structuredClone of ${HANDOFF} bodies, per frame (engine-mode hand-off)`,
        baseline: STRINGIFY,
        fn: () => structuredClone(handoff).length,
        frames: HANDOFF,
      },
      { name: PARSE, baseline: PARSE, fn: (i) => (JSON.parse(at(texts, i)) as WALFrame).frame_seq },
      { name: "jsonCodec.decode(bytes)", baseline: PARSE, fn: (i) => (jsonCodec.decode(at(jsonBytes, i)) as WALFrame).frame_seq },
      { name: "walFrameCodec.decode(bytes) (parse + validate)", baseline: PARSE, fn: (i) => walFrameCodec.decode(at(frameBytes, i)).frame_seq },
      { name: "verifyWalFrameChecksum(frame)", baseline: PARSE, fn: (i) => (verifyWalFrameChecksum(at(sealed, i)) ? 1 : 0) },
    ];
    const bench = newBench("codec and checksum", budget);
    for (const op of ops) bench.add(op.name, batched(Math.max(1, Math.round(inner / (op.frames ?? 1))), op.fn));
    ctx.log(`suite 5: ${ops.length} operations, ${inner} calls per sample`);
    await bench.run();

    const meanNs = new Map<string, number>();
    const rows: Row[] = ops.map((op) => {
      const lat = latencyOf(bench.getTask(op.name)!);
      const per = op.frames ?? 1;
      meanNs.set(op.name, (lat.meanMs * 1e6) / per);
      return { name: op.name, opsPerSec: (1000 * per) / lat.meanMs, meanNs: (lat.meanMs * 1e6) / per, p99Ns: (lat.p99Ms * 1e6) / per };
    });
    for (const [i, row] of rows.entries()) row.vsJson = meanNs.get(ops[i]!.name)! / meanNs.get(ops[i]!.baseline)!;
    const checksumUs = (meanNs.get(ops[2]!.name) ?? NaN) / 1000;
    const sealUs = (meanNs.get(ops[3]!.name) ?? NaN) / 1000;
    const cloneUs = (meanNs.get(ops[4]!.name) ?? NaN) / 1000;
    const frameSize = frameBytes[0]!.byteLength;

    return {
      title: "Codec and checksum per frame",
      legend: [
        `A frame is a \`node.set\` WAL frame of ~${frameSize} bytes (a small record value); ${FRAMES} distinct frames in rotation.`,
        `One sample = the mean of ${inner} calls (single calls are below the timer's resolution); p99 is over those sample means.`,
        "× JSON = time / the built-in doing the same direction of work (JSON.stringify for encoders, JSON.parse for decoders).",
      ],
      columns: [
        { key: "name", label: "operation" },
        { key: "opsPerSec", label: "ops/s", kind: "number" },
        { key: "meanNs", label: "mean ns", kind: "number" },
        { key: "p99Ns", label: "p99 ns", kind: "number" },
        { key: "vsJson", label: "× JSON", kind: "ratio" },
      ],
      rows,
      goals: [
        info(
          "5.checksum",
          "checksum cost per frame (docs/design.md §3.14 estimates ~5 µs; engine mode runs it in the worker)",
          `walFrameChecksum ${checksumUs.toFixed(2)} µs, seal + encode ${sealUs.toFixed(2)} µs, vs structuredClone ${cloneUs.toFixed(2)} µs on the main thread`,
        ),
      ],
      config: { frames: FRAMES, callsPerSample: inner, frameBytes: frameSize, budget },
    };
  },
};
