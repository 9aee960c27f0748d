/**
 * The PostgreSQL backend at the limits of PostgreSQL, node-postgres and Node: values too big for the driver to hand
 * over as one field, and options that would overflow a timer or the server's settings.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { postgresBackend } from "../../src/backend/postgres.js";
import { useBackends, useTestDatabase } from "../support/postgres-db.js";
import { errorOf } from "../support/wait.js";

const database = useTestDatabase();
const open = useBackends(database, "limits");

/** A period that does not divide any power of two, so every slice boundary falls at another phase of it. */
const PERIOD = Array.from({ length: 251 }, (_, i) => (i * 7 + 3) & 0xff);

/** True when `v` is `length` bytes of PERIOD repeated (a loop, not expect: 268 M comparisons). */
function isPattern(v: Uint8Array | undefined, length: number): boolean {
  if (v === undefined || v.byteLength !== length) return false;
  for (let i = 0, p = 0; i < length; i++, p = p === 250 ? 0 : p + 1) if (v[i] !== PERIOD[p]) return false;
  return true;
}

describe("postgresBackend values above what one driver field can carry", () => {
  // node-postgres hands a field over as one JS string, bytea as hex: above 2^28 - 12 bytes the string exceeds V8's
  // limit and the driver's socket handler threw, uncaught, ending the reading process.
  const BIG = 251 * 1_069_700; // 268,494,700 bytes, just above 268,435,443: each byte more costs wall time
  // The case's time: at 276 MB its insert, three whole reads (each ~550 MB of hex through the driver) and a 100 MB
  // prefix took 60 s at a load average of ~14 on 2 cores, so its 120 s were too few at ~21, where it failed once.
  // A generous bound for a hung case, never what it tests.
  const BIG_TIMEOUT_MS = 360_000;

  it("reads a value of 268 MB stored by another program whole, through read, readMany and readPrefix", { timeout: BIG_TIMEOUT_MS }, async () => {
    const db = await database();
    const writer = await open();
    await writer.write("small", Uint8Array.of(1, 2, 3));
    const raw = await db.raw();
    // Made on the server: sending 268 MB from here would only slow the test.
    const hex = Buffer.from(PERIOD).toString("hex");
    await raw.query(
      `INSERT INTO "${db.schema}".graphrefly_storage (store, k, v) VALUES ($1, 'big', decode(repeat($2, $3), 'hex'))`,
      [writer.store, hex, BIG / PERIOD.length],
    );
    const reader = await open({ store: writer.store, readOnly: true });
    expect(isPattern(await reader.read("big"), BIG)).toBe(true);
    const many = await reader.readMany(["small", "big", "missing"]);
    expect(many[0]).toEqual(Uint8Array.of(1, 2, 3));
    expect(isPattern(many[1], BIG)).toBe(true);
    expect(many[2]).toBeUndefined();
    many.length = 0;
    // A prefix cut inside a slice of the big value (a few slices: cuts at every boundary are the next case's), then
    // the whole value through readPrefix.
    const MiB = 1024 * 1024;
    expect(isPattern(await writer.readPrefix("big", 3 * MiB + 1), 3 * MiB + 1)).toBe(true);
    expect(isPattern(await writer.readPrefix("big", 2 ** 31), BIG)).toBe(true);
    // The handles carry on.
    expect(await writer.read("small")).toEqual(Uint8Array.of(1, 2, 3));
    expect(await reader.list()).toEqual(["big", "small"]);
  });

  it("reads values around the slice size exactly (read, readMany with repeats, readPrefix at every boundary)", async () => {
    const b = await open();
    const MiB = 1024 * 1024;
    for (const n of [0, 1, MiB - 1, MiB, MiB + 1, 3 * MiB + 5]) {
      const v = randomBytes(n);
      await b.write(`k${n}`, v);
      expect(Buffer.from((await b.read(`k${n}`)) ?? [1]).equals(v)).toBe(true);
      const [a, missing, again] = await b.readMany([`k${n}`, "missing", `k${n}`]);
      expect(Buffer.from(a ?? [1]).equals(v) && Buffer.from(again ?? [1]).equals(v)).toBe(true);
      expect(a === again).toBe(false); // each its own copy (not.toBe would deep-compare a MiB element by element)
      expect(missing).toBeUndefined();
      for (const p of [0, 1, MiB - 1, MiB, MiB + 1, 2 * MiB + 1, n, n + 1, 2 ** 31]) {
        expect(Buffer.from((await b.readPrefix(`k${n}`, p)) ?? [1]).equals(v.subarray(0, p))).toBe(true);
      }
    }
    expect(await b.read("missing")).toBeUndefined();
    expect(await b.readPrefix("missing", 4 * MiB)).toBeUndefined();
  });
});

describe("postgresBackend options at the limits of timers and the server", () => {
  // Node runs a timer longer than 2^31 - 1 ms after 1 ms (and warns), and PostgreSQL's timeout settings are int4:
  // such options opened a backend whose connecting timed out at once, or failed at the server with a backend-error.
  it("refuses times above 2^31 - 1 ms and statements above what one message carries, as RangeError naming the option", async () => {
    const db = await database();
    const base = { url: db.url, schema: db.schema, store: "limits-options" };
    for (const [opts, name] of [
      [{ connectTimeoutMs: 2 ** 31 }, "connectTimeoutMs"],
      [{ statementTimeoutMs: 2 ** 31 }, "statementTimeoutMs"],
      [{ lease: { ttlMs: 2 ** 31 } }, "lease.ttlMs"],
      [{ lease: { ttlMs: 2 ** 40, renewEveryMs: 1000 } }, "lease.ttlMs"],
      [{ maxStatementBytes: 2 ** 30 }, "maxStatementBytes"],
    ] as const) {
      const err = await postgresBackend({ ...base, ...opts }).then(
        async (b) => {
          await b.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(RangeError);
      expect((err as Error).message).toContain(name);
    }
    // A renewal interval near the lease time let an idle writer's lease lapse between two renewals.
    for (const renewEveryMs of [999, 501]) {
      const err = await errorOf(() => postgresBackend({ ...base, lease: { ttlMs: 1000, renewEveryMs } }));
      expect(err, String(renewEveryMs)).toBeInstanceOf(RangeError);
      expect((err as Error).message).toContain("lease.renewEveryMs");
    }
    // The largest of each still opens.
    const b = await open({ connectTimeoutMs: 2 ** 31 - 1, statementTimeoutMs: 2 ** 31 - 1, lease: { ttlMs: 2 ** 31 - 1 } });
    await b.write("k", Uint8Array.of(1));
    expect(await b.read("k")).toEqual(Uint8Array.of(1));
  });
});
