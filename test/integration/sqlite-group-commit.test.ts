import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { pbkdf2 } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, sql } from "kysely";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { isStoreUnavailable, openStore, walSyncPlace, type Store } from "../../src/store/db.js";
import { FlushPlacement, GroupCommitSqliteDialect, WalSync, retryWhileBusy } from "../../src/store/sqlite-group-commit.js";
import { freshDatabase } from "../helpers/stores.js";

// The SQLite driver's promise: a transaction (or a statement) resolves only once it is durable,
// whether it shared its COMMIT with others (group commit, the default) or not. "Durable" is
// checked the way another process would see it: through a second connection to the same file.

const GROUP_SCRIPT = fileURLToPath(new URL("../helpers/sqlite-group.ts", import.meta.url));
const silent = createLogger({ level: "error", format: "json", silent: true });

interface Ctx {
  store: Store;
  db: Kysely<Record<string, Record<string, unknown>>>;
  /** A second connection: sees committed data only. */
  other: BetterSqlite3.Database;
  cleanup: () => Promise<void>;
}

async function open(groupCommit: boolean, synchronous = "FULL", extraEnv: Record<string, string> = {}): Promise<Ctx> {
  const fresh = freshDatabase("sqlite");
  const env = { ...fresh.env, SQLITE_GROUP_COMMIT: String(groupCommit), SQLITE_SYNCHRONOUS: synchronous, ...extraEnv };
  const store = await openStore(loadConfig(env).database, silent);
  const db = store.db as unknown as Ctx["db"];
  await sql`create table gc_rows (id integer primary key, v text not null)`.execute(db);
  await sql`create table gc_parent (id integer primary key)`.execute(db);
  await sql`create table gc_child (id integer primary key, parent integer not null references gc_parent (id) deferrable initially deferred)`.execute(db);
  const other = new BetterSqlite3(path.join(fresh.dataDir, "orderbridge.sqlite"), { readonly: true });
  return {
    store,
    db,
    other,
    cleanup: async () => {
      other.close();
      await store.close();
      await fresh.cleanup();
    },
  };
}

const visible = (c: Ctx, id: number): boolean => c.other.prepare("select 1 from gc_rows where id = ?").get(id) !== undefined;
const insert = (db: Ctx["db"], id: number) =>
  db
    .insertInto("gc_rows")
    .values({ id, v: `row ${id}` })
    .execute();

