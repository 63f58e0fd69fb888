import type { Compilable, CompiledQuery, Kysely, QueryResult } from "kysely";

/**
 * Queries built and compiled once, run many times with new values.
 *
 * Building a Kysely query and compiling it to SQL costs more than SQLite takes to run it, and the
 * hot paths (an order callback runs about ten statements) always build the same shapes. A query
 * given to `prepare` is built with `param("name")` where each value goes; its SQL and the order of
 * its parameters are fixed then, and `run` only fills the values in. The same compiled query
 * serves the database and its transactions (one dialect).
 */

const MARK = "\u0000orderbridge-param:";

/** Stands for the value called `name` in a query given to `prepare` (typed as its place wants). */
export function param<T>(name: string): T {
  return `${MARK}${name}` as T;
}

export interface Prepared<R> {
  readonly sql: string;
  /** Runs the query on `db` (or a transaction) with `values` for its parameters, by name. */
  run(db: Executor, values: Readonly<Record<string, unknown>>): Promise<QueryResult<R>>;
  /** The parameter names in the order of the SQL's placeholders (undefined: a constant). */
  readonly names: readonly (string | undefined)[];
  /** Runs the query with every parameter given in placeholder order (constants included). */
  runInOrder(db: Executor, parameters: readonly unknown[]): Promise<QueryResult<R>>;
}

/** A database or a transaction, of any schema. */
export type Executor = Pick<Kysely<unknown>, "executeQuery">;

export function prepare<R>(query: Compilable<R> | CompiledQuery<R>): Prepared<R> {
  // A raw sql`` template is compiled by the caller (it needs the database to know the dialect).
  const compiled = "compile" in query ? query.compile() : query;
  if (compiled.sql.includes(MARK)) throw new Error(`prepare: a parameter was written into the SQL text: ${compiled.sql}`);
  const names = compiled.parameters.map((p) => (typeof p === "string" && p.startsWith(MARK) ? p.slice(MARK.length) : undefined));
  const runInOrder = (db: Executor, parameters: readonly unknown[]): Promise<QueryResult<R>> => db.executeQuery<R>({ ...compiled, parameters });
  return {
    sql: compiled.sql,
    names,
    runInOrder,
    run(db, values) {
      const parameters = names.map((name, i) => {
        if (name === undefined) return compiled.parameters[i];
        const v = values[name];
        if (v === undefined) throw new Error(`prepare: no value for parameter "${name}" of ${compiled.sql}`);
        return v;
      });
      return runInOrder(db, parameters);
    },
  };
}

/**
 * An insert of whole rows into `table`, prepared once per shape (its columns and number of rows):
 * `insert(tx, rows)`. Every row must have the same columns (use null, not undefined). With
 * `ifNoConflictOn`, a row whose value in that (unique) column exists already is skipped, not an
 * error: `numAffectedRows` tells how many were inserted.
 */
export function preparedInsert<DB, T extends keyof DB & string>(
  db: Kysely<DB>,
  table: T,
  options: { ifNoConflictOn?: string } = {},
): (tx: Executor, rows: readonly DB[T][]) => Promise<QueryResult<unknown>> {
  // Per shape: the query, and for each placeholder the row and the column its value comes from.
  const shapes = new Map<string, { p: Prepared<unknown>; from: { row: number; column: string }[] }>();
  return (tx, rows) => {
    const first = rows[0];
    if (first === undefined) throw new Error(`preparedInsert(${table}): no rows`);
    const columns = Object.keys(first as object);
    const shape = `${rows.length}:${columns.join(",")}`;
    let entry = shapes.get(shape);
    if (entry === undefined) {
      // Each placeholder is named by its index in `from`, which says where its value comes from.
      const from: { row: number; column: string }[] = [];
      const markers = rows.map((_, row) => Object.fromEntries(columns.map((column) => [column, param(String(from.push({ row, column }) - 1))])));
      // The rows are the table's own row type; Kysely cannot see that through the generic table name.
      const insert = (db as Kysely<Record<string, Record<string, unknown>>>).insertInto(table).values(markers);
      const conflictColumn = options.ifNoConflictOn;
      const p = prepare(conflictColumn === undefined ? insert : insert.onConflict((oc) => oc.column(conflictColumn).doNothing()));
      const inOrder = p.names.map((name) => from[Number(name)]);
      if (inOrder.some((f) => f === undefined)) throw new Error(`preparedInsert(${table}): unexpected parameter in ${p.sql}`);
      entry = { p, from: inOrder as { row: number; column: string }[] };
      if (shapes.size >= 64) shapes.clear();
      shapes.set(shape, entry);
    }
    return entry.p.runInOrder(
      tx,
      entry.from.map((f) => (rows[f.row] as Record<string, unknown>)[f.column]),
    );
  };
}
