/** Reading a key's stored value straight from the test PostgreSQL server, past the backend under test. */
import type { TestDatabase } from "./postgres-db.js";

async function storedColumn<R>(db: TestDatabase, select: string, store: string, key: string): Promise<R | undefined> {
  const raw = await db.raw();
  try {
    const r = await raw.query<{ v: R }>(`SELECT ${select} AS v FROM "${db.schema}".graphrefly_storage WHERE store = $1 AND k = $2`, [store, key]);
    return r.rows[0]?.v;
  } finally {
    await raw.end();
  }
}

/** The bytes stored under `key` of `store`, as numbers (undefined when there is no row). */
export async function storedBytes(db: TestDatabase, store: string, key: string): Promise<number[] | undefined> {
  const v = await storedColumn<Buffer>(db, "v", store, key);
  return v === undefined ? undefined : Array.from(v);
}

/** The value stored under `key` of `store`, read as UTF-8 JSON (undefined when there is no row). */
export async function storedJson(db: TestDatabase, store: string, key: string): Promise<unknown> {
  const v = await storedColumn<string>(db, "convert_from(v, 'UTF8')", store, key);
  return v === undefined ? undefined : JSON.parse(v);
}