for (const groupCommit of [true, false]) {
  describe(`SQLite transactions, group commit ${groupCommit ? "on" : "off"}`, () => {
    let c: Ctx;
    before(async () => {
      c = await open(groupCommit);
    });
    after(async () => {
      await c.cleanup();
    });

    it("a transaction resolves only once another connection sees it, and not before", async () => {
      let seenInside: boolean | undefined;
      await c.db.transaction().execute(async (tx) => {
        await insert(tx, 1);
        seenInside = visible(c, 1);
      });
      assert.equal(seenInside, false);
      assert.equal(visible(c, 1), true);
    });

    it("concurrent transactions all commit, each durable when it resolves; with group commit they share a COMMIT", async () => {
      const ids = Array.from({ length: 20 }, (_, i) => 100 + i);
      const earlierVisibleInside: boolean[] = [];
      const visibleWhenResolved = await Promise.all(
        ids.map((id) =>
          c.db
            .transaction()
            .execute(async (tx) => {
              await insert(tx, id);
              if (id > 100) earlierVisibleInside.push(visible(c, id - 1));
            })
            .then(() => visible(c, id)),
        ),
      );
      assert.deepEqual(
        visibleWhenResolved,
        ids.map(() => true),
      );
      // Grouped: the earlier members are not committed yet while later ones run (one COMMIT for all).
      // Alone: each one committed before the next began.
      assert.deepEqual(
        earlierVisibleInside,
        ids.slice(1).map(() => !groupCommit),
      );
    });

    if (groupCommit) {
      it("a group commits after 256 members even within one turn; the next ones start a new group", async () => {
        const ids = Array.from({ length: 300 }, (_, i) => 1000 + i);
        const firstVisibleInside = new Map<number, boolean>();
        await Promise.all(
          ids.map((id) =>
            c.db.transaction().execute(async (tx) => {
              await insert(tx, id);
              firstVisibleInside.set(id, visible(c, 1000));
            }),
          ),
        );
        assert.equal(firstVisibleInside.get(1000 + 255), false, "the 256th still shares the first's group");
        assert.equal(firstVisibleInside.get(1000 + 256), true, "the 257th runs after the first group committed");
        assert.equal(
          ids.every((id) => visible(c, id)),
          true,
        );
      });
    }

    it("a failing transaction rolls back alone; the others of its group commit", async () => {
      const results = await Promise.allSettled([
        c.db.transaction().execute((tx) => insert(tx, 201)),
        c.db.transaction().execute(async (tx) => {
          await insert(tx, 202);
          throw new Error("this one fails");
        }),
        c.db.transaction().execute(async (tx) => {
          await insert(tx, 203);
          await insert(tx, 201); // a unique violation after a successful insert
        }),
        c.db.transaction().execute((tx) => insert(tx, 204)),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ["fulfilled", "rejected", "rejected", "fulfilled"],
      );
      assert.deepEqual(
        [201, 202, 203, 204].map((id) => visible(c, id)),
        [true, false, false, true],
      );
    });

    it("the transaction that opens a group rolls back alone too; those after it in the same turn commit", async () => {
      for (const [first, failure] of [
        [211, "throws"],
        [221, "unique violation"],
      ] as const) {
        if (failure === "unique violation") await insert(c.db, first + 5);
        const results = await Promise.allSettled([
          c.db.transaction().execute(async (tx) => {
            await insert(tx, first);
            if (failure === "throws") throw new Error("the first one fails");
            await insert(tx, first + 5); // taken
          }),
          c.db.transaction().execute((tx) => insert(tx, first + 1)),
          c.db.transaction().execute(async (tx) => {
            await insert(tx, first + 2);
            throw new Error("a later one fails");
          }),
          c.db.transaction().execute((tx) => insert(tx, first + 3)),
        ]);
        assert.deepEqual(
          results.map((r) => r.status),
          ["rejected", "fulfilled", "rejected", "fulfilled"],
          failure,
        );
        assert.deepEqual(
          [0, 1, 2, 3].map((i) => visible(c, first + i)),
          [false, true, false, true],
          failure,
        );
      }
      // A transaction alone in its group, rolled back: the next one opens a group of its own.
      await assert.rejects(
        c.db.transaction().execute(async (tx) => {
          await insert(tx, 231);
          throw new Error("alone");
        }),
        /alone/,
      );
      await c.db.transaction().execute((tx) => insert(tx, 232));
      assert.deepEqual([visible(c, 231), visible(c, 232)], [false, true]);
    });

    it("a statement outside a transaction resolves only once durable, also a read of a pending write", async () => {
      let readDone: Promise<boolean> | undefined;
      await c.db.transaction().execute(async (tx) => {
        await insert(tx, 301);
        // Queued behind the transaction; it reads the row once the transaction has let go.
        readDone = c.db
          .selectFrom("gc_rows")
          .select("id")
          .where("id", "=", 301)
          .executeTakeFirst()
          .then((row) => row !== undefined && visible(c, 301));
      });
      assert.equal(await readDone, true);
      await Promise.all([insert(c.db, 302), insert(c.db, 303)]);
      assert.equal(visible(c, 302) && visible(c, 303), true);
      await assert.rejects(insert(c.db, 302), /UNIQUE/);
      assert.equal(visible(c, 302), true);
    });

    it("waits for a write lock another process holds without blocking the event loop, then commits", async () => {
      // timeout 0: waiting in SQLite's busy handler here would stop this process, and with it a
      // group of the previous test that still holds the lock.
      const writer = new BetterSqlite3(path.join(path.dirname(c.other.name), "orderbridge.sqlite"), { timeout: 0 });
      try {
        await retryWhileBusy(() => writer.exec("BEGIN IMMEDIATE"), 5_000); // another instance, mid-transaction
        let ticks = 0;
        const ticker = setInterval(() => ticks++, 5);
        const waiting = c.db.transaction().execute((tx) => insert(tx, 501));
        // SQLite's own busy handler would have put this process to sleep: the lock could never be let go.
        await new Promise((r) => setTimeout(r, 150));
        writer.exec("COMMIT");
        await waiting;
        clearInterval(ticker);
        assert.ok(ticks >= 5, `the event loop ran meanwhile (${ticks} ticks)`);
        assert.equal(visible(c, 501), true);
      } finally {
        writer.close();
      }
    });

    it("when the COMMIT fails, every member of the group fails and nothing of it is kept", async () => {
      // A deferred foreign key is checked at COMMIT only: the member that breaks it takes its whole
      // group down (orderbridge's own schema has no deferred constraints).
      const results = await Promise.allSettled([
        c.db.transaction().execute((tx) => insert(tx, 401)),
        c.db.transaction().execute(async (tx) => {
          await tx.insertInto("gc_child").values({ id: 1, parent: 999 }).execute();
        }),
        c.db.transaction().execute((tx) => insert(tx, 402)),
      ]);
      if (groupCommit) {
        assert.deepEqual(
          results.map((r) => r.status),
          ["rejected", "rejected", "rejected"],
        );
        for (const r of results) assert.match(String((r as PromiseRejectedResult).reason), /FOREIGN KEY/);
        assert.deepEqual([visible(c, 401), visible(c, 402)], [false, false]);
      } else {
        assert.deepEqual(
          results.map((r) => r.status),
          ["fulfilled", "rejected", "fulfilled"],
        );
        assert.deepEqual([visible(c, 401), visible(c, 402)], [true, true]);
      }
      assert.deepEqual(c.other.prepare("select count(*) as n from gc_child").get(), { n: 0 });
      // The driver is usable afterwards.
      await c.db.transaction().execute((tx) => insert(tx, 403));
      assert.equal(visible(c, 403), true);
    });
  });
}

/** The threads of libuv's pool. */
const POOL_THREADS = Number(process.env["UV_THREADPOOL_SIZE"] ?? "4");

/**
 * Occupies every thread of libuv's pool for a while (PBKDF2 runs there). Returns how many of the
 * occupying tasks have finished so far, as a function.
 */
function occupyThreadPool(): () => number {
  let finished = 0;
  for (let i = 0; i < POOL_THREADS; i++) {
    pbkdf2("occupied", "salt", 300_000, 64, "sha512", () => {
      finished++;
    });
  }
  return () => finished;
}

describe("SQLITE_SYNCHRONOUS: the write-ahead log is synced by the driver (SQLITE_WAL_SYNC)", () => {
  for (const synchronous of ["FULL", "NORMAL"] as const) {
    for (const groupCommit of [true, false]) {
      it(`${synchronous}${groupCommit ? "" : ", group commit off"}, SQLITE_WAL_SYNC=thread-pool: SQLite runs at NORMAL; ${synchronous === "FULL" ? "a commit, and a read after another connection committed, resolve only after an fdatasync on the thread pool; a read after no change does not wait" : "nothing waits for the thread pool"}`, async () => {
        const c = await open(groupCommit, synchronous, { SQLITE_WAL_SYNC: "thread-pool" });
        const writer = new BetterSqlite3(c.other.name);
        const poolFree = async (finished: () => number): Promise<void> => {
          while (finished() < POOL_THREADS) await new Promise((r) => setTimeout(r, 10));
        };
        try {
          // SQLite itself never syncs in COMMIT (1 = NORMAL); FULL is kept by the driver.
          const level = await sql<{ synchronous: number }>`pragma synchronous`.execute(c.db);
          assert.deepEqual(level.rows, [{ synchronous: 1 }]);
          await insert(c.db, 1); // the log exists from here on

          // With the pool busy, an fdatasync waits its turn there: FULL's commit resolves only
          // after a task ahead of it finished, NORMAL's at once. The event loop runs meanwhile.
          let ticks = 0;
          const ticker = setInterval(() => ticks++, 5);
          let finished = occupyThreadPool();
          await c.db.transaction().execute((tx) => insert(tx, 2));
          const atCommit = finished();
          assert.equal(visible(c, 2), true);
          await poolFree(finished);
          await c.db.selectFrom("gc_rows").select("id").execute(); // notes the database's version

          // Nothing changed since: a read needs no flush of its own.
          finished = occupyThreadPool();
          await c.db.selectFrom("gc_rows").select("id").execute();
          const atUnchangedRead = finished();
          await poolFree(finished);

          // Another connection committed and did not sync: a read that may see it waits for a flush.
          writer.prepare("insert into gc_rows (id, v) values (3, 'by another connection')").run();
          finished = occupyThreadPool();
          const rows = await c.db.selectFrom("gc_rows").select("id").execute();
          const atRead = finished();
          clearInterval(ticker);
          assert.equal(rows.length, 3);
          if (synchronous === "FULL") {
            // The fdatasync ran on the first thread the pool freed.
            assert.ok(atCommit >= 1 && atRead >= 1, `resolved after a pool thread was free (${atCommit}, ${atRead})`);
            assert.ok(ticks >= 3, `the event loop ran while the commit waited (${ticks} ticks)`);
          } else {
            assert.deepEqual([atCommit, atRead], [0, 0]);
          }
          assert.equal(atUnchangedRead, 0, "a read after no change did not wait for the pool");
          await poolFree(finished);
        } finally {
          writer.close();
          await c.cleanup();
        }
      });
    }
  }

  // ("auto" is "event-loop" while the flushes are quick: FlushPlacement, below, on times it is told.)
  for (const walSync of ["event-loop"] as const) {
    it(`FULL, SQLITE_WAL_SYNC=${walSync}: a commit's fdatasync runs on the event loop, before the commit resolves, not on the thread pool`, async () => {
      const c = await open(true, "FULL", { SQLITE_WAL_SYNC: walSync });
      try {
        await insert(c.db, 1);
        const finished = occupyThreadPool();
        await c.db.transaction().execute((tx) => insert(tx, 2));
        await insert(c.db, 3);
        assert.equal(finished(), 0, "resolved while every pool thread was still busy");
        assert.deepEqual([visible(c, 2), visible(c, 3)], [true, true]);
        while (finished() < POOL_THREADS) await new Promise((r) => setTimeout(r, 10));
      } finally {
        await c.cleanup();
      }
    });
  }

  for (const walSyncOn of ["event-loop", "thread-pool"] as const) {
    it(`${walSyncOn}: a commit whose fdatasync fails is not reported (a store error, 503), and neither is any later one`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-walsync-"));
      const database = new BetterSqlite3(path.join(dir, "db.sqlite"));
      database.pragma("journal_mode = WAL");
      // The log to sync is a directory: it cannot be opened for writing, as a failed disk would refuse.
      const db = new Kysely<Record<string, Record<string, unknown>>>({
        dialect: new GroupCommitSqliteDialect({ database, groupCommit: true, busyTimeoutMs: 1000, syncWal: dir, walSyncOn }),
      });
      try {
        await sql`create table t (id integer primary key)`.execute(db).catch(() => undefined);
        for (let i = 0; i < 2; i++) {
          await assert.rejects(
            db.transaction().execute((tx) => tx.insertInto("t").values({ id: i }).execute()),
            (e: Error & { code?: string }) => e.code === "SQLITE_IOERR_FSYNC" && isStoreUnavailable(e),
          );
        }
      } finally {
        await db.destroy().catch(() => undefined);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it("FlushPlacement: auto runs flushes on the event loop while the median of the last 8 there is under 1 ms, on the thread pool from there (at once after one of 10 ms), timing the disk again on the event loop at most once a second, and comes back once it is quick", () => {
    const p = new FlushPlacement("auto");
    let now = 0;
    /** A flush asked for every 5 ms that takes `ms` where it runs. */
    const flush = (ms: number): "event-loop" | "thread-pool" => {
      now += 5;
      const where = p.next(now);
      if (where === "event-loop") p.record(now, ms);
      return where;
    };
    assert.equal(flush(0.3), "event-loop", "the first one, with nothing timed");
    for (let i = 0; i < 60; i++) assert.equal(flush(i % 20 === 4 ? 8 : 0.3), "event-loop", "a slow flush now and then (a checkpoint's) is not a slow disk");
    // The disk became slow: half the window slow puts the median over 1 ms.
    assert.deepEqual(
      [4, 4, 4, 4].map((ms) => flush(ms)),
      Array(4).fill("event-loop"),
    );
    assert.ok(Math.abs((p.medianMs ?? 0) - 2.15) < 1e-9, `median ${p.medianMs}`);
    // On the pool: 3 s of flushes every 5 ms, of which one a second on the event loop.
    const onPool = Array.from({ length: 600 }, () => flush(4));
    assert.equal(onPool[0], "thread-pool");
    assert.equal(onPool.filter((w) => w === "event-loop").length, 3, "once a second the disk is timed again");
    // Quick again: noticed by those probes; after five quick ones the median is under 1 ms.
    let probes = 0;
    while (probes < 5) if (flush(0.4) === "event-loop") probes++;
    assert.ok((p.medianMs ?? 9) < 1, `median ${p.medianMs}`);
    assert.equal(flush(0.4), "event-loop");
    // A disk that stalls: one flush of 10 ms or more sends the next ones to the pool at once.
    assert.equal(flush(250), "event-loop");
    assert.equal(flush(0.4), "thread-pool");
    now += 1000;
    assert.equal(flush(0.4), "event-loop", "timed again a second later");
    assert.equal(flush(0.4), "event-loop", "and back");
    // Chosen places stay chosen.
    const pool = new FlushPlacement("thread-pool");
    const loop = new FlushPlacement("event-loop");
    for (const ms of [0, 0.1, 50]) {
      pool.record(now, ms);
      loop.record(now, ms);
      assert.deepEqual([pool.next(now), loop.next(now)], ["thread-pool", "event-loop"]);
    }
  });

  it("SQLITE_WAL_SYNC=auto keeps the thread pool where a flush of its own per commit, or another process's flushes, would stall the event loop", () => {
    assert.equal(walSyncPlace({ walSync: "auto", groupCommit: true, workers: 1 }), "auto");
    assert.equal(walSyncPlace({ walSync: "auto", groupCommit: false, workers: 1 }), "thread-pool");
    assert.equal(walSyncPlace({ walSync: "auto", groupCommit: true, workers: 2 }), "thread-pool");
    for (const walSync of ["event-loop", "thread-pool"] as const) {
      assert.equal(walSyncPlace({ walSync, groupCommit: false, workers: 4 }), walSync, "a chosen place is kept");
    }
    const cfg = loadConfig({ SQLITE_WAL_SYNC: "Event-Loop", WORKERS: "3" }).database;
    assert.ok(cfg.kind === "sqlite");
    assert.deepEqual([cfg.walSync, cfg.workers], ["event-loop", 3]);
    assert.throws(() => loadConfig({ SQLITE_WAL_SYNC: "sometimes" }), /SQLITE_WAL_SYNC must be one of auto, event-loop, thread-pool \(got "sometimes"\)/);
  });

  for (const walSync of ["event-loop", "thread-pool"] as const) {
    it(`FULL, ${walSync}: a transaction that fails after reading another member's rows is reported only once that member's group is durable`, async () => {
      const c = await open(true, "FULL", { SQLITE_WAL_SYNC: walSync });
      try {
        await insert(c.db, 1);
        let seenAtFailure: boolean | undefined;
        const writer = c.db.transaction().execute((tx) => insert(tx, 2));
        const reader = c.db
          .transaction()
          .execute(async (tx) => {
            const rows = await tx.selectFrom("gc_rows").select("id").where("id", "=", 2).execute();
            throw new Error(`row 2 is taken (${rows.length})`); // an error that tells what it read
          })
          .catch((e: Error) => {
            seenAtFailure = visible(c, 2);
            return e.message;
          });
        assert.deepEqual(await Promise.all([writer.then(() => "committed"), reader]), ["committed", "row 2 is taken (1)"]);
        assert.equal(seenAtFailure, true, "the failure told of row 2 only once row 2 was committed");
      } finally {
        await c.cleanup();
      }
    });
  }

  it("FULL: a statement outside a transaction that fails on another member's row is reported only once that member's group is durable, and with the group's error when the group is lost (found by an attack run)", async () => {
    const c = await open(true, "FULL");
    try {
      const seen = (): boolean => visible(c, 7);
      // The group's COMMIT fails (a deferred foreign key): row 7 never exists.
      const member = c.db
        .transaction()
        .execute(async (tx) => {
          await insert(tx, 7);
          await tx.insertInto("gc_child").values({ id: 1, parent: 999 }).execute();
        })
        .then(
          () => "committed",
          (e: Error) => `failed: ${e.message}`,
        );
      const statement = insert(c.db, 7).then(
        () => "inserted",
        (e: Error & { code?: string }) => `failed: ${e.code ?? ""} ${e.message}; row 7 visible: ${seen()}`,
      );
      const [m, st] = await Promise.all([member, statement]);
      assert.match(m, /^failed: FOREIGN KEY constraint failed/);
      assert.doesNotMatch(st, /PRIMARYKEY|UNIQUE/, "not told of a row that was never committed");
      assert.match(st, /FOREIGN KEY constraint failed/, "the group's error");

      // When the group commits, the conflict is reported, once the row is durable.
      const writer = c.db.transaction().execute((tx) => insert(tx, 8));
      const again = insert(c.db, 8).then(
        () => "inserted",
        (e: Error & { code?: string }) => `${e.code}; row 8 visible: ${visible(c, 8)}`,
      );
      await writer;
      assert.equal(await again, "SQLITE_CONSTRAINT_PRIMARYKEY; row 8 visible: true");
    } finally {
      await c.cleanup();
    }
  });

  it("WalSync: the calls made while an fdatasync runs share the next one; one that cannot run rejects, and so do the later ones", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-walsync-"));
    try {
      const file = path.join(dir, "log");
      fs.writeFileSync(file, "frames");
      const w = new WalSync(file);
      const first = w.sync();
      const second = w.sync();
      const third = w.sync();
      assert.notEqual(first, second, "the second began after the first was asked for");
      assert.equal(second, third);
      await Promise.all([first, second, third]);
      const later = w.sync();
      assert.notEqual(later, third, "a call after they finished gets a flush of its own");
      await later;
      w.close();

      const broken = new WalSync(dir); // a directory cannot be opened for writing
      for (let i = 0; i < 2; i++) {
        await assert.rejects(broken.sync(), (e: Error & { code?: string }) => {
          assert.match(e.message, /syncing the SQLite write-ahead log failed: .*EISDIR/);
          assert.equal(e.code, "SQLITE_IOERR_FSYNC");
          assert.equal(isStoreUnavailable(e), true, "answered 503");
          return true;
        });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("SQLite: a group's savepoints keep their undo records in memory", () => {
  it("writes no temporary file for a group of 50 transactions (SQLite spilled each group's sub-journal to one, a write per page per member)", async () => {
    // Each member of a group is a savepoint; SQLite copies every page a member changes first into
    // the statement sub-journal, which it moves to a temporary file past 64 KiB unless temp_store
    // is MEMORY: dozens of writes an order, seen as most of the process's write calls under load.
    const fresh = freshDatabase("sqlite");
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-sqlite-tmp-"));
    const seen: string[] = [];
    const watcher = fs.watch(tmp, (_event, name) => seen.push(String(name)));
    try {
      const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", GROUP_SCRIPT], {
        env: { PATH: process.env["PATH"] ?? "", ...fresh.env, SQLITE_TMPDIR: tmp, MEMBERS: "50" },
      });
      assert.equal(stdout.trim(), "done 2050");
      await new Promise((resolve) => setTimeout(resolve, 100)); // inotify's events are delivered after the fact
      assert.deepEqual(seen, [], "no temporary file created in SQLITE_TMPDIR");
    } finally {
      watcher.close();
      fs.rmSync(tmp, { recursive: true, force: true });
      await fresh.cleanup();
    }
  });
});
