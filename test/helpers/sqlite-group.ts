// Opens the SQLite store the environment describes and runs one group of transactions at once
// (group commit: one savepoint each in one real transaction), each writing rows to an indexed
// table; prints "done". Run as its own process so that SQLITE_TMPDIR, which SQLite reads once when
// it starts, is the directory the test watches.
import { sql } from "kysely";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { openStore } from "../../src/store/db.js";

const log = createLogger({ level: "error", format: "json", silent: true });
const store = await openStore(loadConfig(process.env).database, log);
await sql`create table if not exists grouped (id integer primary key, v text not null)`.execute(store.db);
await sql`create index if not exists grouped_v on grouped (v)`.execute(store.db);
// Rows on many pages already there (a sub-journal keeps only pages that existed before the savepoint).
await sql`with recursive s (n) as (select 1 union all select n + 1 from s where n < 2000) insert into grouped (v) select printf('%-200d', n) from s`.execute(store.db);
const members = Number(process.env["MEMBERS"] ?? 50);
await Promise.all(
  Array.from({ length: members }, (_, m) =>
    store.db.transaction().execute(async (t) => {
      // Like an order: existing pages changed (a counter, index leaves), a row added.
      for (let i = 0; i < 20; i++) await sql`update grouped set v = ${`member ${m} row ${i} `.padEnd(200, "x")} where id = ${1 + (((m * 20 + i) * 37) % 2000)}`.execute(t);
      await sql`insert into grouped (v) values (${`member ${m}`})`.execute(t);
    }),
  ),
);
const n = (await sql<{ n: number }>`select count(*) as n from grouped`.execute(store.db)).rows[0]?.n;
await store.close();
console.log(`done ${String(n)}`);
