import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import { PassThrough } from "node:stream";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { sql } from "kysely";
import pg from "pg";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { isStoreUnavailable, openStore, type Store } from "../../src/store/db.js";
import { loadCatalog } from "../../src/platforms/local/catalog.js";
import { createLocalPlatform } from "../../src/platforms/local/adapter.js";
import { createSchemaRegistry } from "../../src/validation/schemas.js";
import { transaction } from "../../src/store/handle.js";
import { createLocalOrders } from "../../src/store/local-orders.js";
import type { LocalOrderItemRow, LocalOrderRow } from "../../src/store/schema.js";
import { freshDatabase, storeKinds, testDatabaseUrl } from "../helpers/stores.js";

const silent = createLogger({ level: "error", format: "json", silent: true });
const OPEN_STORE = fileURLToPath(new URL("../helpers/open-store.ts", import.meta.url));

/** Opens the store in a separate process (better-sqlite3 is synchronous: one process would block itself). */
async function openInProcess(env: Record<string, string>): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", OPEN_STORE], {
    env: { PATH: process.env["PATH"] ?? "", ...env },
  });
  return stdout.trim();
}

for (const { kind, skip } of await storeKinds()) {
  describe(`store [${kind}]`, { skip }, () => {
    it("opens when several instances start together on a schema that does not exist yet", { skip: kind !== "postgres" }, async () => {
      // CREATE SCHEMA IF NOT EXISTS is not atomic: all but one of six instances failed with
      // "duplicate key value violates unique constraint pg_namespace_nspname_index".
      for (let round = 0; round < 5; round++) {
        const db = freshDatabase(kind);
        try {
          const config = loadConfig(db.env).database;
          const opened = await Promise.allSettled(Array.from({ length: 6 }, () => openStore(config, silent)));
          for (const o of opened) if (o.status === "fulfilled") await o.value.close();
          const failed = opened.flatMap((o) => (o.status === "rejected" ? [String(o.reason)] : []));
          assert.deepEqual(failed, [], `round ${round}`);
        } finally {
          await db.cleanup();
        }
      }
    });

    it("migrates once when several instances start together, and again is a no-op", async () => {
      const db = freshDatabase(kind);
      try {
        const config = loadConfig(db.env).database;
        const outputs = await Promise.all([1, 2, 3].map(() => openInProcess(db.env)));
        assert.deepEqual(outputs, ["opened", "opened", "opened"]);
        const reopened = await openStore(config, silent);
        const rows = await sql<{ name: string }>`select name from orderbridge_migrations order by name`.execute(reopened.db);
        assert.deepEqual(
          rows.rows.map((r) => r.name),
          [
            "0001_initial",
            "0002_jobs_and_recharge",
            "0003_order_id_sequences",
            "0004_job_lanes",
            "0005_meta",
            "0006_retention",
            "0010_trace_context",
            "0011_recharge_sweep",
            "0012_job_attempts",
            "0013_callback_log",
            "0014_console_actions",
            "0015_recharge_inbox",
            "0016_sign_in_refusals",
            "0017_sqlite_row_ids",
          ],
        );
        await reopened.ping();
        await reopened.close();
      } finally {
        await db.cleanup();
      }
    });
  });
}

