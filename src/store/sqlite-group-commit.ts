import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type BetterSqlite3 from "better-sqlite3";
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
} from "kysely";
import type { DatabaseFiles } from "./sqlite-file.js";

/**
 * SQLite with group commit.
 *
 * A durable SQLite commit costs an fsync, which blocks the event loop (better-sqlite3 is
 * synchronous) far longer than the statements before it. Here the transactions (and single
 * statements) that run within one turn of the event loop share one real transaction: each
 * `db.transaction()` is a SAVEPOINT inside it, and the real COMMIT runs once per turn (a
 * setImmediate after the first member began), so one fsync makes a whole group durable.
 *
 * The promise: nothing is reported before it is durable. A member's commit resolves only after
 * the group's COMMIT returned (and, with syncWal, its flush finished: below), and a statement outside a transaction that runs while a group is
 * open (it may read a member's writes) resolves only then too; so no answer, write-back or log of
 * success can leave the process for data that could still be lost. When the group's COMMIT fails,
 * or an error makes SQLite roll the whole transaction back, every member of the group fails with
 * that error (none of them was reported). A member that fails on its own is rolled back to its
 * savepoint and leaves the others untouched, exactly as a separate transaction would.
 *
 * Durability: with `syncWal`, SQLite runs at synchronous=NORMAL (a COMMIT only writes the group's
 * pages to the write-ahead log, and checkpoints sync the log and the database file themselves) and
 * the driver makes each COMMIT durable with an fdatasync of the log, either on libuv's thread pool
 * (the event loop goes on serving, and the next group fills, while the disk flushes; every COMMIT
 * made while one runs shares the next) or on the event loop itself, where a quick flush costs less
 * than handing it to a thread and back (see WalSync and FlushPlacement). A group is reported
 * durable only after an fdatasync that began after its COMMIT, and so is a member that rolled back
 * (its error may tell what it read, another member's rows among it). A read outside a group waits
 * for an fdatasync that began after anything it could have read was committed: another process's
 * commit may not be synced yet (SQLite's data_version tells whether one came since the last flush
 * was asked for). A log frame that
 * was checkpointed into the database file before the fdatasync is durable too: SQLite syncs the
 * database file after a complete checkpoint, before it starts the log over.
 *
 * A file deleted or replaced under the process (`files`) is noticed before a group is answered:
 * the group fails (503) rather than be reported durable in a file that no longer has its name.
 *
 * Transactions begin IMMEDIATE (the write lock is taken when the group opens): a transaction that
 * reads first and writes later cannot fail with SQLITE_BUSY_SNAPSHOT as a DEFERRED one would when
 * another process wrote in between. While another process (instance, cluster worker) holds the
 * lock, the group waits for it without blocking the event loop; one group holds it for at most
 * one turn of the event loop.
 */
/**
 * Runs `fn` (a synchronous better-sqlite3 call), and while it fails with SQLITE_BUSY (another
 * process holds a lock) again after a pause of 1, then 2 ms, up to `timeoutMs`; then the
 * last error is thrown. The event loop stays free between tries, unlike with SQLite's busy_timeout,
 * and unlike busy_timeout this also covers the cases where SQLite refuses to wait (a connection that
 * holds a read lock and wants the write lock while another process holds it: SQLite answers BUSY at
 * once rather than risk a deadlock, e.g. when several processes switch a new file to WAL together).
 */
/** SQLITE_BUSY or one of its extended codes: another process holds a lock. */
export function isSqliteBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}

export async function retryWhileBusy<T>(fn: () => T, timeoutMs: number): Promise<T> {
  let pause = 1;
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    try {
      return fn();
    } catch (e) {
      if (!isSqliteBusy(e) || Date.now() >= giveUpAt) throw e;
    }
    await sleep(pause);
    // Short: another process holds the write lock for one turn of its event loop, often a few ms,
    // and a longer pause lets it take the lock again and again (with 16 ms, WORKERS=2's p99 was
    // ≈ 130–180 ms; with 2 ms ≈ 75–105). A failed try costs some µs.
    pause = Math.min(pause * 2, 2);
  }
}

export class GroupCommitSqliteDialect implements Dialect {
  constructor(private readonly options: GroupCommitOptions) {}
  createDriver(): Driver {
    return new GroupCommitSqliteDriver(this.options);
  }
  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }
  createAdapter(): DialectAdapter {
    return new SqliteAdapter();
  }
  // Kysely's own signature; the introspector is not used by orderbridge.
  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}

