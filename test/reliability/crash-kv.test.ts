/**
 * kill -9 at the kv level: a child writes keys through an engine kv tier under sustained load and
 * reports each durable acknowledgement; the parent SIGKILLs it at a random moment. The next child
 * (a fresh process) verifies the store before writing on, and the parent checks it inline at the end:
 * every acknowledged key is present with its exact value, the stored keys form a gap-free prefix
 * (flushes commit in order), and the store keeps accepting writes. KV_CRASH_CYCLES=n for long runs.
 */
import { afterAll, beforeAll, describe, it, type ExpectStatic } from "vitest";
import { join } from "node:path";
import { fileKv, sqliteKv } from "../../src/tier/factories.js";
import type { KvStorageTier } from "../../src/tier/types.js";
import { assertBuilt, envCount, killAllChildren, prng, sleep, startChild, tempDir, type ChildMessage, type TempDir } from "./fixtures/crash-harness.js";
import { KEY_PREFIX, keyOf, sameValue, valueOf } from "./fixtures/kv-crash-model.mjs";

const CYCLES_PER_BACKEND = envCount("KV_CRASH_CYCLES", 16);
/** A safety net for a hung child, never the thing asserted. */
const TIMEOUT = 60_000 + CYCLES_PER_BACKEND * 5_000;

type Kind = "sqlite" | "file";

interface Verified {
  count: number;
  contiguous: number;
  holes: number;
  badValues: number;
  badKeys: number;
}

function openInline(kind: Kind, store: string): KvStorageTier<unknown> {
  return kind === "sqlite" ? sqliteKv<unknown>(store, { name: "crash-kv" }) : fileKv<unknown>(store, { name: "crash-kv" });
}

/** The same checks the child runs, done here with inline tiers (a different code path than the engine). */
async function verifyInline(kv: KvStorageTier<unknown>): Promise<Verified> {
  const present = new Set<number>();
  let badValues = 0;
  let badKeys = 0;
  for (const key of await kv.list(KEY_PREFIX)) {
    const i = Number(key.slice(KEY_PREFIX.length));
    if (!Number.isInteger(i) || keyOf(i) !== key) {
      badKeys++;
      continue;
    }
    present.add(i);
    if (!sameValue(await kv.load(key), valueOf(i))) badValues++;
  }
  let contiguous = 0;
  while (present.has(contiguous)) contiguous++;
  return { count: present.size, contiguous, holes: present.size - contiguous, badValues, badKeys };
}

function expectIntact(expect: ExpectStatic, v: Verified, acked: number, where: string): void {
  // Every index 0..acked was acknowledged durable: all must be there, unchanged, with nothing torn above.
  expect(v.contiguous, `${where}: acknowledged keys lost (acked up to ${acked})`).toBeGreaterThanOrEqual(acked + 1);
  expect(v.holes, `${where}: keys present above a missing one`).toBe(0);
  expect(v.badValues, `${where}: stored values differ from what was written`).toBe(0);
  expect(v.badKeys, `${where}: keys the writer never wrote`).toBe(0);
}

let tmp: TempDir;
beforeAll(() => {
  assertBuilt();
  tmp = tempDir("crash-kv");
});
afterAll(async () => {
  await killAllChildren();
  tmp.remove();
});

describe("kill -9 during kv writes (engine)", () => {
  const title = `%s: ${CYCLES_PER_BACKEND} cycles; every acknowledged key survives, restarts verify in a fresh process`;
  it.concurrent.for<Kind>(["sqlite", "file"])(title, { timeout: TIMEOUT }, async (kind, { expect }) => {
    const store = kind === "sqlite" ? join(tmp.dir, "store.db") : join(tmp.dir, "store");
    const rnd = prng(kind === "sqlite" ? 0x5eed1 : 0x5eed2);
    let acked = -1;
    let verifiedRuns = 0;
    let killsAfterAck = 0;
    for (let cycle = 0; cycle < CYCLES_PER_BACKEND; cycle++) {
      const child = startChild("kv-crash-writer.mjs", { kind, store, acked });
      if (rnd() < 0.2) {
        // Anywhere from process start through restore and the first writes.
        await sleep(Math.floor(rnd() * 300));
      } else {
        await child.waitFor("ack");
        await sleep(Math.floor(rnd() * 40));
        killsAfterAck++;
      }
      const messages: ChildMessage[] = await child.kill();
      const error = messages.find((m) => m.t === "error");
      expect(error, `${kind} cycle ${cycle}: child failed`).toBeUndefined();
      const verified = messages.find((m) => m.t === "verified") as (ChildMessage & Verified) | undefined;
      if (verified) {
        verifiedRuns++;
        expectIntact(expect, verified, acked, `${kind} cycle ${cycle} (fresh process)`);
      }
      for (const m of messages) if (m.t === "ack") acked = Math.max(acked, m.upTo as number);
    }
    // Each cycle killed after an ack started from a verified store, so verification really ran.
    expect(verifiedRuns).toBeGreaterThanOrEqual(killsAfterAck);
    expect(acked).toBeGreaterThan(0);

    const kv = openInline(kind, store);
    expectIntact(expect, await verifyInline(kv), acked, `${kind}: final inline check`);
    // The store still accepts writes after all those crashes.
    kv.save("after-crashes", { ok: true });
    await kv.flush();
    await kv.close();
    const again = openInline(kind, store);
    expect(await again.load("after-crashes")).toEqual({ ok: true });
    await again.close();
  });
});
