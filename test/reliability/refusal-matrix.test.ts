/**
 * "Acknowledged means stored" (docs/design.md §3.16): a value that cannot be stored is refused at save time or fails the
 * next flush() with CodecError('encode-failed') (and onError hears it once); a flush never resolves while a value
 * accepted before it was not stored. The whole matrix: tier x backend x inline/engine x cadence x value.
 * Each case first lets any background flush of the refused value run (a read is ordered after it in both modes),
 * because that is where the refusal used to be swallowed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { memoryBackend } from "../../src/backend/memory.js";
import { CodecError, StorageError } from "../../src/errors.js";
import { kvStorage } from "../../src/tier/kv.js";
import type { TierCommonOptions } from "../../src/tier/types.js";
import { inlineFactory, workerFactory, type BackendKind, type HarnessFactory, type TierHarness } from "../support/tier-harness.js";
import { wrapBackend } from "../support/test-backend.js";
import { errorOf, syncErrorOf, until } from "../support/wait.js";
import { assertBuilt } from "./fixtures/crash-harness.js";

beforeAll(() => assertBuilt());

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

function cycle(): unknown {
  const c: Record<string, unknown> = { a: 1 };
  c.self = c;
  return c;
}

/** Values no built-in codec can store (a fresh instance per case: nothing is shared between stores). */
const refused: Array<[string, () => unknown]> = [
  ["bigint", () => 10n],
  ["NaN", () => Number.NaN],
  ["lone surrogate", () => "ab\ud83d"],
  ["class instance", () => new Point(1, 2)],
  ["undefined in an array", () => [1, undefined]],
  ["Date", () => new Date(0)],
  ["Map", () => new Map([["a", 1]])],
  ["function", () => () => 1],
  ["cycle", cycle],
];

type Cadence = { label: string; opts: Pick<TierCommonOptions, "debounceMs" | "compactEvery"> };
const cadences: Cadence[] = [
  { label: "sync-through", opts: {} },
  { label: "debounce 0", opts: { debounceMs: 0 } },
  { label: "debounced", opts: { debounceMs: 60_000 } },
  { label: "compactEvery 1", opts: { debounceMs: 60_000, compactEvery: 1 } },
];

const describeError = (e: unknown): string => `${(e as Error).name}/${String((e as { code?: unknown }).code)}`;

function expectEncodeFailed(err: unknown): void {
  expect(err, "expected CodecError(encode-failed)").toBeInstanceOf(CodecError);
  expect((err as CodecError).code).toBe("encode-failed");
}

/**
 * `refuse` hands the value to the tier. Either it throws CodecError at once, or the next flush rejects with it
 * and onError hears it exactly once. The refusal is delivered once: the flush after it resolves.
 */
async function expectRefused(
  h: TierHarness,
  refuse: () => void,
  barrier: () => Promise<unknown>,
  flush: () => Promise<void>,
): Promise<void> {
  const thrown = syncErrorOf(refuse);
  if (thrown !== undefined) {
    expectEncodeFailed(thrown);
    return;
  }
  await barrier(); // any background (sync-through / compactEvery) flush of the refused value has run
  expectEncodeFailed(await errorOf(flush));
  await until(() => h.errors.length >= 1, "onError report");
  expect(h.errors.map(describeError)).toEqual(["CodecError/encode-failed"]);
  expect(await errorOf(flush), "the refusal is reported once; the refused value is not retried").toBeUndefined();
}

const factories: HarnessFactory[] = (["memory", "file", "sqlite"] as const satisfies readonly BackendKind[]).flatMap((kind) => [
  inlineFactory(kind),
  workerFactory(kind),
]);

for (const factory of factories) {
  describe(`refused values: ${factory.name}`, () => {
    const live: TierHarness[] = [];
    const open = async (): Promise<TierHarness> => {
      const h = await factory.open();
      live.push(h);
      return h;
    };
    afterEach(async () => {
      for (const h of live.splice(0)) await h.close();
    });
    afterAll(() => factory.cleanup());

    describe.each(cadences)("$label", ({ opts }) => {
      it.each(refused)("kv, %s: refused, the rest of the batch stored", async (_name, make) => {
        const h = await open();
        const kv = h.kv<unknown>({ name: "kv", ...opts });
        kv.save("good", 1);
        await expectRefused(
          h,
          () => kv.save("bad", make()),
          () => kv.load("good"),
          () => kv.flush(),
        );
        expect(await kv.load("good")).toBe(1);
        expect(await kv.load("bad")).toBeUndefined();
        kv.save("later", 2);
        await kv.flush();
        expect(await kv.load("later")).toBe(2);
      });

      it.each(refused)("snapshot, %s: refused, the tier keeps working", async (_name, make) => {
        const h = await open();
        let key = "bad";
        const s = h.snapshot<unknown>({ name: "snap", keyOf: () => key, ...opts });
        await expectRefused(
          h,
          () => s.save(make()),
          () => s.load("bad"),
          () => s.flush(),
        );
        expect(await s.load("bad")).toBeUndefined();
        key = "good";
        s.save({ v: 1 });
        await s.flush();
        expect(await s.load("good")).toEqual({ v: 1 });
      });

      it.each(refused)("append-log, %s: the refused append is dropped, the others kept in order", async (_name, make) => {
        const h = await open();
        const log = h.appendLog<unknown>({ name: "log", ...opts });
        log.appendEntries([1]);
        await expectRefused(
          h,
          () => log.appendEntries([make()]),
          () => log.loadEntries(),
          () => log.flush(),
        );
        log.appendEntries([2]);
        await log.flush();
        expect((await log.loadEntries()).entries).toEqual([1, 2]);
      });
    });

    it("a refusal happens when the value is accepted, so a rollback does not undo it, in every cadence", async () => {
      const h = await open();
      for (const [i, { opts }] of cadences.entries()) {
        const kv = h.kv<unknown>({ name: `kv-${i}`, ...opts });
        kv.save("bad", 10n);
        await kv.load("bad");
        kv.rollback();
        expectEncodeFailed(await errorOf(() => kv.flush()));
      }
    });

    it("close() reports a refusal no flush reported, and still closes the tier", async () => {
      const h = await open();
      const kv = h.kv<unknown>({ name: "kv" });
      kv.save("bad", Number.NaN);
      kv.save("good", 1);
      await kv.load("good");
      h.untrack(kv);
      expectEncodeFailed(await errorOf(() => kv.close()));
      const after = syncErrorOf(() => kv.save("x", 1));
      expect(after).toBeInstanceOf(StorageError);
      expect((after as StorageError).code).toBe("closed");
    });
  });
}

describe("refusals and flushes in flight (inline tier over an async backend)", () => {
  it("every flush called before the refusal was reported rejects with it; the next one resolves", async () => {
    const errors: Error[] = [];
    const kv = kvStorage<unknown>(wrapBackend(memoryBackend(), { async: true }), { name: "kv", onError: (e) => errors.push(e) });
    kv.save("good", 1); // its sync-through flush is in flight
    kv.save("bad", Number.NaN); // its flush waits behind it
    const [a, b] = await Promise.all([errorOf(() => kv.flush()), errorOf(() => kv.flush())]);
    expectEncodeFailed(a);
    expectEncodeFailed(b);
    expect(errors.map(describeError)).toEqual(["CodecError/encode-failed"]);
    expect(await errorOf(() => kv.flush())).toBeUndefined();
    expect(await kv.load("good")).toBe(1);
    await kv.close();
  });
});
