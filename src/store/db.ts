import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { Kysely, PostgresDialect, sql, type PostgresPool, type PostgresPoolClient } from "kysely";
import { maskUrl, type Config } from "../config.js";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError, ServiceUnavailableError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Database } from "./schema.js";
import { handleOf, type Tx } from "./handle.js";
import { migrateToLatest } from "./migrations.js";
import { GroupCommitSqliteDialect, isSqliteBusy, retryWhileBusy, type WalSyncMode } from "./sqlite-group-commit.js";
import { DatabaseFiles, databaseIdProblem, readDatabaseId, readDatabaseMarker, writeDatabaseMarker, DATABASE_ID_FILE } from "./sqlite-file.js";

/** The open database: one Kysely instance over SQLite or PostgreSQL, migrated. */
export interface Store {
  readonly kind: "sqlite" | "postgres";
  /** The migrations this open applied (empty when the database was up to date). */
  readonly migrated: readonly string[];
  /** The database itself: for src/store/ and tests that look at tables. */
  readonly db: Kysely<Database>;
  /** What the rest of the service passes to the store's intent functions (src/store/*.ts). */
  readonly handle: Tx;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const INT8_OID = 20;
/** How long SQLite waits for a lock another process holds before the operation fails (→ 503). */
const SQLITE_BUSY_TIMEOUT_MS = 5_000;
/** At start, how long to wait for another process's write lock (its migration may copy a large table). */
const SQLITE_MIGRATION_WAIT_MS = 10 * 60_000;

/**
 * SQLite: migrates once no other process holds the write lock. Another instance (or WORKERS'
 * sibling) starting at the same time may be running a migration that rebuilds a table, which holds
 * the lock for longer than a request would wait (SQLITE_BUSY_TIMEOUT_MS; 0017 took 5.5 s for
 * 900 000 orders): this start waits for it, up to SQLITE_MIGRATION_WAIT_MS, saying so once.
 */
async function migrateWhenUnlocked(db: Kysely<Database>, log: Logger): Promise<string[]> {
  const giveUpAt = Date.now() + SQLITE_MIGRATION_WAIT_MS;
  let said = false;
  for (;;) {
    try {
      return await migrateToLatest(db as unknown as Kysely<unknown>, "sqlite");
    } catch (e) {
      if (!isSqliteBusy(e) || Date.now() >= giveUpAt) throw e;
      if (!said) log.info("another process holds the database's write lock (a migration?): waiting for it before starting", { waitUpToMs: SQLITE_MIGRATION_WAIT_MS });
      said = true;
    }
  }
}

export async function openStore(config: Config["database"], log: Logger): Promise<Store> {
  try {
    return await openStoreAs(config, log);
  } catch (e) {
    throw describeOpenError(e, config);
  }
}

/**
 * A database that cannot be opened at start, said in terms of the setting to look at: the SQLite
 * file in DATA_DIR (a permissions problem is a configuration error, exit 78), or the PostgreSQL
 * server in DATABASE_URL (shown masked).
 */
function describeOpenError(e: unknown, config: Config["database"]): unknown {
  const err = e as Error & { code?: string };
  const code = String(err.code ?? "");
  if (config.kind === "sqlite") {
    if (/^SQLITE_(CANTOPEN|READONLY|PERM|IOERR)/.test(code) || ["EACCES", "EPERM", "EROFS", "ENOTDIR"].includes(code)) {
      const uid = typeof process.getuid === "function" ? ` (uid ${process.getuid()})` : "";
      return new ConfigError(
        `cannot open the SQLite database ${config.file}: ${err.message}. DATA_DIR (${path.dirname(config.file)}) and the files in it ` +
          `must be writable by the user orderbridge runs as${uid}.`,
        { cause: e },
      );
    }
    return e;
  }
  // The same errors that answer 503 while running (isStoreUnavailable), plus an unreachable host.
  if (isStoreUnavailable(e) || code === "EHOSTUNREACH") {
    return new Error(`cannot connect to PostgreSQL at ${maskUrl(config.url)} (DATABASE_URL): ${err.message || code}`, { cause: e });
  }
  return e;
}

async function openStoreAs(config: Config["database"], log: Logger): Promise<Store> {
  let db: Kysely<Database>;
  let files: DatabaseFiles | undefined;
  let marker: string | undefined;
  if (config.kind === "sqlite") {
    const dataDir = path.dirname(config.file);
    fs.mkdirSync(dataDir, { recursive: true });
    // Refused before anything is created: a new, empty file where DATA_DIR says a database was.
    marker = readDatabaseMarker(dataDir);
    const fileExists = fs.existsSync(config.file);
    const refuse = (databaseId: string | undefined): void => {
      const problem = databaseIdProblem({ marker, fileExists, databaseId, allowNew: config.allowNewDatabase, file: config.file, dataDir });
      if (problem !== undefined) throw new ConfigError(problem);
    };
    if (!fileExists) refuse(undefined);
    // Orders hold customers' names, emails and addresses: a new database file is readable by its
    // owner only (SQLite gives its -wal and -shm files the database file's permissions).
    if (!fileExists) fs.closeSync(fs.openSync(config.file, "a", 0o600));
    const sqlite = new BetterSqlite3(config.file);
    // Locks other processes hold are waited for by retryWhileBusy, with the event loop free. Switching
    // a new file to WAL needs the write lock; when several instances start together, SQLite answers
    // BUSY at once to all but one (it will not wait while holding a read lock), so it is retried too.
    sqlite.pragma("busy_timeout = 0");
    try {
      await retryWhileBusy(() => sqlite.pragma("journal_mode = WAL"), SQLITE_BUSY_TIMEOUT_MS);
      // Checked before migrating: another database is not to be changed.
      if (fileExists && marker !== undefined) refuse(await retryWhileBusy(() => readDatabaseId(sqlite), SQLITE_BUSY_TIMEOUT_MS));
    } catch (e) {
      sqlite.close();
      throw e;
    }
    files = new DatabaseFiles(config.file, (error, detail) => log.error(error.message, detail));
    // FULL: no answer before its data is on disk. SQLite's own FULL would fsync inside every COMMIT;
    // instead SQLite runs at NORMAL and the driver syncs the write-ahead log after each COMMIT, on
    // libuv's thread pool or on the event loop (SQLITE_WAL_SYNC; see sqlite-group-commit.ts).
    sqlite.pragma("synchronous = NORMAL");
    sqlite.pragma("foreign_keys = ON");
    // Each transaction of a group is a savepoint, and SQLite copies every page a savepoint changes
    // first into a sub-journal, moved to a temporary file past 64 KiB: under load that was most of
    // the process's write calls (≈ 30 an order). In memory it is a copy, freed at the group's COMMIT.
    // Temporary tables and sorts are in memory too; orderbridge's queries are indexed and paged.
    sqlite.pragma("temp_store = MEMORY");
    db = new Kysely<Database>({
      dialect: new GroupCommitSqliteDialect({
        database: sqlite,
        groupCommit: config.groupCommit,
        busyTimeoutMs: SQLITE_BUSY_TIMEOUT_MS,
        ...(config.synchronous === "FULL" ? { syncWal: `${config.file}-wal`, walSyncOn: walSyncPlace(config) } : {}),
        files,
      }),
    });
  } else {
    const pool = new pg.Pool({
      connectionString: config.url,
      max: config.poolSize,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      ...(config.schema === undefined ? {} : { options: `-c search_path=${config.schema}` }),
      types: {
        // Counts, ids, times and money are BIGINT; all stay far below 2^53.
        getTypeParser: ((oid: number, format?: "text" | "binary") =>
          oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    });
    // A client losing its connection (database restart) must not crash the process: idle clients
    // report through the pool, checked-out ones (mid-transaction) through their own listener. The
    // query in progress fails (→ 503) and pg-pool discards the broken client when it is released.
    pool.on("error", (err) => log.warn("postgres connection lost", { error: err.message }));
    pool.on("connect", (client) => client.on("error", (err) => log.warn("postgres connection lost", { error: err.message })));
    if (config.schema !== undefined) {
      const client = await pool.connect();
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${config.schema}`);
      } catch (e) {
        // Instances starting together: IF NOT EXISTS is no lock in PostgreSQL, and the one that
        // loses the race fails on the catalog's unique index (or as a duplicate schema) although
        // the schema is there now. The migrations after it are serialised (migrateToLatest).
        const code = (e as { code?: unknown }).code;
        if (code !== "23505" && code !== "42P06") throw e;
      } finally {
        client.release();
      }
    }
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: clientPool(pool, { prepare: config.preparedStatements, pipeline: config.pipeline }) }) });
  }
  let applied: string[];
  try {
    applied = config.kind === "sqlite" ? await migrateWhenUnlocked(db, log) : await migrateToLatest(db as unknown as Kysely<unknown>, config.kind);
    if (applied.length > 0) log.info("database migrated", { applied });
    if (config.kind === "sqlite") await keepDatabaseId(db, marker, config, log);
  } catch (e) {
    await db.destroy();
    throw e;
  }
  return {
    kind: config.kind,
    migrated: applied,
    db,
    handle: handleOf(db, config.kind),
    async ping() {
      // A deleted or replaced SQLite file still answers queries: readiness asks the file system.
      files?.check();
      await sql`select 1`.execute(db);
    },
    async close() {
      await db.destroy();
    },
  };
}

/**
 * Gives a SQLite database its id (once: several processes may start together) and DATA_DIR the
 * marker naming it, when it does not name it yet (a new database, an installation from before
 * markers, or SQLITE_ALLOW_NEW_DATABASE).
 */
async function keepDatabaseId(db: Kysely<Database>, marker: string | undefined, config: Extract<Config["database"], { kind: "sqlite" }>, log: Logger): Promise<void> {
  await db
    .insertInto("orderbridge_meta")
    .values({ key: "database_id", value: randomUUID() })
    .onConflict((oc) => oc.column("key").doNothing())
    .execute();
  const { value: id } = await db.selectFrom("orderbridge_meta").select("value").where("key", "=", "database_id").executeTakeFirstOrThrow();
  const dataDir = path.dirname(config.file);
  const markerFile = path.join(dataDir, DATABASE_ID_FILE);
  if (marker !== id) writeDatabaseMarker(dataDir, id);
  if (marker === undefined) log.info("recorded the database's id beside it", { file: markerFile, databaseId: id });
  else if (marker !== id) {
    log.warn(`SQLITE_ALLOW_NEW_DATABASE: started with the database ${id} instead of ${marker}; ${markerFile} names it now. Remove the setting`, { file: config.file });
  } else if (config.allowNewDatabase) {
    log.warn("SQLITE_ALLOW_NEW_DATABASE is set: a deleted or other database file would not be refused at start. Remove the setting");
  }
}

/**
 * The pool as Kysely takes it, with two savings, each a setting:
 *
 * - `prepare`: PostgreSQL parses and plans every unnamed statement anew; for our short statements
 *   that is much of the server's work. Statements with parameters (every query the service builds;
 *   not BEGIN/COMMIT or migrations, which may hold several commands) run as named prepared
 *   statements instead, named by a hash of their text: node-postgres parses each once per
 *   connection, PostgreSQL keeps its plan. Bounded: texts beyond the first `max` distinct ones run
 *   unnamed. A prepared statement whose tables another instance altered meanwhile (a rolling
 *   upgrade's migration) fails with "cached plan must not change result type"; that text then runs
 *   unnamed from then on, and the error counts as "unavailable right now" (503), so the sender retries.
 * - `pipeline`: a transaction's BEGIN is not sent on its own but in one write with the
 *   transaction's first statement, as one batch of the extended protocol (one Sync, AfterBegin):
 *   PostgreSQL runs the statement only if the BEGIN succeeded, inside the transaction, and a
 *   failure of either (a cancelled BEGIN, say) skips the rest of the batch. A round trip and a
 *   system call fewer per transaction (on loopback a socket write is one of the dearest things a
 *   request does). A first statement without parameters (it may hold several commands, which the
 *   extended protocol refuses) has its BEGIN sent before it, as without the setting.
 */
function clientPool(pool: pg.Pool, o: { prepare: boolean; pipeline: boolean; max?: number }): PostgresPool {
  const max = o.max ?? 1_000;
  const names = new Map<string, string>();
  const unnamed = new Set<string>();
  const nameFor = (text: string): string | undefined => {
    let name = names.get(text);
    if (name === undefined && names.size < max && !unnamed.has(text)) {
      name = `ob_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`;
      names.set(text, name);
    }
    return name;
  };
  // Connections where BEGIN is a prepared statement (BEGIN_STATEMENT) already.
  const beginPrepared = new WeakSet<pg.PoolClient>();
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect();
      const run = async (text: string, values: readonly unknown[], afterBegin: boolean): Promise<pg.QueryResult> => {
        const name = o.prepare && values.length > 0 ? nameFor(text) : undefined;
        const config = { ...(name === undefined ? {} : { name }), text, values: values as unknown[] };
        try {
          return await (afterBegin ? queryAfterBegin(client, config, o.prepare) : client.query(config));
        } catch (e) {
          if (name !== undefined && isCachedPlanError(e)) {
            names.delete(text);
            unnamed.add(text);
          }
          // A value node-postgres could not send (not PostgreSQL's error): it had sent the Parse,
          // then closed the statement, yet counts it as prepared on this connection from then on.
          if (name !== undefined && (e as { severity?: unknown }).severity === undefined) broken = true;
          throw e;
        }
      };
      // Kysely's BEGIN, held back to go with the next statement (pipeline).
      let begin = false;
      // A transaction begun and not ended by a COMMIT or ROLLBACK that PostgreSQL answered, and the
      // statements not answered yet: a connection with either goes back to the pool only closed.
      let open = false;
      let unanswered = 0;
      let broken = false;
      const query = async (text: string, values: readonly unknown[]): Promise<pg.QueryResult> => {
        if (values.length === 0 && (text === BEGIN || text.startsWith("start transaction"))) open = true;
        unanswered++;
        try {
          const result = await send(text, values);
          if (values.length === 0 && (text === COMMIT || text === ROLLBACK)) open = false;
          return result;
        } finally {
          unanswered--;
        }
      };
      const send = async (text: string, values: readonly unknown[]): Promise<pg.QueryResult> => {
        if (o.pipeline && text === BEGIN && values.length === 0 && !begin) {
          begin = true;
          return BEGUN;
        }
        if (!begin) return run(text, values, false);
        begin = false;
        if (values.length === 0 || (o.prepare && !beginPrepared.has(client))) {
          // BEGIN on its own: before a statement that may hold several commands, or once per
          // connection to prepare it.
          await (o.prepare ? client.query({ name: BEGIN_STATEMENT, text: BEGIN }) : client.query(BEGIN));
          if (o.prepare) beginPrepared.add(client);
          return run(text, values, false);
        }
        return run(text, values, true);
      };
      return {
        // Kysely passes a cursor only for streamed queries, which need a cursor class we do not give it.
        query: query as unknown as PostgresPoolClient["query"],
        // No BEGIN is held back here: Kysely ends each transaction with COMMIT or ROLLBACK, which
        // sends it. Closed rather than handed to the next request: a connection still in a
        // transaction or with a statement in flight (its COMMIT or ROLLBACK failed, e.g. the ROLLBACK
        // that node-postgres's query_timeout in DATABASE_URL drops behind a statement that timed
        // out), and one whose prepared statements node-postgres has wrong (broken).
        release: () => client.release(open || unanswered > 0 || broken ? new Error("released inside a transaction, or broken") : undefined),
      };
    },
    end: () => pool.end(),
  };
}

/** Kysely's BEGIN for a transaction without isolation level or access mode (PostgresDriver.beginTransaction). */
const BEGIN = "begin";
const COMMIT = "commit";
const ROLLBACK = "rollback";
/** BEGIN as a prepared statement (with `prepare`), parsed once per connection. */
const BEGIN_STATEMENT = "ob_begin";
/** What node-postgres answers for a BEGIN; Kysely reads nothing of it. */
const BEGUN = { command: "BEGIN", rowCount: null, oid: 0, rows: [], fields: [] } as unknown as pg.QueryResult;

/** Runs `config` as an AfterBegin batch: its answer is the statement's (BEGIN's comes first). */
async function queryAfterBegin(client: pg.PoolClient, config: pg.QueryConfig, beginPrepared: boolean): Promise<pg.QueryResult> {
  const results = await new Promise<pg.QueryResult | pg.QueryResult[]>((resolve, reject) => {
    const callback = (e: Error | null, r: pg.QueryResult): void => (e ? reject(e) : resolve(r));
    client.query(new AfterBegin({ ...config, callback }, beginPrepared) as unknown as pg.Submittable);
  });
  return Array.isArray(results) ? (results[results.length - 1] as pg.QueryResult) : results;
}

/** The part of node-postgres's connection AfterBegin writes to. */
interface WireConnection {
  stream: { cork?: () => void; uncork?: () => void };
  parse(m: { text: string; name: string; types: unknown[] }): void;
  bind(m: { portal: string; statement: string; values: unknown[] }): void;
  execute(m: { portal: string; rows: number }): void;
}

/**
 * A statement with BEGIN before it in one batch of the extended protocol, ended by the statement's
 * Sync: PostgreSQL skips everything after a failed message up to the Sync, so the statement never
 * runs outside the transaction. node-postgres's Query writes and reads the statement as usual (its
 * answer is the second result); BEGIN is the prepared BEGIN_STATEMENT or, without prepared
 * statements, parsed unnamed each time.
 */
class AfterBegin extends (pg.Query as unknown as new (config: pg.QueryConfig & { callback: (e: Error | null, r: pg.QueryResult) => void }) => {
  submit(connection: WireConnection): Error | null;
}) {
  constructor(
    config: pg.QueryConfig & { callback: (e: Error | null, r: pg.QueryResult) => void },
    private readonly beginPrepared: boolean,
  ) {
    super({ ...config, queryMode: "extended" } as typeof config);
  }

  override submit(connection: WireConnection): Error | null {
    connection.stream.cork?.();
    try {
      if (!this.beginPrepared) connection.parse({ text: BEGIN, name: "", types: [] });
      connection.bind({ portal: "", statement: this.beginPrepared ? BEGIN_STATEMENT : "", values: [] });
      connection.execute({ portal: "", rows: 0 });
      return super.submit(connection);
    } finally {
      connection.stream.uncork?.();
    }
  }
}

/** PostgreSQL refused a prepared statement whose tables changed since it was prepared. */
function isCachedPlanError(e: unknown): boolean {
  return e instanceof Error && (e as { code?: unknown }).code === "0A000" && /cached plan/i.test(e.message);
}

/** True for errors that mean "the database is unreachable or overloaded right now" (→ 503). */
export function isStoreUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (isTransactionConflict(e)) return true; // retried first (retryOnConflict); still failing, it is "busy right now"
  if (typeof code === "string") {
    if (["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN"].includes(code)) return true;
    if (/^(08|53|57P)/.test(code)) return true; // connection exception, insufficient resources, operator intervention
    if (isCachedPlanError(e)) return true; // a table changed under a prepared statement (see clientPool)
    if (/^SQLITE_(BUSY|LOCKED|IOERR)/.test(code) || code === "SQLITE_FULL") return true;
    if (code === "SQLITE_READONLY_DBMOVED") return true; // the file was deleted or replaced (DatabaseFiles)
  }
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|driver has already been destroyed/i.test(e.message);
}

/**
 * PostgreSQL rolled the transaction back because of other transactions, not because of anything in
 * it: a deadlock (40P01) or a serialization failure (40001). Run again, it normally succeeds.
 */
export function isTransactionConflict(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "40P01" || code === "40001";
}

/** Retries after a conflict: at most this many, the n-th after 5·2^n to 10·2^n ms (jittered, so the two sides do not meet again). */
const CONFLICT_RETRIES = 4;

/**
 * Runs `transaction` (the whole of it, from BEGIN) again after a deadlock or serialization failure,
 * a few times with a short jittered pause. Still failing, it answers 503 with Retry-After (the
 * sender retries later), never 500. Everything `transaction` does must be safe to repeat from the
 * start: a failed attempt was rolled back entirely.
 */
export async function retryOnConflict<T>(transaction: () => Promise<T>, o: { log: Logger; signal?: AbortSignal }): Promise<T> {
  for (let retry = 0; ; retry++) {
    try {
      return await transaction();
    } catch (e) {
      if (!isTransactionConflict(e)) throw e;
      const code = String((e as { code?: unknown }).code);
      if (retry >= CONFLICT_RETRIES || o.signal?.aborted === true) {
        throw new ServiceUnavailableError(
          "store_unavailable",
          `The database refused this transaction ${retry + 1} times because of concurrent ones (${code === "40P01" ? "deadlock" : "serialization failure"}); retry shortly.`,
          { retryAfterSeconds: 1, cause: e },
        );
      }
      const pauseMs = Math.round(5 * 2 ** retry * (1 + Math.random()));
      o.log.warn("database transaction conflict; running it again", { code, error: (e as Error).message, retry: retry + 1, pauseMs });
      await sleep(pauseMs);
    }
  }
}

/**
 * The database refused a value itself (PostgreSQL's class 22, data exception: a NUL in text, an
 * invalid escape in JSON, a number out of range; SQLite's too big or mismatched): the same value
 * fails the same way every time, so retrying cannot help.
 */
export function isDataError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && (/^22[0-9A-Z]{3}$/.test(code) || code === "SQLITE_TOOBIG" || code === "SQLITE_MISMATCH");
}

/** True for a unique-constraint violation in either database. */
export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

/**
 * SQLITE_WAL_SYNC's "auto" on the event loop only where a flush serves many commits at once and
 * nothing else waits on the file: with group commit off every transaction has a flush of its own,
 * which the thread pool lets the next ones share (on the event loop they would run one after the
 * other: ≈ half the throughput, measured); with WORKERS > 1 the processes' flushes of the one file
 * wait on each other in the kernel, stalling each event loop (≈ 10 % less, measured).
 */
export function walSyncPlace(config: { walSync: WalSyncMode; groupCommit: boolean; workers: number }): WalSyncMode {
  if (config.walSync !== "auto") return config.walSync;
  return config.groupCommit && config.workers === 1 ? "auto" : "thread-pool";
}
