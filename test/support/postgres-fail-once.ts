/**
 * A one-time failure injected into a real PostgreSQL store: a trigger raising on the first write (INSERT or UPDATE)
 * or DELETE of one key of one store, and only the first (a sequence's nextval survives the statement's rollback).
 */
import type pg from "pg";

/** Installs the trigger through `client`; the returned function drops it (the schema's drop takes the rest). */
export async function failFirst(
  client: pg.Client,
  schema: string,
  target: { store: string; key: string; on: "write" | "delete" },
): Promise<() => Promise<void>> {
  const { store, key, on } = target;
  const tag = `ff_${on}_${store.replace(/[^a-z0-9]/gi, "_")}`;
  const row = on === "write" ? "NEW" : "OLD";
  await client.query(`
    CREATE SEQUENCE "${schema}".seq_${tag};
    CREATE FUNCTION "${schema}".fail_${tag}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('"${schema}".seq_${tag}') = 1 THEN RAISE EXCEPTION 'injected: first ${on} of ${key} fails'; END IF;
      RETURN ${row};
    END $$;
    CREATE TRIGGER trg_${tag} BEFORE ${on === "write" ? "INSERT OR UPDATE" : "DELETE"} ON "${schema}".graphrefly_storage
      FOR EACH ROW WHEN (${row}.store = '${store}' AND ${row}.k = '${key}') EXECUTE FUNCTION "${schema}".fail_${tag}();`);
  return async () => {
    await client.query(`DROP TRIGGER IF EXISTS trg_${tag} ON "${schema}".graphrefly_storage`);
  };
}
