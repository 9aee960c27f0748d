/**
 * Which flushes a refusal fails (docs/design.md §3.16), in the cases a review found wrong after flushes began to
 * answer only for the writes offered before their call:
 * - a value a failed flush put back, then superseded by a refused value saved later: the flushes called after the
 *   put-back value was saved resolved, that value never stored (kv and snapshot);
 * - past 64 refusal records a merged refusal was never reported: a flush called after it resolved.
 * A real memory backend behind the asynchronous test wrapper (writes held at a gate, then failed once).
 */
import { describe, expect, it } from "vitest";
import { kvStorage } from "../../src/tier/kv.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { memoryBackend } from "../../src/backend/memory.js";
import { CodecError } from "../../src/errors.js";
import { wrapBackend } from "../support/test-backend.js";
import { refusingBad, outcome } from "../support/refusals.js";



const heldBackend = () => wrapBackend(memoryBackend(), { async: true });

describe("a refused value superseding one a failed flush put back", () => {
  it("kv: the flush called after the put-back value rejects", async () => {
    const backend = heldBackend();
    const errors: Error[] = [];
    const kv = kvStorage<string>(backend, { name: "kv", codec: refusingBad(), debounceMs: 60_000, onError: (e) => errors.push(e) });
    const release = backend.holdWrites();
    kv.save("k", "v1");
    backend.failNext(1);
    const first = kv.flush(); // takes v1, held, then fails: v1 goes back pending
    const second = kv.flush(); // answers for v1
    kv.save("k", "bad"); // supersedes v1 once it is put back, and is refused
    release();
    expect(await outcome(first)).toBe("rejected backend-error");
    expect(await outcome(second)).toBe("rejected encode-failed");
    expect(await backend.inner.read("k")).toBeUndefined();
    expect(await outcome(kv.flush())).toBe("resolved");
    expect(errors.filter((e) => e instanceof CodecError)).toHaveLength(1);
  });

  it("kv: a flush waiting behind a delete takes v1 at its call; the refused value saved after fails the next", async () => {
    const backend = heldBackend();
    const kv = kvStorage<string>(backend, { name: "kv", codec: refusingBad(), debounceMs: 60_000, onError: () => undefined });
    let release = backend.holdWrites();
    kv.save("k", "v1");
    backend.failNext(1);
    const first = kv.flush();
    release();
    expect(await outcome(first)).toBe("rejected backend-error"); // v1 pending again
    release = backend.holdWrites();
    const deleting = kv.delete("other"); // in flight: the next flush waits behind it
    const second = kv.flush(); // takes v1 at its call, written behind the delete (docs/design.md §3.30)
    kv.save("k", "bad"); // after the call: not the second flush's, as over a synchronous backend
    release();
    await deleting;
    expect(await outcome(second)).toBe("resolved");
    expect(new TextDecoder().decode(await backend.inner.read("k"))).toContain("v1");
    expect(await outcome(kv.flush())).toBe("rejected encode-failed");
    expect(new TextDecoder().decode(await backend.inner.read("k"))).toContain("v1");
  });

  it("snapshot: the flush called after the failed record rejects when a refused record replaced it", async () => {
    const backend = heldBackend();
    const snap = snapshotStorage<string>(backend, { name: "snap", codec: refusingBad(), debounceMs: 60_000, onError: () => undefined });
    const release = backend.holdWrites();
    snap.save("A");
    backend.failNext(1);
    const first = snap.flush(); // A in flight, held, fails
    const second = snap.flush(); // answers for A
    snap.save("bad"); // pending: A's failure keeps this newer record and drops A
    release();
    expect(await outcome(first)).toBe("rejected backend-error");
    expect(await outcome(second)).toBe("rejected encode-failed");
    expect(await snap.load()).toBeUndefined();
  });

  it("without the failure: a value saved after the call is not the call's (the next flush rejects)", async () => {
    const backend = heldBackend();
    const kv = kvStorage<string>(backend, { name: "kv", codec: refusingBad(), debounceMs: 60_000, onError: () => undefined });
    const release = backend.holdWrites();
    kv.save("x", "x");
    const first = kv.flush();
    kv.save("k", "v1");
    const second = kv.flush(); // takes v1 at its call, behind the first (docs/design.md §3.30)
    kv.save("k", "bad"); // after the call: not the second flush's
    release();
    expect(await outcome(first)).toBe("resolved");
    expect(await outcome(second)).toBe("resolved");
    expect(new TextDecoder().decode(await backend.inner.read("k"))).toContain("v1");
    expect(await outcome(kv.flush())).toBe("rejected encode-failed");
  });
});

describe("refusal records merged past 64", () => {
  it("a refusal merged after a flush was called still fails the flush called after it, once", async () => {
    const backend = heldBackend();
    const errors: Error[] = [];
    const kv = kvStorage<unknown>(backend, { name: "kv", debounceMs: 60_000, onError: (e) => errors.push(e) });
    for (let i = 0; i < 64; i++) kv.save(`old${i}`, BigInt(i)); // 64 records, none reported yet
    const release = backend.holdWrites();
    kv.save("a", 1);
    const first = kv.flush(); // answers for the 64 and a
    kv.save("late", { n: 1n }); // refused after the call: merged into the 64th record
    release();
    expect(await outcome(first)).toBe("rejected encode-failed");
    expect(await outcome(kv.flush())).toBe("rejected encode-failed");
    expect(await outcome(kv.flush())).toBe("resolved");
    expect(await kv.load("a")).toBe(1);
    expect(errors).toHaveLength(65);
  });
});
