import fs from "node:fs";
import path from "node:path";
import type BetterSqlite3 from "better-sqlite3";

/**
 * Keeping the SQLite database the one it was: a file deleted or replaced under a running process
 * (DatabaseFiles), and a start on a new, empty file where a database existed (the id marker).
 * Either would otherwise go unnoticed until the orders were missing: SQLite writes on through the
 * descriptor it holds, and a new file gives order numbers from the start and forgets every token.
 */

interface Identity {
  dev: bigint;
  ino: bigint;
}

/** The identity of the file at `file` now, undefined when there is none. */
function identityOf(file: string): Identity | undefined {
  const s = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
  return s === undefined ? undefined : { dev: s.dev, ino: s.ino };
}

/**
 * The database file and its write-ahead log by identity (device and inode), checked against what
 * their paths name now. `check()` costs a stat per file (a few µs; the driver calls it once per
 * COMMIT, before the group's members are answered). When a file was deleted or its path names
 * another file, it throws an error that answers 503, once logs why (`onLost`), and from then on
 * every check and every statement fails with the same error until the process restarts: what the
 * process writes goes to a file that is gone, and it cannot put the file back itself.
 */
export class DatabaseFiles {
  readonly #files: { path: string; what: string; id: Identity | undefined }[];
  #lost: Error | undefined;

  constructor(
    file: string,
    private readonly onLost: (e: Error, detail: { file: string; problem: string }) => void,
  ) {
    // SQLite creates the log with the first transaction: its identity is taken at the first check.
    this.#files = [
      { path: file, what: "database file", id: identityOf(file) },
      { path: `${file}-wal`, what: "write-ahead log", id: identityOf(`${file}-wal`) },
    ];
  }

  /** The error every statement fails with once a file was found gone or replaced. */
  get lost(): Error | undefined {
    return this.#lost;
  }

  check(): void {
    if (this.#lost !== undefined) throw this.#lost;
    for (const f of this.#files) {
      let now: Identity | undefined;
      try {
        now = identityOf(f.path);
      } catch (e) {
        // Not known to be lost (a permission changed, an I/O error): this commit is not answered
        // as durable (503, the sender retries), the next one checks again.
        throw Object.assign(new Error(`cannot check the SQLite ${f.what} ${f.path}: ${(e as Error).message}`), { code: "SQLITE_IOERR", cause: e });
      }
      if (f.id === undefined) {
        f.id = now;
        continue;
      }
      const problem = now === undefined ? "was deleted" : now.dev !== f.id.dev || now.ino !== f.id.ino ? "was replaced by another file" : undefined;
      if (problem === undefined) continue;
      // SQLite's own code for "the database file has been moved since it was opened"; a store error (503).
      this.#lost = Object.assign(
        new Error(
          `the SQLite ${f.what} ${f.path} ${problem} while orderbridge had it open: what it writes now would be lost, ` +
            "so every request that needs the database answers 503 until orderbridge is restarted. Put the file back before " +
            `restarting: on Linux a deleted one can still be copied from /proc/${process.pid}/fd/ while this process runs, or restore it from a backup`,
        ),
        { code: "SQLITE_READONLY_DBMOVED" },
      );
      this.onLost(this.#lost, { file: f.path, problem });
      throw this.#lost;
    }
  }
}

/**
 * Where the database's id is kept beside it. Not "orderbridge.sqlite.id": whoever deletes
 * orderbridge.sqlite* would delete the marker with the database.
 */
export const DATABASE_ID_FILE = "database-id";

/** The id DATA_DIR says its database has; undefined when there is no marker (or an empty one). */
export function readDatabaseMarker(dataDir: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, DATABASE_ID_FILE), "utf8");
  } catch (e) {
    if ((e as { code?: unknown }).code === "ENOENT") return undefined;
    throw e;
  }
  const id = text.trim();
  return id === "" ? undefined : id;
}

/** Replaces the marker at once (written aside, then renamed over it: never half a file). */
export function writeDatabaseMarker(dataDir: string, id: string): void {
  const file = path.join(dataDir, DATABASE_ID_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${id}\n`);
  fs.renameSync(tmp, file);
}

/** The id recorded in an existing SQLite database, read before migrating it; undefined when it has none. */
export function readDatabaseId(sqlite: BetterSqlite3.Database): string | undefined {
  const meta = sqlite.prepare("select 1 from sqlite_master where type = 'table' and name = 'orderbridge_meta'").get();
  if (meta === undefined) return undefined;
  const row = sqlite.prepare("select value from orderbridge_meta where key = 'database_id'").get() as { value: string } | undefined;
  return row?.value;
}

/**
 * Why opening this database must be refused, or undefined. `databaseId`: the id found in the
 * file (undefined when the file does not exist or has none). Without a marker nothing is known
 * (a new installation, or one from before markers): it gets one.
 */
export function databaseIdProblem(o: {
  marker: string | undefined;
  fileExists: boolean;
  databaseId: string | undefined;
  allowNew: boolean;
  file: string;
  dataDir: string;
}): string | undefined {
  if (o.marker === undefined || o.allowNew || o.databaseId === o.marker) return undefined;
  const markerFile = path.join(o.dataDir, DATABASE_ID_FILE);
  const override = "or start once with SQLITE_ALLOW_NEW_DATABASE=true";
  if (!o.fileExists) {
    return (
      `the SQLite database ${o.file} does not exist, but ${markerFile} says DATA_DIR held the database ${o.marker}: it was deleted or moved. ` +
      "Starting would create a new, empty database (order numbers from ORDER_NUMBER_START again, every order and token forgotten). " +
      `Put the file back (with its -wal file), ${override} to begin with a new, empty database on purpose`
    );
  }
  const found = o.databaseId === undefined ? "a database without an id" : `the database ${o.databaseId}`;
  return `the SQLite database ${o.file} is not the one ${markerFile} names (${o.marker}): it is ${found}. Put the right file back, ${override} to use this one from now on`;
}
