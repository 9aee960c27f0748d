/**
 * Restore is exact or fails (design §3.9): for random waves over build()'s graph that remove and re-add c as a
 * derived node on random deps (the code builds it on [a, b]) or as a state node, remove and re-add b, set values,
 * with compactions at random points, restore into a freshly built graph after every wave either equals the writer's
 * snapshot, or, exactly when the writer's c is a derived node on other deps than the code's, fails with RestoreError
 * `derived-mismatch` naming c and leaves the graph as built. A SQLite file written inline.
 */
import fc from "fast-check";
import { afterEach, expect, it } from "vitest";
import { restoreSnapshot, type JsonValue, type ReactiveGraph } from "../../src/index.js";
import { build } from "./fixtures/follow-graph.js";
import { sqliteInlineStore } from "./fixtures/follow-stores.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Op =
  | { t: "set"; path: "a" | "b"; value: number }
  | { t: "remove"; path: "b" | "c" }
  | { t: "derivedC"; deps: readonly string[] }
  | { t: "stateC"; value: number }
  | { t: "addB"; value: number; meta: Record<string, JsonValue> }
  | { t: "compact" };

const value = fc.integer({ min: 0, max: 9 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ t: fc.constant("set" as const), path: fc.constantFrom("a" as const, "b" as const), value }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("remove" as const), path: fc.constantFrom("b" as const, "c" as const) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("derivedC" as const), deps: fc.constantFrom(["a"], ["b"], ["a", "b"], ["b", "a"]) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("stateC" as const), value }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("addB" as const), value, meta: fc.constantFrom<Record<string, JsonValue>>({}, { unit: "kg" }) }) },
  { weight: 2, arbitrary: fc.constant({ t: "compact" as const }) },
);

/** One wave; one the graph refuses (a node that is there, deps missing, dependents left) is skipped. */
function apply(g: ReactiveGraph, o: Exclude<Op, { t: "compact" }>): void {
  try {
    if (o.t === "set") g.set(o.path, o.value);
    else if (o.t === "remove") g.remove(o.path);
    else if (o.t === "derivedC") g.derived("c", [...o.deps], (...vs: JsonValue[]) => (vs.length === 2 ? vs : (vs[0] as JsonValue)));
    else if (o.t === "stateC") g.addState("c", o.value);
    else g.addState("b", o.value, o.meta);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
  }
}

it("restore after every wave equals the writer, or fails derived-mismatch exactly when c is derived on other deps", async () => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 8 }), async (ops) => {
      const live = build();
      const { handle, reader, compact } = sqliteInlineStore(`derived-mismatch-prop-${runs++}`, live, cleanups);
      try {
        await handle.flush();
        for (const o of ops) {
          if (o.t === "compact") await compact();
          else {
            apply(live, o);
            await handle.flush();
          }
          const c = live.describeNode("c");
          const mismatch = c?.type === "derived" && JSON.stringify(c.deps) !== JSON.stringify(["a", "b"]);
          const g = build();
          const outcome = await restoreSnapshot(g, reader()).then(
            () => undefined,
            (err: unknown) => err,
          );
          if (mismatch) {
            expect(outcome).toMatchObject({ code: "derived-mismatch", details: { path: "c", stored: { deps: c.deps } } });
            expect(g.snapshot()).toEqual(build().snapshot());
          } else {
            expect(outcome).toBeUndefined();
            expect(g.snapshot()).toEqual(live.snapshot());
          }
        }
      } finally {
        for (const fn of cleanups.splice(0).reverse()) await fn();
      }
    }),
    { numRuns: 40 },
  );
});
