/**
 * The turn ring's codec (src/engine/ring.ts) over random records: every record the writer publishes reads back as
 * the structured clone of its ops (what the port message would have carried), in order, through a small ring that
 * wraps and fills (a refused record must leave no trace in the next one's "same as last record" slots), and a
 * record refused for a lone surrogate publishes nothing.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TurnRingReader, TurnRingWriter, createTurnRing, type RingOp } from "../../src/engine/ring.js";

/** Strings on both sides of the writer's ASCII loop length (64), ASCII or not. */
const text = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.string({ minLength: 60, maxLength: 70 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.constantFrom("data", "graph.value", "node.set", "", "g/wal/00000000000000000004"),
);

/** JSON-shaped values and the numbers structured clone keeps that JSON does not (-0, NaN, infinities). */
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    text,
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(text, tie("v"), { maxKeys: 4 }),
  ),
})).v;

/**
 * A columns slot: undefined (an absent field) or a value; a small pool makes the previous record's slot often equal
 * (strings, numbers, null, booleans: written as "same"; objects never are).
 */
const pooled = fc.constantFrom<unknown>(undefined, 1, null, "data", false, 1796587327338001000, "");
const slot = fc.oneof(pooled, value);
/** A frame's columns: 14 header slots (mostly from the pool: often the same as the last record's), then the frame's. */
const frameCols = fc.tuple(fc.array(fc.oneof(pooled, pooled, slot), { minLength: 14, maxLength: 14 }), fc.array(slot, { minLength: 1, maxLength: 8 })).map(([h, t]) => [...h, ...t]);

const meta = { tier: fc.nat({ max: 5 }), w: fc.double({ noNaN: true }), n: fc.nat({ max: 1000 }), open: fc.option(fc.constant(true as const), { nil: undefined }) };

const op: fc.Arbitrary<RingOp> = fc.oneof(
  fc.record({ t: fc.constant("puts" as const), ...meta, keys: fc.array(text, { maxLength: 3 }) }).chain((o) =>
    fc.array(value, { minLength: o.keys.length, maxLength: o.keys.length }).map((values) => ({ ...o, values })),
  ),
  fc.record({ t: fc.constant("columns" as const), ...meta, keys: fc.array(text, { maxLength: 3 }), cols: fc.oneof(fc.array(slot, { maxLength: 24 }), frameCols) }),
);

/** What the reader returns: `open` only when set (the writer does not carry `open: undefined`). */
function expected(ops: readonly RingOp[]): RingOp[] {
  return structuredClone(ops).map((o) => {
    const { open, ...rest } = o;
    return open === true ? { ...rest, open } : rest;
  }) as RingOp[];
}

describe("the turn ring's codec over random records", () => {
  it("reads back every published record as its structured clone, in order, through wraps and a full ring", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ ops: fc.array(op, { minLength: 1, maxLength: 3 }), readAfter: fc.boolean() }), { minLength: 1, maxLength: 30 }),
        fc.constantFrom(1024, 4096),
        (records, capacity) => {
          const sab = createTurnRing(capacity);
          const w = new TurnRingWriter(sab);
          const r = new TurnRingReader(sab);
          const pending: RingOp[][] = [];
          const drain = (): void => {
            for (let got = r.next(0); got !== undefined; got = r.next(0)) {
              expect(pending.length).toBeGreaterThan(0);
              expect(got.ops).toStrictEqual(pending.shift());
            }
            expect(pending).toHaveLength(0);
          };
          for (const { ops, readAfter } of records) {
            // Well-formed strings only here: a refusal means the record did not fit.
            if (w.tryWrite(ops, 0)) pending.push(expected(ops));
            if (readAfter) drain();
          }
          drain();
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a record refused for a lone surrogate publishes nothing: the next record's same-as-last slots are the published record's", () => {
    const head = fc.array(fc.oneof(fc.integer(), text, fc.boolean()), { minLength: 14, maxLength: 14 });
    fc.assert(
      fc.property(head, head, fc.array(slot, { minLength: 1, maxLength: 4 }), fc.nat({ max: 70 }), (published, refused, tail, at) => {
        const sab = createTurnRing(1 << 16);
        const w = new TurnRingWriter(sab);
        const r = new TurnRingReader(sab);
        const columns = (cols: unknown[]): RingOp[] => [{ t: "columns", tier: 1, w: 1, n: 1, keys: ["k"], cols }];
        const first = columns([...published, ...tail]);
        expect(w.tryWrite(first, 0)).toBe(true);
        // Its header is written before the lone surrogate is met; the next record repeats that header.
        expect(w.tryWrite(columns([...refused, "x".repeat(at) + "\ud800"]), 0)).toBe(false);
        const next = columns([...refused, ...tail]);
        expect(w.tryWrite(next, 0)).toBe(true);
        expect(r.next(0)!.ops).toStrictEqual(expected(first));
        expect(r.next(0)!.ops).toStrictEqual(expected(next));
        expect(r.next(0)).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });
});
