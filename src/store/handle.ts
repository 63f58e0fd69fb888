import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

/** Which database a handle speaks to; only modules in src/store/ ever look. */
export type Dialect = "sqlite" | "postgres";

declare const opaque: unique symbol;

/**
 * The database, or one transaction in it, as the store's intent functions take it. Opaque outside
 * src/store/: a caller only passes it on (to `transaction` and to the functions of src/store/*.ts),
 * so no query and no dialect switch is written anywhere else.
 *
 * Example: `await transaction(store.handle, async (tx) => { await recordPlaced(tx, …); await enqueue(tx, …); })`.
 */
export interface Tx {
  readonly [opaque]: true;
}

interface Open {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  readonly inTransaction: boolean;
}

/** The handle of an open database (src/store/db.ts). */
export function handleOf(db: Kysely<Database>, dialect: Dialect): Tx {
  return { db, dialect, inTransaction: false } satisfies Open as unknown as Tx;
}

/** The Kysely instance (or transaction) behind a handle: for src/store/ only. */
export function kx(tx: Tx): Kysely<Database> {
  return (tx as unknown as Open).db;
}

export function dialectOf(tx: Tx): Dialect {
  return (tx as unknown as Open).dialect;
}

/**
 * Runs `fn` in one transaction. Given a handle that is a transaction already, `fn` joins it: the
 * intent functions compose without knowing whether their caller opened one.
 */
export async function transaction<T>(tx: Tx, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const open = tx as unknown as Open;
  if (open.inTransaction) return fn(tx);
  return open.db.transaction().execute((trx) => fn({ db: trx, dialect: open.dialect, inTransaction: true } satisfies Open as unknown as Tx));
}

/** Carries a rolled-back transaction's value out of Kysely's transaction (which rolls back on a throw only). */
class RolledBack<T> {
  constructor(readonly value: T) {}
}

/**
 * Runs `fn` in one transaction, committed unless `fn` answers `rollBack: true`: then everything it
 * wrote is undone and its value still returned. Not on a handle that is a transaction already (a
 * transaction cannot undo part of its caller's).
 */
export async function transactionOrRollback<T>(tx: Tx, fn: (tx: Tx) => Promise<{ value: T; rollBack: boolean }>): Promise<{ value: T; rolledBack: boolean }> {
  const open = tx as unknown as Open;
  if (open.inTransaction) throw new Error("transactionOrRollback: already in a transaction");
  try {
    return await transaction(tx, async (t) => {
      const r = await fn(t);
      if (r.rollBack) throw new RolledBack(r.value);
      return { value: r.value, rolledBack: false };
    });
  } catch (e) {
    if (e instanceof RolledBack) return { value: e.value as T, rolledBack: true };
    throw e;
  }
}