describe("store [postgres] beside other schemas", { skip: (await storeKinds())[1]!.skip }, () => {
  // Regression: Kysely's migrator took another schema's migration tables for ours.
  it("migrates its own schema when another schema of the database is already migrated", async () => {
    const a = freshDatabase("postgres");
    const b = freshDatabase("postgres");
    try {
      const storeA = await openStore(loadConfig(a.env).database, silent);
      const storeB = await openStore(loadConfig(b.env).database, silent);
      await storeB.db.selectFrom("sp_callbacks").selectAll().execute();
      const lock = await sql<{
        n: number;
      }>`select count(*)::int as n from information_schema.tables where table_schema = ${b.env["DATABASE_SCHEMA"]} and table_name = 'orderbridge_migrations'`.execute(storeB.db);
      assert.equal(lock.rows[0]?.n, 1);
      await storeA.close();
      await storeB.close();
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });
});

describe("store [sqlite] start-up while another process holds the write lock", () => {
  it("waits past the 5 s a request would wait, as for another instance's long migration (found by an attack run: 0017 on 900 000 orders held it 5.5 s, and a peer starting with it failed with SQLITE_BUSY)", async () => {
    const d = freshDatabase("sqlite");
    try {
      await (await openStore(loadConfig(d.env).database, silent)).close();
      const holder = new BetterSqlite3(path.join(d.dataDir, "orderbridge.sqlite"));
      holder.exec("BEGIN IMMEDIATE");
      const released = new Promise<void>((resolve) =>
        setTimeout(() => {
          holder.exec("COMMIT");
          holder.close();
          resolve();
        }, 6_000),
      );
      const logs: string[] = [];
      const stream = new PassThrough();
      stream.on("data", (chunk: Buffer) => logs.push(String(chunk)));
      const log = createLogger({ level: "info", format: "json", stream });
      const opened = await openStore(loadConfig(d.env).database, log);
      await released;
      await opened.ping();
      await opened.close();
      await new Promise((r) => setImmediate(r)); // lines are written once per turn
      assert.ok(
        logs.some((m) => m.includes("another process holds the database's write lock")),
        logs.join("\n"),
      );
    } finally {
      await d.cleanup();
    }
  });
});

describe("store [sqlite] migration 0017_sqlite_row_ids", () => {
  it("rebuilds the local platform's tables of an existing database with row ids as keys (fewer B-trees an order writes), keeping every row, the foreign key and the counters", async () => {
    const d = freshDatabase("sqlite");
    try {
      // The database as 0016 left it: bigint keys (an index beside each table), rowid counters and stock.
      let store = await openStore(loadConfig(d.env).database, silent);
      for (const t of ["local_order_items", "local_orders", "counters", "local_stock"]) await sql`drop table ${sql.table(t)}`.execute(store.db);
      await sql`delete from orderbridge_migrations where name = '0017_sqlite_row_ids'`.execute(store.db);
      await sql`create table "local_orders" ("id" bigint primary key, "order_number" text not null unique, "idempotency_key" text not null unique, "source" text not null, "source_order_id" text, "customer_email" text not null, "source_customer_id" text, "platform_customer_id" text, "currency" text not null, "status" text not null, "state" text not null, "subtotal" bigint not null, "shipping_total" bigint not null, "tax_total" bigint not null, "discount_total" bigint not null, "total" bigint not null, "shipping_method_code" text, "coupon_codes" text not null, "billing_address" text, "shipping_address" text, "created_at" bigint not null, "details" text)`.execute(
        store.db,
      );
      await sql`create index "local_orders_source_order_id" on "local_orders" ("source_order_id")`.execute(store.db);
      await sql`create table "local_order_items" ("id" bigint primary key, "order_id" bigint not null references "local_orders" ("id"), "line_no" integer not null, "line_ref" text not null, "sku" text not null, "name" text not null, "description" text, "quantity" integer not null, "requires_shipping" integer not null, "unit_price" bigint not null, "shipping_total" bigint not null, "tax_total" bigint not null, "discount_total" bigint not null, "line_total" bigint not null, "subscription_id" text, "properties" text)`.execute(
        store.db,
      );
      await sql`create index "local_order_items_order_id" on "local_order_items" ("order_id", "line_no")`.execute(store.db);
      await sql`create table "local_stock" ("sku" text primary key, "available" bigint not null)`.execute(store.db);
      await sql`create table "counters" ("name" text primary key, "value" bigint not null)`.execute(store.db);
      for (const id of [100000, 100001]) {
        await sql`insert into local_orders values (${id}, ${`OB-${id}`}, ${`key-${id}`}, 'subscribe_pro', ${`so-${id}`}, 'a@example.com', null, 'P1', 'USD', 'pending', 'new', 2000, 500, 160, 0, 2660, 'ups_ground', '[]', null, '{"city":"X"}', ${1_700_000_000_000 + id}, '{"note":"n"}')`.execute(
          store.db,
        );
        for (const line of [1, 2]) {
          await sql`insert into local_order_items values (${(id - 100000) * 2 + line}, ${id}, ${line}, ${`l${line}`}, 'RUBY-RED', 'Ruby Red', null, 1, 1, 1000, 250, 80, 0, 1330, 's1', '[{"name":"n","value":"v"}]')`.execute(
            store.db,
          );
        }
      }
      await sql`insert into counters values ('local_order', 100001), ('local_order_item', 4)`.execute(store.db);
      await sql`insert into local_stock values ('RUBY-RED', 7)`.execute(store.db);
      const before = {
        orders: (await sql`select * from local_orders order by id`.execute(store.db)).rows,
        items: (await sql`select * from local_order_items order by id`.execute(store.db)).rows,
        counters: (await sql`select * from counters order by name`.execute(store.db)).rows,
        stock: (await sql`select * from local_stock`.execute(store.db)).rows,
      };
      // Rows a rowid table allowed and WITHOUT ROWID refuses (a NULL text key): unreachable, left behind.
      await sql`insert into local_stock values (null, 1)`.execute(store.db);
      await sql`insert into counters values (null, 1)`.execute(store.db);
      await store.close();

      store = await openStore(loadConfig(d.env).database, silent);
      try {
        assert.deepEqual(store.migrated, ["0017_sqlite_row_ids"]);
        assert.deepEqual(
          {
            orders: (await sql`select * from local_orders order by id`.execute(store.db)).rows,
            items: (await sql`select * from local_order_items order by id`.execute(store.db)).rows,
            counters: (await sql`select * from counters order by name`.execute(store.db)).rows,
            stock: (await sql`select * from local_stock`.execute(store.db)).rows,
          },
          before,
          "every row as it was",
        );
        const schema = (
          await sql<{
            name: string;
            type: string;
            sql: string | null;
          }>`select name, type, sql from sqlite_master where tbl_name in ('local_orders', 'local_order_items', 'counters', 'local_stock') order by name`.execute(store.db)
        ).rows;
        const table = (name: string) => schema.find((r) => r.type === "table" && r.name === name)?.sql ?? "";
        assert.match(table("local_orders"), /"id" integer primary key/);
        assert.match(table("local_order_items"), /"id" integer primary key.*"order_id" bigint not null references "local_orders" \("id"\)/);
        assert.match(table("counters"), /without rowid$/);
        assert.match(table("local_stock"), /without rowid$/);
        assert.deepEqual(
          schema.filter((r) => r.type === "index").map((r) => r.name),
          ["local_order_items_order_id", "local_orders_source_order_id", "sqlite_autoindex_local_orders_1", "sqlite_autoindex_local_orders_2"],
          "no index for the row ids, none for the WITHOUT ROWID tables' keys: the key is the table",
        );
        assert.equal(schema.filter((r) => r.name.endsWith("_old")).length, 0, "the old tables are gone");
        assert.deepEqual((await sql`pragma foreign_key_check`.execute(store.db)).rows, []);
        await assert.rejects(
          sql`insert into local_order_items values (99, 999999, 1, 'l1', 'X', 'X', null, 1, 1, 1, 0, 0, 0, 1, null, null)`.execute(store.db),
          /FOREIGN KEY constraint failed/,
          "the items' reference to their order still holds",
        );
        // Ids go on from the counters.
        const orders = createLocalOrders(store.handle, { orderNumberPrefix: "OB-", orderNumberStart: 100_000 });
        const [order] = before.orders as LocalOrderRow[];
        const [item] = before.items as LocalOrderItemRow[];
        const { id: _o, order_number: _n, ...newOrder } = { ...order!, idempotency_key: "key-new" };
        const { id: _i, order_id: _oi, ...newItem } = item!;
        const placed = await transaction(store.handle, (t) => orders.insert(t, newOrder, [newItem]));
        assert.deepEqual([placed?.row.id, placed?.row.order_number, placed?.items.map((i) => i.id)], [100002, "OB-100002", [5]]);
      } finally {
        await store.close();
      }
      store = await openStore(loadConfig(d.env).database, silent);
      assert.deepEqual(store.migrated, [], "once");
      await store.close();
    } finally {
      await d.cleanup();
    }
  });
});

describe("store [postgres] order ids", { skip: (await storeKinds())[1]!.skip }, () => {
  it("order and item ids come from sequences that continue where the counters were (upgrade from 0002), once", async () => {
    const d = freshDatabase("postgres");
    const catalog = loadCatalog(undefined, createSchemaRegistry());
    const local = (store: Store) => createLocalPlatform({ db: store.handle, catalog, orderNumberPrefix: "OB-", orderNumberStart: 100_000 });
    try {
      // A database that placed orders before 0003: counters advanced, no sequences yet.
      let store = await openStore(loadConfig(d.env).database, silent);
      await local(store).init();
      await sql`drop sequence local_order_ids`.execute(store.db);
      await sql`drop sequence local_order_item_ids`.execute(store.db);
      await sql`delete from orderbridge_migrations where name = '0003_order_id_sequences'`.execute(store.db);
      await sql`update counters set value = case name when 'local_order' then 100041 else 77 end`.execute(store.db);
      await store.close();

      store = await openStore(loadConfig(d.env).database, silent);
      assert.deepEqual(store.migrated, ["0003_order_id_sequences"]);
      await local(store).init();
      const next = async () =>
        (await sql<{ o: number; i: number }>`select nextval('local_order_ids')::int as o, nextval('local_order_item_ids')::int as i`.execute(store.db)).rows[0];
      assert.deepEqual(await next(), { o: 100042, i: 78 });
      await local(store).init(); // a restart does not move the sequences back
      assert.deepEqual(await next(), { o: 100043, i: 79 });
      await store.close();
    } finally {
      await d.cleanup();
    }
  });
});

describe("store [postgres] prepared statements", { skip: (await storeKinds())[1]!.skip }, () => {
  /** A store on one connection, so every statement meets the statements it prepared before. */
  async function withOneConnection(env: Record<string, string>, fn: (store: Store, d: ReturnType<typeof freshDatabase>) => Promise<void>): Promise<void> {
    const d = freshDatabase("postgres");
    try {
      const store = await openStore(loadConfig({ ...d.env, DATABASE_POOL_SIZE: "1", ...env }).database, silent);
      try {
        await fn(store, d);
      } finally {
        await store.close();
      }
    } finally {
      await d.cleanup();
    }
  }

  it("runs statements with parameters as named prepared statements; a table altered under one makes a 503, then it runs unnamed", () =>
    withOneConnection({}, async (store, d) => {
      const pick = (key: string) => sql<Record<string, unknown>>`select * from sp_callbacks where idempotency_key = ${key}`.execute(store.db);
      const prepared = async () =>
        (await sql<{ statement: string }>`select statement from pg_prepared_statements where name like 'ob\_%'`.execute(store.db)).rows
          .map((r) => r.statement)
          .filter((t) => t.includes("sp_callbacks"));
      assert.deepEqual(await prepared(), []);
      await pick("a");
      await pick("b");
      assert.deepEqual(await prepared(), ["select * from sp_callbacks where idempotency_key = $1"]);

      // Another instance's migration adds a column: PostgreSQL refuses the prepared statement.
      const other = new pg.Client({ connectionString: d.env["DATABASE_URL"], options: `-c search_path=${d.env["DATABASE_SCHEMA"]}` });
      await other.connect();
      await other.query("alter table sp_callbacks add column extra text");
      await other.end();
      const failure = await pick("c").then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(failure instanceof Error, "the prepared statement fails once");
      assert.equal(isStoreUnavailable(failure), true, `answered as unavailable (503): ${failure.message}`);
      const again = await pick("c");
      assert.deepEqual(again.rows, []);
    }));

  it("DATABASE_PREPARED_STATEMENTS=false runs every statement unnamed (for a transaction-pooling proxy)", () =>
    withOneConnection({ DATABASE_PREPARED_STATEMENTS: "false" }, async (store) => {
      await sql`select * from sp_callbacks where idempotency_key = ${"a"}`.execute(store.db);
      await sql`select * from sp_callbacks where idempotency_key = ${"b"}`.execute(store.db);
      const rows = await sql<{ n: number }>`select count(*)::int as n from pg_prepared_statements`.execute(store.db);
      assert.equal(rows.rows[0]?.n, 0);
    }));
});

/**
 * A TCP proxy on loopback in front of PostgreSQL that counts the client's turns: each time the
 * client sends after the server has answered (a round trip begins).
 */
async function turnCountingProxy(target: URL): Promise<{ url: (u: string) => string; turns: () => number; reset: () => void; close: () => Promise<void> }> {
  let turns = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    let serverSpoke = true;
    client.on("data", (chunk) => {
      if (serverSpoke) turns++;
      serverSpoke = false;
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      serverSpoke = true;
      client.write(chunk);
    });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on("close", () => b.destroy());
      a.on("error", () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: (u) => {
      const x = new URL(u);
      x.hostname = "127.0.0.1";
      x.port = String(port);
      return x.toString();
    },
    turns: () => turns,
    reset: () => {
      turns = 0;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("store [postgres] pipelined BEGIN", { skip: (await storeKinds())[1]!.skip }, () => {
  async function withProxiedStore(env: Record<string, string>, fn: (store: Store, proxy: Awaited<ReturnType<typeof turnCountingProxy>>) => Promise<void>): Promise<void> {
    const d = freshDatabase("postgres");
    const proxy = await turnCountingProxy(new URL(d.env["DATABASE_URL"]!));
    try {
      const store = await openStore(loadConfig({ ...d.env, DATABASE_URL: proxy.url(d.env["DATABASE_URL"]!), ...env }).database, silent);
      try {
        await sql`create table pipelined (n int primary key)`.execute(store.db);
        await fn(store, proxy);
      } finally {
        await store.close();
      }
    } finally {
      await proxy.close();
      await d.cleanup();
    }
  }
  const twoStatements = (store: Store, n: number) =>
    store.db.transaction().execute(async (t) => {
      await sql`insert into pipelined (n) values (${n})`.execute(t);
      return (await sql<{ c: number }>`select count(*)::int as c from pipelined where n = ${n}`.execute(t)).rows[0]?.c;
    });

  for (const [env, expected, what] of [
    [{}, 3, "sends a transaction's BEGIN in one write with its first statement: a round trip fewer"],
    [{ DATABASE_PIPELINE: "false" }, 4, "DATABASE_PIPELINE=false: BEGIN is a round trip of its own"],
  ] as const) {
    it(what, () =>
      withProxiedStore({ DATABASE_POOL_SIZE: "1", ...env }, async (store, proxy) => {
        await twoStatements(store, 0); // the connection is open, its statements prepared
        proxy.reset();
        assert.equal(await twoStatements(store, 1), 1);
        // BEGIN, the insert, the select, COMMIT: four round trips, or three with BEGIN sent with the insert.
        assert.equal(proxy.turns(), expected);
      }),
    );
  }

  it("keeps a transaction's meaning: its first statement inside it, rolled back with it; a transaction without statements; a failing first statement", () =>
    withProxiedStore({ DATABASE_POOL_SIZE: "1" }, async (store) => {
      const count = async () => (await sql<{ c: number }>`select count(*)::int as c from pipelined`.execute(store.db)).rows[0]?.c;
      // The first statement ran inside the transaction: rolled back with it.
      await assert.rejects(
        store.db.transaction().execute(async (t) => {
          await sql`insert into pipelined (n) values (1)`.execute(t);
          throw new Error("undo");
        }),
        /undo/,
      );
      assert.equal(await count(), 0);
      // No statement at all: the BEGIN goes with the ROLLBACK, and with the COMMIT.
      await assert.rejects(
        store.db.transaction().execute(async () => {
          throw new Error("before any statement");
        }),
        /before any statement/,
      );
      assert.equal(await store.db.transaction().execute(async () => "empty"), "empty");
      // The first statement fails: its own error, and the connection is fine for the next one.
      await sql`insert into pipelined (n) values (2)`.execute(store.db);
      await assert.rejects(twoStatements(store, 2), (e: Error & { code?: string }) => e.code === "23505");
      assert.equal(await twoStatements(store, 3), 1);
      assert.equal(await count(), 2);
      // A value node-postgres cannot send (a BigInt inside JSON): the transaction fails, nothing else does.
      await assert.rejects(
        store.db.transaction().execute(async (t) => {
          await sql`select ${{ big: 1n } as unknown as number}::jsonb`.execute(t);
        }),
        /BigInt/,
      );
      // node-postgres had parsed that statement on the connection and closed it: the same text runs
      // again (on a new connection: the one whose statements node-postgres had wrong was closed).
      const again = await sql<Record<string, unknown>>`select ${JSON.stringify({ ok: 1 }) as unknown as number}::jsonb`.execute(store.db);
      assert.deepEqual(Object.values(again.rows[0] ?? {}), [{ ok: 1 }]);
      await assert.rejects(
        store.db.transaction().execute(async (t) => {
          await sql`select ${
            {
              toPostgres: () => {
                throw new Error("cannot be sent");
              },
            } as unknown as number
          }::int`.execute(t);
        }),
        /cannot be sent/,
      );
      assert.equal(await twoStatements(store, 4), 1);
      // Many at once on one connection: each transaction its own, none lost.
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => twoStatements(store, 10 + i)));
      assert.deepEqual(
        results,
        Array.from({ length: 40 }, () => 1),
      );
      assert.equal(await count(), 43);
    }));

  for (const pipeline of ["true", "false"]) {
    it(`a connection whose transaction did not end goes back to the pool closed, not inside it (query_timeout in DATABASE_URL; DATABASE_PIPELINE=${pipeline})`, async () => {
      // node-postgres's query_timeout fails a statement that waits too long but leaves it running,
      // and the ROLLBACK queued behind it times out unsent: the connection used to go back to the
      // pool inside the transaction, and the next request's statements ran in it (it saw, and
      // could commit, the update of the request that had failed).
      const d = freshDatabase("postgres");
      const url = new URL(d.env["DATABASE_URL"]!);
      url.searchParams.set("query_timeout", "300");
      const store = await openStore(loadConfig({ ...d.env, DATABASE_URL: url.toString(), DATABASE_POOL_SIZE: "1", DATABASE_PIPELINE: pipeline }).database, silent);
      const locker = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${d.env["DATABASE_SCHEMA"]}` });
      try {
        await sql`create table held (n int primary key, v text)`.execute(store.db);
        await sql`insert into held (n, v) values (1, 'before')`.execute(store.db);
        await locker.connect();
        await locker.query("begin");
        await locker.query("select * from held where n = 1 for update");
        await assert.rejects(
          store.db.transaction().execute(async (t) => {
            await sql`select 1`.execute(t);
            await sql`update held set v = 'failed request' where n = 1`.execute(t);
          }),
          /timeout/i,
        );
        await locker.query("commit"); // the update that timed out gets its row now
        await sleep(200);
        const seen = await sql<{ v: string }>`select v from held where n = 1`.execute(store.db);
        assert.deepEqual(seen.rows, [{ v: "before" }], "the next request does not run inside the failed one's transaction");
        assert.equal(
          (
            await sql<{
              open: number;
            }>`select count(*)::int as open from pg_stat_activity where state like 'idle in transaction%' and datname = current_database() and pid <> pg_backend_pid() and query like '%held%'`.execute(
              store.db,
            )
          ).rows[0]?.open,
          0,
        );
      } finally {
        await locker.end().catch(() => undefined);
        await store.close();
        await d.cleanup();
      }
    });
  }

  it("a BEGIN cancelled under it leaves nothing of its transaction: no first statement committed on its own", () =>
    withProxiedStore({ DATABASE_POOL_SIZE: "1" }, async (store) => {
      // An operator's pg_cancel_backend (or a proxy's timeout) can fail the BEGIN while the
      // connection lives. Sent as a separate query ahead of the statement, the statement then ran
      // in autocommit and stayed (seen: 5 of 1 500 such transactions half-written).
      const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(store.db)).rows[0]!.pid;
      const canceller = new pg.Client({ connectionString: testDatabaseUrl() });
      await canceller.connect();
      let stop = false;
      const cancelling = (async () => {
        while (!stop) await canceller.query("select pg_cancel_backend($1)", [pid]);
      })();
      let failed = 0;
      try {
        for (let n = 1; n <= 1000; n++) {
          await store.db
            .transaction()
            .execute(async (t) => {
              await sql`insert into pipelined (n) values (${n})`.execute(t);
              await sql`insert into pipelined (n) values (${-n})`.execute(t);
            })
            .catch(() => failed++);
        }
      } finally {
        stop = true;
        await cancelling;
        await canceller.end();
      }
      const rows = new Set((await sql<{ n: number }>`select n from pipelined`.execute(store.db)).rows.map((r) => r.n));
      const halves = Array.from({ length: 1000 }, (_, i) => i + 1).filter((n) => rows.has(n) !== rows.has(-n));
      assert.ok(failed > 0, "some transactions were cancelled");
      assert.deepEqual(halves, [], "transactions with one of their two rows");
    }));
});

describe("store [sqlite] several processes", () => {
  it("switches a new file to WAL while another process holds its write lock, waiting without blocking", async () => {
    // Regression (seen in CI): instances starting together on a new file. All but one got
    // SQLITE_BUSY at once from "journal_mode = WAL": SQLite does not wait for the write lock while
    // it holds a read lock. Here a second connection holds the write lock of the new file.
    const d = freshDatabase("sqlite");
    const config = loadConfig(d.env).database;
    assert.equal(config.kind, "sqlite");
    fs.mkdirSync(path.dirname(config.file), { recursive: true });
    const other = new BetterSqlite3(config.file);
    try {
      other.exec("BEGIN IMMEDIATE");
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      const released = sleep(300).then(() => other.exec("COMMIT"));
      const store = await openStore(config, silent);
      clearInterval(ticker);
      await released;
      assert.ok(ticks >= 10, `the event loop ran while waiting (${ticks} ticks)`);
      const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(store.db);
      assert.equal(mode.rows[0]?.journal_mode, "wal");
      await store.ping();
      await store.close();
    } finally {
      other.close();
      await d.cleanup();
    }
  });
});
