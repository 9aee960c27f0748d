/**
 * Review r211 of 168ce8c (fixed by 406348e): reAddedAbove kept the code's c through the baseline when the baseline
 * held c as a state node and a frame above re-added c as code-built, whatever spec that frame gave c. The writer's c on [a] (the
 * code's is on [a, b]): the code's c kept through the baseline keeps b, which the baseline removed, and the frames'
 * later removal of c leaves b behind (the writer has no b). The same defect class as 35fc02c, through the state-held
 * path 168ce8c opened; a baseline lacking c entirely is the older path (second case). Real SQLite stores (inline and
 * through an engine), compacted between the waves.
 */
import { afterEach, describe, expect, it } from "vitest";
import { restoreSnapshot } from "../../src/index.js";
import { build, removeC, same, waveWriter, type Wave } from "./fixtures/follow-graph.js";
import { followStores } from "./fixtures/follow-stores.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const stores = followStores("restore-state-held-other", cleanups);

const readdCOnA: Wave = (g) => void g.derived("c", ["a"], same);
const removeB: Wave = (g) => g.remove("b");
const addStateC: Wave = (g) => void g.addState("c", 5);

const cases: ReadonlyArray<[string, Wave[], Wave[]]> = [
  ["baseline holds c as a state node (168ce8c's path)", [removeC, addStateC, removeB], [removeC, readdCOnA, removeC]],
  ["baseline lacks c (the older path)", [removeC, removeB], [readdCOnA, removeC]],
];

describe.each(stores)("%s", (_, store) => {
  it.each(cases)("%s, then c re-added on [a] and removed: restore gives the writer's graph (no b)", async (_n, before, after) => {
    const live = build();
    const s = store(live);
    await s.handle.flush();
    const write = waveWriter(live, s.handle);
    for (const w of before) await write(w);
    await s.compact();
    for (const w of after) await write(w);
    expect(live.kindOf("b")).toBeUndefined();
    expect(live.kindOf("c")).toBeUndefined();
    const graph = build();
    await restoreSnapshot(graph, s.reader());
    expect(graph.kindOf("b")).toBeUndefined();
    expect(graph.snapshot()).toEqual(live.snapshot());
  });
});