export interface GroupCommitOptions {
  database: BetterSqlite3.Database;
  /** False: every transaction commits on its own (one fsync each), still BEGIN IMMEDIATE. */
  groupCommit: boolean;
  /** A group commits at the latest after this many members, even within one turn. */
  maxGroupSize?: number;
  /** How long to wait for the write lock while another process holds it (then SQLITE_BUSY, a 503). */
  busyTimeoutMs: number;
  /**
   * The database's write-ahead log file: each COMMIT is made durable by an fdatasync of it (run
   * SQLite at synchronous=NORMAL then). Undefined: SQLite's own setting decides.
   */
  syncWal?: string;
  /** Where those fdatasyncs run (FlushPlacement); default "thread-pool". */
  walSyncOn?: WalSyncMode;
  /**
   * Checked after each COMMIT (and its flush), before the group's members are answered: a group
   * whose file was deleted or replaced meanwhile fails (503) instead of being reported durable,
   * and once that happened every statement fails (see DatabaseFiles).
   */
  files?: DatabaseFiles;
}

/** Where the write-ahead log's fdatasyncs run (SQLITE_WAL_SYNC). */
export type WalSyncMode = "auto" | "event-loop" | "thread-pool";

/** In "auto": the flush runs on the event loop while the median of its recent times there is under this. */
export const EVENT_LOOP_FLUSH_LIMIT_MS = 1;
/** In "auto": one flush on the event loop this slow (a disk that stalls) sends the next ones to the thread pool at once. */
export const STALLED_FLUSH_MS = 10;
/** The event-loop flushes whose median "auto" goes by. */
export const FLUSH_WINDOW = 8;
/** In "auto", on the thread pool: at most this often one flush runs on the event loop, to time the disk again. */
export const FLUSH_PROBE_INTERVAL_MS = 1000;

/**
 * Where the next fdatasync runs. On libuv's thread pool the event loop serves on while the disk
 * flushes, at the price of a hand-off to a thread and back (a wake-up each way, ≈ 0.1–0.2 ms of
 * latency and some CPU per flush on a virtual machine); on the event loop nothing else runs until
 * the flush returns. A quick flush (a local SSD: 0.1–0.5 ms) costs the event loop less than the
 * hand-off; a slow one (network block storage: several ms) would stall every request meanwhile.
 *
 * "auto" times the flushes that run on the event loop (a flush on the pool cannot be timed from
 * here: its completion waits for the event loop's turn, which under load is the longer part) and
 * runs the next one there while the median of the last FLUSH_WINDOW is under
 * EVENT_LOOP_FLUSH_LIMIT_MS (one slow flush, a checkpoint's, moves no median) and the last one
 * took less than STALLED_FLUSH_MS; the first ones run there. On the thread pool, the first flush
 * asked for FLUSH_PROBE_INTERVAL_MS after the last one on the event loop runs there, to time the
 * disk again, so a disk that became quick again is noticed and a slow one costs the event loop at
 * most one flush a second. Pure: told the times, it answers.
 */
export class FlushPlacement {
  readonly #times: number[] = [];
  #lastOnLoopAt = -Infinity;
  constructor(readonly mode: WalSyncMode) {}

  /** Where the next flush runs, asked at `now` (ms, a monotonic clock). */
  next(now: number): "event-loop" | "thread-pool" {
    if (this.mode !== "auto") return this.mode;
    const last = this.#times.at(-1) ?? 0;
    if (last < STALLED_FLUSH_MS && (this.medianMs ?? 0) < EVENT_LOOP_FLUSH_LIMIT_MS) return "event-loop";
    return now - this.#lastOnLoopAt >= FLUSH_PROBE_INTERVAL_MS ? "event-loop" : "thread-pool";
  }

  /** A flush on the event loop, begun at `at`, took `ms`. */
  record(at: number, ms: number): void {
    this.#lastOnLoopAt = at;
    this.#times.push(ms);
    if (this.#times.length > FLUSH_WINDOW) this.#times.shift();
  }

  /** The median of the last event-loop flushes' times (undefined before the first). */
  get medianMs(): number | undefined {
    const n = this.#times.length;
    if (n === 0) return undefined;
    const sorted = [...this.#times].sort((a, b) => a - b);
    return n % 2 === 1 ? sorted[(n - 1) / 2] : ((sorted[n / 2 - 1] as number) + (sorted[n / 2] as number)) / 2;
  }
}

/**
 * fdatasyncs of one file. `sync()` resolves after an fdatasync that began after the call. On the
 * thread pool they run one at a time, and the callers that come while one runs share the next; on
 * the event loop (FlushPlacement) a call runs its own at once, unless one is running on the pool
 * (then it shares the next there). After a failed fdatasync every later call fails too (the kernel
 * may have dropped the pages it could not write; a later fdatasync could succeed without them),
 * until the process restarts.
 */
export class WalSync {
  #fd: number | undefined;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #broken: unknown;
  readonly #placement: FlushPlacement;

