/** Reading a PostgreSQL store's lease row straight from the test server (tests of who holds a store, and until when). */
import type { TestDatabase } from "./postgres-db.js";

const leaseTable = (db: TestDatabase): string => `"${db.schema}".graphrefly_storage_lease`;

/** The store's lease row, and whether it has lapsed by the database clock. */
export async function leaseRow(db: TestDatabase, store: string): Promise<{ holder: string; epoch: number; lapsed: boolean }> {
  const raw = await db.raw();
  try {
    const r = await raw.query<{ holder: string; epoch: number; lapsed: boolean }>(
      `SELECT holder, epoch::float8 AS epoch, expires_at <= clock_timestamp() AS lapsed FROM ${leaseTable(db)} WHERE store = $1`,
      [store],
    );
    return r.rows[0]!;
  } finally {
    await raw.end();
  }
}
