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
}

/** A database or a transaction, of any schema. */
export type Executor = Pick<Kysely<unknown>, "executeQuery">;

type Slot = { readonly name: string } | { readonly constant: unknown };

export function prepare<R>(query: Compilable<R> | CompiledQuery<R>): Prepared<R> {
  // A raw sql`` template is compiled by the caller (it needs the database to know the dialect).
  const compiled = "compile" in query ? query.compile() : query;
  if (compiled.sql.includes(MARK)) throw new Error(`prepare: a parameter was written into the SQL text: ${compiled.sql}`);
  const slots: Slot[] = compiled.parameters.map((p) =>
    typeof p === "string" && p.startsWith(MARK) ? { name: p.slice(MARK.length) } : { constant: p },
  );
  return {
    sql: compiled.sql,
    run(db, values) {
      const parameters = slots.map((s) => {
        if ("constant" in s) return s.constant;
        const v = values[s.name];
        if (v === undefined) throw new Error(`prepare: no value for parameter "${s.name}" of ${compiled.sql}`);
        return v;
      });
      const q: CompiledQuery<R> = { ...compiled, parameters };
      return db.executeQuery<R>(q);
    },
  };
}

/**
 * An insert of whole rows into `table`, prepared once per shape (its columns and number of rows):
 * `insert(tx, rows)`. Every row must have the same columns (use null, not undefined).
 */
export function preparedInsert<DB, T extends keyof DB & string>(
  db: Kysely<DB>,
  table: T,
): (tx: Executor, rows: readonly DB[T][]) => Promise<QueryResult<unknown>> {
  const shapes = new Map<string, Prepared<unknown>>();
  return (tx, rows) => {
    const first = rows[0];
    if (first === undefined) throw new Error(`preparedInsert(${table}): no rows`);
    const columns = Object.keys(first as object);
    const shape = `${rows.length}:${columns.join(",")}`;
    let p = shapes.get(shape);
    if (p === undefined) {
      const markers = rows.map((_, i) => Object.fromEntries(columns.map((c) => [c, param(`${i}.${c}`)])));
      // The rows are the table's own row type; Kysely cannot see that through the generic table name.
      p = prepare((db as Kysely<Record<string, Record<string, unknown>>>).insertInto(table).values(markers));
      if (shapes.size >= 64) shapes.clear();
      shapes.set(shape, p);
    }
    const values: Record<string, unknown> = {};
    rows.forEach((row, i) => {
      for (const c of columns) values[`${i}.${c}`] = (row as Record<string, unknown>)[c];
    });
    return p.run(tx, values);
  };
}