  constructor(
    private readonly file: string,
    mode: WalSyncMode = "thread-pool",
  ) {
    this.#placement = new FlushPlacement(mode);
  }

  sync(): Promise<void> {
    if (this.#running === undefined) return this.#placement.next(performance.now()) === "event-loop" ? this.#syncHere() : this.#start();
    this.#next ??= this.#running.then(
      () => this.#startNext(),
      () => this.#startNext(),
    );
    return this.#next;
  }

  /**
   * Resolves when the last fdatasync asked for (running or next) finished, at once when none is
   * pending; rejects after a failed one. No new fdatasync.
   */
  latest(): Promise<void> {
    if (this.#broken !== undefined) return Promise.reject(this.#broken);
    return this.#next ?? this.#running ?? Promise.resolve();
  }

  close(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }

  #startNext(): Promise<void> {
    this.#next = undefined;
    return this.#start();
  }

  #broke(err: Error): unknown {
    // The code SQLite itself gives a failed sync: a store error (503), the sender retries.
    this.#broken ??= Object.assign(new Error(`syncing the SQLite write-ahead log failed: ${err.message}`), {
      code: "SQLITE_IOERR_FSYNC",
      cause: err,
    });
    return this.#broken;
  }

  /** The log's descriptor, opened on first use: SQLite creates the log with the first write. */
  #open(): number {
    // Read-write, as some systems refuse to sync a descriptor opened for reading only.
    this.#fd ??= fs.openSync(this.file, "r+");
    return this.#fd;
  }

  #syncHere(): Promise<void> {
    if (this.#broken !== undefined) return Promise.reject(this.#broken);
    const began = performance.now();
    try {
      fs.fdatasyncSync(this.#open());
    } catch (e) {
      return Promise.reject(this.#broke(e as Error));
    }
    this.#placement.record(began, performance.now() - began);
    return Promise.resolve();
  }

  #start(): Promise<void> {
    const run = new Promise<void>((resolve, reject) => {
      if (this.#broken !== undefined) return reject(this.#broken);
      const fail = (err: Error): void => reject(this.#broke(err));
      let fd: number;
      try {
        fd = this.#open();
      } catch (e) {
        return fail(e as Error);
      }
      fs.fdatasync(fd, (err) => (err === null ? resolve() : fail(err)));
    }).finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
    run.catch(() => undefined); // reported to every caller that waits on it
    this.#running = run;
    return run;
  }
}

/** One real SQLite transaction shared by the members that ran within it. */
class Group {
  members = 0;
  #resolve!: () => void;
  #reject!: (e: unknown) => void;
  /** Resolves once the group's COMMIT returned (with syncWal: and its flush finished); rejects when the group was lost. */
  readonly durable: Promise<void>;
  constructor() {
    this.durable = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.durable.catch(() => undefined); // reported to each member that waits on it
  }
  commit(): void {
    this.#resolve();
  }
  fail(e: unknown): void {
    this.#reject(e);
  }
}

const SAVEPOINT = "ob_member";
const STATEMENT_CACHE_SIZE = 500;

class GroupCommitSqliteDriver implements Driver {
  readonly #db: BetterSqlite3.Database;
  readonly #grouped: boolean;
  readonly #maxGroupSize: number;
  readonly #busyTimeoutMs: number;
  #locked = false;
  readonly #waiting: Array<() => void> = [];
  #group: Group | undefined;
  #commitDue = false;
  readonly #walSync: WalSync | undefined;
  readonly #files: DatabaseFiles | undefined;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();
  /** Changes when another connection (another process) commits to the file. */
  readonly #dataVersion: BetterSqlite3.Statement;
  /** data_version when durableHorizon last asked for an fdatasync (undefined: never). */
  #versionAtSync: unknown;

  constructor(options: GroupCommitOptions) {
    this.#db = options.database;
    this.#walSync = options.syncWal === undefined ? undefined : new WalSync(options.syncWal, options.walSyncOn);
    this.#dataVersion = this.#db.prepare("PRAGMA data_version").pluck();
    this.#files = options.files;
    this.#grouped = options.groupCommit;
    this.#maxGroupSize = options.maxGroupSize ?? 256;
    this.#busyTimeoutMs = options.busyTimeoutMs;
    // SQLite's own busy handler would put the whole process to sleep; locks are waited for in
    // whenNotBusy instead, with the event loop free.
    this.#db.pragma("busy_timeout = 0");
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const lost = this.#files?.lost;
    if (lost !== undefined) throw lost;
    await this.lock();
    return new GroupConnection(this);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    (connection as GroupConnection).release();
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as GroupConnection;
    await c.ensureLock();
    c.group = await this.openGroup();
    this.execInGroup(`SAVEPOINT ${SAVEPOINT}`);
    c.inTransaction = true;
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as GroupConnection;
    const group = c.group;
    if (!c.inTransaction || group === undefined) throw new Error("commit without a transaction");
    this.execInGroup(`RELEASE ${SAVEPOINT}`);
    c.inTransaction = false;
    group.members++;
    if (!this.#grouped) this.commitNow();
    // Let the next transaction join the group while this one waits for the group's COMMIT.
    c.release();
    await group.durable;
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as GroupConnection;
    if (!c.inTransaction) return; // its commit failed with the group: nothing left to undo
    c.inTransaction = false;
    if (this.#db.inTransaction && c.group === this.#group) {
      this.#db.exec(`ROLLBACK TO ${SAVEPOINT}; RELEASE ${SAVEPOINT}`);
    }
    // Without group commit the group held this member only: end it, letting go of the write lock.
    if (!this.#grouped) this.commitNow();
    // Its error may tell what it read (an order, the stock), and it may have read what another
    // member of its group wrote: only once the group is durable (its COMMIT and a flush after it,
    // which covers what other processes had committed before too). The group commits once nobody
    // holds the lock, so let go of it first.
    const group = c.group;
    c.release();
    if (group === undefined) await this.durableHorizon();
    else await group.durable;
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`SAVEPOINT "${name}"`));
  }
  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`ROLLBACK TO "${name}"`));
  }
  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`RELEASE "${name}"`));
  }

  async destroy(): Promise<void> {
    await this.lock();
    this.commitNow();
    await this.durableHorizon().catch(() => undefined); // its members were told
    this.#walSync?.close();
    this.#db.close();
  }

  /**
   * Resolves once everything committed so far is durable (with syncWal; at once without): what a
   * statement outside a group read may be pages another process committed and has not synced yet,
   * which this process's own syncs may predate. Every COMMIT of this process asks for an fdatasync
   * that begins after it; so when no other connection committed since this method last asked for
   * one (SQLite's data_version, read before asking, is unchanged), the last fdatasync asked for
   * covers everything this read could see, and no new one is needed: a read costs no flush when
   * nothing changed.
   */
  durableHorizon(): Promise<void> {
    const w = this.#walSync;
    if (w === undefined) return Promise.resolve();
    const version = this.#dataVersion.get();
    if (version === this.#versionAtSync) return w.latest();
    this.#versionAtSync = version;
    return w.sync();
  }

  // --- the lock: one statement or member transaction at a time (SQLite has one connection) ---

  async lock(): Promise<void> {
    if (this.#locked) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
      return; // handed over locked
    }
    this.#locked = true;
  }

  unlock(): void {
    if (this.#commitDue || (this.#group !== undefined && this.#group.members >= this.#maxGroupSize)) this.commitNow();
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#locked = false;
  }

  // --- groups ---

  get grouped(): boolean {
    return this.#grouped;
  }

  get openGroupOrUndefined(): Group | undefined {
    return this.#group;
  }

  /**
   * The prepared statement for `sql`. Kysely's own SQLite driver prepares every statement anew, and
   * preparing costs more than running one of ours; queries come from a fixed set of shapes, so
   * statements are kept by their text (at most STATEMENT_CACHE_SIZE, the oldest dropped first).
   * Safe: better-sqlite3 runs each statement to completion synchronously, so one is never in use
   * twice at once; SQLite re-prepares it by itself when another connection changed the schema.
   */
  statement(sql: string): BetterSqlite3.Statement {
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) this.#statements.delete(this.#statements.keys().next().value as string);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  /**
   * The open group, beginning one (BEGIN IMMEDIATE) when there is none. Call with the lock held.
   * While another process holds SQLite's write lock, tries again after a short pause (the event
   * loop keeps serving meanwhile) until busyTimeoutMs has passed.
   */
  async openGroup(): Promise<Group> {
    if (this.#group !== undefined) return this.#group;
    // A transaction left open by a failed ROLLBACK would make every BEGIN fail from now on.
    if (this.#db.inTransaction) this.#db.exec("ROLLBACK");
    await this.whenNotBusy(() => this.statement("BEGIN IMMEDIATE").run());
    const group = new Group();
    this.#group = group;
    if (this.#grouped) {
      setImmediate(() => {
        if (this.#group !== group) return;
        if (this.#locked)
          this.#commitDue = true; // a member is running: commit when it lets go
        else this.commitNow();
      });
    }
    return group;
  }

  /** Runs `fn`, again after a growing pause while another process holds a lock, up to busyTimeoutMs. */
  whenNotBusy<T>(fn: () => T): Promise<T> {
    return retryWhileBusy(fn, this.#busyTimeoutMs);
  }

  /** Commits the open group now (call with the lock held or free, never mid-member). */
  commitNow(): void {
    const group = this.#group;
    this.#commitDue = false;
    if (group === undefined) return;
    this.#group = undefined;
    try {
      this.statement("COMMIT").run();
    } catch (e) {
      if (this.#db.inTransaction) {
        try {
          this.#db.exec("ROLLBACK");
        } catch {
          /* the rollback's own failure changes nothing: the group is lost either way */
        }
      }
      group.fail(e);
      return;
    }
    // Last before the answer: the file the group went to must still be the one at the path.
    const answer = (): void => {
      try {
        this.#files?.check();
      } catch (e) {
        group.fail(e);
        return;
      }
      group.commit();
    };
    if (this.#walSync === undefined) answer();
    else this.#walSync.sync().then(answer, (e: unknown) => group.fail(e));
  }

  /** Runs `sql` in the open group; when it fails, the group is dealt with (afterError) first. */
  private execInGroup(sql: string): void {
    try {
      this.statement(sql).run();
    } catch (e) {
      this.afterError(e);
      throw e;
    }
  }

  /** After a failed statement: when SQLite rolled the whole transaction back, the group is lost. */
  afterError(e: unknown): void {
    const group = this.#group;
    if (group !== undefined && !this.#db.inTransaction) {
      this.#group = undefined;
      this.#commitDue = false;
      group.fail(e);
    }
  }
}

class GroupConnection implements DatabaseConnection {
  inTransaction = false;
  group: Group | undefined;
  #holdsLock = true;

  constructor(private readonly driver: GroupCommitSqliteDriver) {}

  release(): void {
    if (!this.#holdsLock) return;
    this.#holdsLock = false;
    this.driver.unlock();
  }

  /** A connection kept for several statements takes the lock again after a statement gave it up. */
  async ensureLock(): Promise<void> {
    if (this.#holdsLock) return;
    await this.driver.lock();
    this.#holdsLock = true;
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    if (!this.#holdsLock) await this.ensureLock();
    const d = this.driver;
    const stmt = d.statement(compiled.sql);
    const params = compiled.parameters as unknown[];
    if (this.inTransaction) {
      if (this.group !== d.openGroupOrUndefined) throw new Error("The transaction was rolled back by an earlier error.");
      return run<R>(d, stmt, params);
    }

    // Outside a transaction: a read while nothing is pending runs on its own; anything else joins
    // (or opens) a group and is reported once the group is durable.
    if (d.openGroupOrUndefined === undefined && stmt.readonly) {
      const result = await d.whenNotBusy(() => run<R>(d, stmt, params));
      await d.durableHorizon();
      return result;
    }
    const group = await d.openGroup();
    let outcome: { result: QueryResult<R> } | { error: unknown };
    try {
      outcome = { result: run<R>(d, stmt, params) };
    } catch (e) {
      outcome = { error: e };
    }
    group.members++;
    if (!d.grouped) d.commitNow(); // a failed statement was undone by SQLite itself
    this.release();
    // A failure too is reported only once the group is durable: its error may tell of what another
    // member wrote (a key taken by a row of this group). A lost group's error wins.
    await group.durable;
    if ("error" in outcome) throw outcome.error;
    return outcome.result;
  }

  async *streamQuery<R>(compiled: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    const result = await this.executeQuery<R>(compiled);
    for (const row of result.rows) yield { rows: [row] };
  }
}

function run<R>(d: GroupCommitSqliteDriver, stmt: BetterSqlite3.Statement, params: unknown[]): QueryResult<R> {
  try {
    if (stmt.reader) return { rows: stmt.all(params) as R[] };
    const { changes, lastInsertRowid } = stmt.run(params);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  } catch (e) {
    d.afterError(e);
    throw e;
  }
}
