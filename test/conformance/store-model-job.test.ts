/**
 * The store model's job op (test/conformance/store-model.ts) on fixed sequences: a job (no tier) writes a key in its
 * place on the backend's write lane, as a compaction's commit does, and a tier's put-back value of the key (a failed
 * flush's) is stale after it (design §3.30): its retry must not land it over the job's value. The random sequences of
 * store-model.property draw the op too; these pin the cases down. Memory behind a fault wrapper, sync and async.
 */
import { describe, expect, it } from "vitest";
import { faultyMemoryTarget } from "./store-model-targets.js";
import { runOps, type Op } from "./store-model.js";

const sequences: Array<[string, Op[]]> = [
  [
    "kvC's failed flush, then a job's write of its key, then kvC's retry",
    [{ t: "save", tier: "kvC", key: "a" }, { t: "failFlush", tier: "kvC" }, { t: "job", key: "a" }, { t: "flushNow", tier: "kvC" }, { t: "settle" }],
  ],
  [
    "the snapshot tier's failed flush, then a job's write of its key, then a close",
    [{ t: "snapSave", key: "b" }, { t: "failFlush", tier: "snap" }, { t: "job", key: "b" }, { t: "reopen" }],
  ],
  [
    "guard: a job's write before the failed flush, whose retry then lands",
    [{ t: "job", key: "c" }, { t: "save", tier: "kvC", key: "c" }, { t: "failFlush", tier: "kvC" }, { t: "flushNow", tier: "kvC" }, { t: "settle" }],
  ],
];

describe.each([false, true])("store model, a job's write beside a failed flush (memory, async %s)", (async) => {
  for (const [name, ops] of sequences) {
    it(name, async () => {
      expect(await runOps(faultyMemoryTarget(async), ops)).toEqual([]);
    });
  }
});
