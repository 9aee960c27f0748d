/**
 * A flush answers for the writes offered before it was called, no more: a write refused after the call (its value
 * can never be encoded) fails the next flush, not the one in flight. It used to fail the flush in flight too, when
 * the refusal arrived before that flush ended (review), and a caller retrying the batch that flush covered would
 * append it twice. A write offered before the call and refused in the same batch still fails it, and so does a
 * value superseded by a refused one (the state as of the call was not stored).
 *
 * PostgreSQL, inline: its writes are asynchronous, so flushes are in flight while the test writes.
 */
import { describe, expect, it } from "vitest";
import { kvStorage } from "../../src/tier/kv.js";
import { appendLogStorage } from "../../src/tier/append-log.js";
import { snapshotStorage } from "../../src/tier/snapshot.js";
import { CodecError } from "../../src/errors.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { refusingBad, outcome } from "../support/refusals.js";

const database = useTestDatabase();
const open = useBackends(database, "refusal-after-flush");


function errorsLog(): { errors: Error[]; onError: (err: Error) => void } {
  const errors: Error[] = [];
  return { errors, onError: (err) => errors.push(err) };
}


describe("a refusal after a flush was called fails the next flush, not that one (PostgreSQL, inline)", () => {
  it("kv: a value refused when saved (built-in codec)", async () => {
    const { errors, onError } = errorsLog();
    const kv = kvStorage<unknown>(await open(), { name: "kv", debounceMs: 60_000, onError });
    kv.save("a", 1);
    const first = kv.flush(); // in flight
    kv.save("big", 1n); // JSON has no bigint: refused when saved, after the flush was called
    expect(await outcome(first)).toBe("resolved");
    expect(await outcome(kv.flush())).toBe("rejected encode-failed");
    expect(await outcome(kv.flush())).toBe("resolved");
    expect(await kv.load("a")).toBe(1);
    expect(errors.map((e) => (e as CodecError).code)).toEqual(["encode-failed"]);
  });

  it("kv: a value refused in the batch of the flush called before it", async () => {
    const { errors, onError } = errorsLog();
    const kv = kvStorage<string>(await open(), { name: "kv", codec: refusingBad(), debounceMs: 60_000, onError });
    kv.save("x", "x");
    const first = kv.flush(); // in flight
    kv.save("a", "a");
    const second = kv.flush(); // waits for the first, then takes a and the value saved next
    kv.save("b", "bad");
    expect(await outcome(first)).toBe("resolved");
    expect(await outcome(second)).toBe("resolved");
    expect(await outcome(kv.flush())).toBe("rejected encode-failed");
    expect(await kv.load("a")).toBe("a");
    expect(await kv.load("b")).toBeUndefined();
    expect(errors).toHaveLength(1);
  });

  it("kv: a value saved before the call and refused still fails it; one saved after it fails the next", async () => {
    const kv = kvStorage<string>(await open(), { name: "kv", codec: refusingBad(), debounceMs: 60_000 });
    kv.save("x", "x");
    const first = kv.flush();
    kv.save("b", "bad");
    const second = kv.flush();
    kv.save("k", "good");
    const third = kv.flush(); // takes "good" at its call, behind the flushes in flight (docs/design.md §3.30)
    kv.save("k", "bad"); // after the third flush's call: not its value, as over SQLite
    expect(await outcome(first)).toBe("resolved");
    expect(await outcome(second)).toBe("rejected encode-failed");
    // "b" was saved before the third flush's call and reported after it: the third answers for it too, its own
    // value stored all the same.
    expect(await outcome(third)).toBe("rejected encode-failed");
    expect(await kv.load("k")).toBe("good");
    expect(await outcome(kv.flush())).toBe("rejected encode-failed");
    expect(await outcome(kv.flush())).toBe("resolved");
    expect(await kv.load("k")).toBe("good");
  });

  it("kv: a flood of refusals (kept merged, in bounded memory) fails the next flush once, not the one in flight", async () => {
    const { errors, onError } = errorsLog();
    const kv = kvStorage<unknown>(await open(), { name: "kv", debounceMs: 60_000, onError });
    kv.save("a", 1);
    const first = kv.flush();
    for (let i = 0; i < 500; i++) kv.save(`big${i}`, BigInt(i));
    kv.save("b", 2);
    const second = kv.flush();
    expect(await outcome(first)).toBe("resolved");
    expect(await outcome(second)).toBe("rejected encode-failed");
    expect(await outcome(kv.flush())).toBe("resolved");
    expect(await kv.load("b")).toBe(2);
    expect(errors).toHaveLength(500);
  });

  it("append log: entries refused in the batch of the flush called before them", async () => {
    const { errors, onError } = errorsLog();
    const log = appendLogStorage<string>(await open(), { name: "log", codec: refusingBad(), debounceMs: 60_000, onError });
    log.appendEntries(["1"]);
    const first = log.flush();
    log.appendEntries(["2"]);
    const second = log.flush();
    log.appendEntries(["bad"]);
    log.appendEntries(["3"]);
    expect(await outcome(first)).toBe("resolved");
    expect(await outcome(second)).toBe("resolved");
    expect(await outcome(log.flush())).toBe("rejected encode-failed");
    expect((await log.loadEntries()).entries).toEqual(["1", "2", "3"]);
    expect(errors).toHaveLength(1);
  });

  it("append log: entries appended before the call and refused fail it", async () => {
    const log = appendLogStorage<string>(await open(), { name: "log", codec: refusingBad(), debounceMs: 60_000 });
    log.appendEntries(["1"]);
    const first = log.flush();
    log.appendEntries(["bad"]);
    const second = log.flush();
    log.appendEntries(["2"]);
    expect(await outcome(first)).toBe("resolved");
    expect(await outcome(second)).toBe("rejected encode-failed");
    expect(await outcome(log.flush())).toBe("resolved");
  });

  it("snapshot: a record saved after the call and refused fails the next flush, also after a later record's", async () => {
    const snap = snapshotStorage<string>(await open(), { name: "snap", codec: refusingBad(), debounceMs: 60_000 });
    snap.save("a");
    const first = snap.flush();
    const second = snap.flush(); // nothing pending at its call: it answers for "a" only
    snap.save("bad");
    expect(await outcome(first)).toBe("resolved");
    expect(await outcome(second)).toBe("resolved");
    expect(await outcome(snap.flush())).toBe("rejected encode-failed");
    snap.save("b");
    const third = snap.flush();
    snap.save("c");
    const fourth = snap.flush(); // takes "c" at its call, behind the third (docs/design.md §3.30)
    snap.save("bad"); // after the fourth flush's call: not its record, as over SQLite
    expect(await outcome(third)).toBe("resolved");
    expect(await outcome(fourth)).toBe("resolved");
    expect(await snap.load()).toBe("c");
    expect(await outcome(snap.flush())).toBe("rejected encode-failed");
    expect(await snap.load()).toBe("c");
  });
});
