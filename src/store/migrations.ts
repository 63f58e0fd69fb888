import { sql, type Kysely } from "kysely";

interface Migration {
  up(db: Kysely<unknown>, dialect: "sqlite" | "postgres"): Promise<void>;
}

/**
 * Numbered migrations, applied in order at start-up by `migrateToLatest`. Written with Kysely's
 * schema builder so one definition serves SQLite and PostgreSQL. Never edit a released migration:
 * add the next number.
 */
const migrations: Record<string, Migration> = {
  "0001_initial": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("sp_callbacks")
        .addColumn("idempotency_key", "text", (c) => c.primaryKey())
        .addColumn("body_hash", "text", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("attempt_id", "text", (c) => c.notNull())
        .addColumn("lease_until", "bigint", (c) => c.notNull())
        .addColumn("status", "integer")
        .addColumn("response_body", "text")
        .addColumn("order_number", "text")
        .addColumn("request_id", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("local_orders")
        .addColumn("id", "bigint", (c) => c.primaryKey())
        .addColumn("order_number", "text", (c) => c.notNull().unique())
        .addColumn("idempotency_key", "text", (c) => c.notNull().unique())
        .addColumn("source", "text", (c) => c.notNull())
        .addColumn("source_order_id", "text")
        .addColumn("customer_email", "text", (c) => c.notNull())
        .addColumn("source_customer_id", "text")
        .addColumn("platform_customer_id", "text")
        .addColumn("currency", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("subtotal", "bigint", (c) => c.notNull())
        .addColumn("shipping_total", "bigint", (c) => c.notNull())
        .addColumn("tax_total", "bigint", (c) => c.notNull())
        .addColumn("discount_total", "bigint", (c) => c.notNull())
        .addColumn("total", "bigint", (c) => c.notNull())
        .addColumn("shipping_method_code", "text")
        .addColumn("coupon_codes", "text", (c) => c.notNull())
        .addColumn("billing_address", "text")
        .addColumn("shipping_address", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("local_orders_source_order_id").on("local_orders").columns(["source_order_id"]).execute();

      await db.schema
        .createTable("local_order_items")
        .addColumn("id", "bigint", (c) => c.primaryKey())
        .addColumn("order_id", "bigint", (c) => c.notNull().references("local_orders.id"))
        .addColumn("line_no", "integer", (c) => c.notNull())
        .addColumn("line_ref", "text", (c) => c.notNull())
        .addColumn("sku", "text", (c) => c.notNull())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("description", "text")
        .addColumn("quantity", "integer", (c) => c.notNull())
        .addColumn("requires_shipping", "integer", (c) => c.notNull())
        .addColumn("unit_price", "bigint", (c) => c.notNull())
        .addColumn("shipping_total", "bigint", (c) => c.notNull())
        .addColumn("tax_total", "bigint", (c) => c.notNull())
        .addColumn("discount_total", "bigint", (c) => c.notNull())
        .addColumn("line_total", "bigint", (c) => c.notNull())
        .addColumn("subscription_id", "text")
        .execute();
      await db.schema.createIndex("local_order_items_order_id").on("local_order_items").columns(["order_id", "line_no"]).execute();

      await db.schema
        .createTable("local_stock")
        .addColumn("sku", "text", (c) => c.primaryKey())
        .addColumn("available", "bigint", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("counters")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("value", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  "0002_jobs_and_recharge": {
    async up(db: Kysely<unknown>) {
      // One durable queue: Recharge webhook events (the inbox) and write-back calls (the outbox).
      await db.schema
        .createTable("jobs")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("topic", "text")
        .addColumn("dedupe_key", "text", (c) => c.unique())
        .addColumn("body_hash", "text", (c) => c.unique())
        .addColumn("resource_id", "text")
        .addColumn("api_version", "text")
        .addColumn("body", "text")
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull())
        .addColumn("max_attempts", "integer", (c) => c.notNull())
        .addColumn("run_at", "bigint", (c) => c.notNull())
        .addColumn("locked_by", "text")
        .addColumn("lease_until", "bigint")
        .addColumn("last_error", "text")
        .addColumn("outcome", "text")
        .addColumn("correlation_id", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("jobs_due").on("jobs").columns(["state", "run_at"]).execute();
      await db.schema.createIndex("jobs_listing").on("jobs").columns(["created_at", "id"]).execute();
      await db.schema.createIndex("jobs_resource").on("jobs").columns(["resource_id"]).execute();

      await db.schema
        .createTable("recharge_orders")
        .addColumn("recharge_order_id", "text", (c) => c.primaryKey())
        .addColumn("platform", "text", (c) => c.notNull())
        .addColumn("platform_order_id", "text", (c) => c.notNull())
        .addColumn("order_number", "text", (c) => c.notNull())
        .addColumn("charge_id", "text")
        .addColumn("is_prepaid", "integer", (c) => c.notNull())
        .addColumn("api_version", "text", (c) => c.notNull())
        .addColumn("event_id", "text", (c) => c.notNull())
        .addColumn("placed_at", "bigint", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("local_cleared_carts")
        .addColumn("cart_id", "text", (c) => c.primaryKey())
        .addColumn("source", "text", (c) => c.notNull())
        .addColumn("customer_email", "text")
        .addColumn("cleared_at", "bigint", (c) => c.notNull())
        .execute();

      // What the source said beyond prices and lines (shipping lines, discounts, note, attributes).
      await db.schema.alterTable("local_orders").addColumn("details", "text").execute();
      await db.schema.alterTable("local_order_items").addColumn("properties", "text").execute();

      // Shared rate limits (GCRA): the theoretical arrival time of the next request, per name.
      await db.schema
        .createTable("rate_limits")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("tat", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  "0003_order_id_sequences": {
    async up(db: Kysely<unknown>, dialect: "sqlite" | "postgres") {
      // PostgreSQL: local order and item ids come from sequences, which take no row lock (a
      // counter row serialised every order transaction from its bump to its commit). They start
      // where the counters are, on the first start after this migration (the local platform's init).
      // SQLite has one writer at a time anyway and keeps the counters.
      if (dialect !== "postgres") return;
      await sql`create sequence local_order_ids as bigint`.execute(db);
      await sql`create sequence local_order_item_ids as bigint`.execute(db);
    },
  },
  "0004_job_lanes": {
    async up(db: Kysely<unknown>) {
      // Lanes: inbox events and write-backs are claimed by loops of their own, each through its own
      // index range; a lease that ran out is requeued apart from claims (requeueExpired).
      await db.schema
        .alterTable("jobs")
        .addColumn("lane", "text", (c) => c.notNull().defaultTo("inbox"))
        .execute();
      await sql`update jobs set lane = 'writeback' where kind in ('recharge.order_writeback', 'recharge.charge_writeback')`.execute(db);
      await db.schema.createIndex("jobs_lane_due").on("jobs").columns(["lane", "state", "run_at"]).execute();
    },
  },
  "0005_meta": {
    async up(db: Kysely<unknown>) {
      // The database's id lives here: on SQLite, DATA_DIR/database-id holds it too, so that a start
      // on a new, empty file where this database was (deleted, moved) is refused (src/store/sqlite-file.ts).
      await db.schema
        .createTable("orderbridge_meta")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .execute();
    },
  },
  "0006_retention": {
    async up(db: Kysely<unknown>) {
      // Pruning finds what finished before the cutoff through these, in short batches, without
      // scanning; the queue gauges count the unfinished states through jobs_state_updated too.
      await db.schema.createIndex("jobs_state_updated").on("jobs").columns(["state", "updated_at"]).execute();
      await db.schema.createIndex("sp_callbacks_state_updated").on("sp_callbacks").columns(["state", "updated_at"]).execute();
    },
  },
  "0010_trace_context": {
    async up(db: Kysely<unknown>) {
      // The W3C traceparent of the span that queued a job (tracing on), so that each run of it is
      // linked to the request that caused it.
      await db.schema.alterTable("jobs").addColumn("trace_context", "text").execute();
    },
  },
  "0011_recharge_sweep": {
    async up(db: Kysely<unknown>) {
      // One row per periodic Recharge task ("orders": the sweep, "webhooks": the subscription check):
      // who holds it (one instance at a time, until lease_until), and the sweep's cursor, so it
      // survives restarts and is shared by every instance (src/store/recharge-sweep.ts).
      await db.schema
        .createTable("recharge_sweep_state")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("holder", "text")
        .addColumn("lease_until", "bigint")
        .addColumn("watermark", "bigint")
        .addColumn("run_from", "bigint")
        .addColumn("run_until", "bigint")
        .addColumn("page_cursor", "text")
        .addColumn("last_finished_at", "bigint")
        .addColumn("last_result", "text")
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  "0012_job_attempts": {
    async up(db: Kysely<unknown>) {
      // Every run of a job, not only its last error: the admin API's and the console's attempt
      // history (src/store/job-attempts.ts). Pruned with the jobs (src/store/retention.ts).
      await db.schema
        .createTable("job_attempts")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("job_id", "text", (c) => c.notNull())
        .addColumn("attempt", "integer", (c) => c.notNull())
        .addColumn("outcome", "text", (c) => c.notNull())
        .addColumn("detail", "text")
        .addColumn("remote_status", "integer")
        .addColumn("next_run_at", "bigint")
        .addColumn("worker_id", "text", (c) => c.notNull())
        .addColumn("started_at", "bigint", (c) => c.notNull())
        .addColumn("ended_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("job_attempts_job").on("job_attempts").columns(["job_id", "started_at"]).execute();
      await db.schema.createIndex("job_attempts_ended").on("job_attempts").column("ended_at").execute();
    },
  },
  "0013_callback_log": {
    async up(db: Kysely<unknown>) {
      // Every Subscribe Pro callback whatever the platform (src/store/callback-log.ts): the admin
      // API's and the console's callback list. Pruned by received_at (src/store/retention.ts).
      await db.schema
        .createTable("sp_callback_log")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("received_at", "bigint", (c) => c.notNull())
        .addColumn("request_id", "text", (c) => c.notNull())
        .addColumn("authenticated", "integer", (c) => c.notNull())
        .addColumn("sales_order_token", "text")
        .addColumn("customer_email", "text")
        .addColumn("status", "integer", (c) => c.notNull())
        .addColumn("order_number", "text")
        .addColumn("error_code", "text")
        .addColumn("reasons", "text")
        .addColumn("replayed", "integer", (c) => c.notNull())
        .addColumn("duration_ms", "real", (c) => c.notNull())
        .addColumn("client_address", "text")
        .addColumn("body", "text")
        .addColumn("body_bytes", "integer", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("sp_callback_log_received").on("sp_callback_log").columns(["received_at", "id"]).execute();
      await db.schema.createIndex("sp_callback_log_token").on("sp_callback_log").column("sales_order_token").execute();
      await db.schema.createIndex("sp_callback_log_order").on("sp_callback_log").column("order_number").execute();
      await db.schema.createIndex("sp_callback_log_refused").on("sp_callback_log").columns(["authenticated", "received_at"]).execute();
    },
  },
  "0014_console_actions": {
    async up(db: Kysely<unknown>) {
      // What operators did in the console, and from which session (src/store/console.ts). Never pruned.
      await db.schema
        .createTable("console_actions")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("session_id", "text", (c) => c.notNull())
        .addColumn("action", "text", (c) => c.notNull())
        .addColumn("target", "text")
        .addColumn("detail", "text")
        .addColumn("client_address", "text")
        .execute();
      await db.schema.createIndex("console_actions_at").on("console_actions").columns(["at", "id"]).execute();
      await db.schema.createIndex("console_actions_session").on("console_actions").columns(["session_id", "action"]).execute();
    },
  },
  "0015_recharge_inbox": {
    async up(db: Kysely<unknown>, dialect: "sqlite" | "postgres") {
      // The Recharge inbox becomes the receiver's own table (src/store/recharge-inbox.ts): a
      // received webhook's topic, body and duplicate keys move out of `jobs`, which keeps only what
      // a queue needs. A handled event is processed by the job of the same id (its payload names
      // the event); an ignored one (a topic not handled, the empty test body) was a job that never
      // ran and is now an inbox row only.
      await db.schema
        .createTable("recharge_inbox")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("source", "text", (c) => c.notNull())
        .addColumn("topic", "text")
        .addColumn("topic_source", "text")
        .addColumn("dedupe_key", "text", (c) => c.unique())
        .addColumn("body_hash", "text", (c) => c.unique())
        .addColumn("resource_id", "text")
        .addColumn("api_version", "text")
        .addColumn("body", "text")
        .addColumn("ignored_reason", "text")
        .addColumn("correlation_id", "text")
        .addColumn("received_at", "bigint", (c) => c.notNull())
        .execute();
      // The events list's ignored part, newest first; pruning finds old events through received_at.
      await sql`create index recharge_inbox_ignored on recharge_inbox (received_at, id) where ignored_reason is not null`.execute(db);
      await db.schema.createIndex("recharge_inbox_received").on("recharge_inbox").column("received_at").execute();

      const topicSource = dialect === "postgres" ? sql`(payload::json ->> 'topicSource')` : sql`json_extract(payload, '$.topicSource')`;
      const source = dialect === "postgres" ? sql`coalesce(payload::json ->> 'source', 'webhook')` : sql`coalesce(json_extract(payload, '$.source'), 'webhook')`;
      await sql`
        insert into recharge_inbox (id, source, topic, topic_source, dedupe_key, body_hash, resource_id, api_version, body, ignored_reason, correlation_id, received_at)
        select id, ${source}, topic, ${topicSource}, dedupe_key, body_hash, resource_id, api_version, body,
               case when state = 'ignored' then coalesce(outcome, 'ignored') end, correlation_id, created_at
        from jobs where kind = 'recharge.webhook'`.execute(db);
      await sql`delete from jobs where kind = 'recharge.webhook' and state = 'ignored'`.execute(db);
      // The job names its event (the ids are evt_ and base-36/hex: nothing to escape); the inbox holds the keys.
      await sql`update jobs set payload = '{"eventId":"' || id || '"}', dedupe_key = null where kind = 'recharge.webhook'`.execute(db);

      if (dialect === "postgres") {
        await sql`alter table jobs drop column topic, drop column body_hash, drop column api_version, drop column body`.execute(db);
        return;
      }
      // SQLite cannot drop a UNIQUE column (body_hash): the table is rebuilt with the same rows and indexes.
      await db.schema
        .createTable("jobs_rebuilt")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("dedupe_key", "text", (c) => c.unique())
        .addColumn("resource_id", "text")
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull())
        .addColumn("max_attempts", "integer", (c) => c.notNull())
        .addColumn("run_at", "bigint", (c) => c.notNull())
        .addColumn("locked_by", "text")
        .addColumn("lease_until", "bigint")
        .addColumn("last_error", "text")
        .addColumn("outcome", "text")
        .addColumn("correlation_id", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addColumn("lane", "text", (c) => c.notNull().defaultTo("inbox"))
        .addColumn("trace_context", "text")
        .execute();
      const columns = sql.raw(
        "id, kind, dedupe_key, resource_id, payload, state, attempts, max_attempts, run_at, locked_by, lease_until, last_error, outcome, correlation_id, created_at, updated_at, lane, trace_context",
      );
      await sql`insert into jobs_rebuilt (${columns}) select ${columns} from jobs`.execute(db);
      await sql`drop table jobs`.execute(db);
      await sql`alter table jobs_rebuilt rename to jobs`.execute(db);
      await db.schema.createIndex("jobs_due").on("jobs").columns(["state", "run_at"]).execute();
      await db.schema.createIndex("jobs_listing").on("jobs").columns(["created_at", "id"]).execute();
      await db.schema.createIndex("jobs_resource").on("jobs").columns(["resource_id"]).execute();
      await db.schema.createIndex("jobs_lane_due").on("jobs").columns(["lane", "state", "run_at"]).execute();
      await db.schema.createIndex("jobs_state_updated").on("jobs").columns(["state", "updated_at"]).execute();
    },
  },
  "0016_sign_in_refusals": {
    async up(db: Kysely<unknown>) {
      // The console's sign-in throttle counts an address's refused tokens of the last minute in
      // the database, so that every instance sharing it counts the same (src/store/console.ts).
      await sql`create index console_actions_sign_in_refused on console_actions (client_address, at) where action = 'sign-in-refused'`.execute(db);
    },
  },
  "0017_sqlite_row_ids": {
    async up(db: Kysely<unknown>, dialect: "sqlite" | "postgres") {
      // SQLite only: fewer B-trees for every local order to write. A `bigint primary key` is not
      // SQLite's row id, so it was an index of its own beside the table; `integer primary key` is
      // the row id itself (local_orders, local_order_items). The small text-keyed tables every
      // order touches (counters, local_stock) become WITHOUT ROWID: the primary key's index is the
      // table. Three to four pages fewer in the write-ahead log per order. The tables are rebuilt
      // (a copy of every row, in the migration's transaction). PostgreSQL stores tables otherwise:
      // nothing to do there.
      if (dialect !== "sqlite") return;
      // The old tables are renamed first, so that nothing references a table while it is dropped
      // (foreign keys are on): the items' reference follows the rename to local_orders_old.
      await sql`alter table local_orders rename to local_orders_old`.execute(db);
      await sql`alter table local_order_items rename to local_order_items_old`.execute(db);
      await sql`alter table counters rename to counters_old`.execute(db);
      await sql`alter table local_stock rename to local_stock_old`.execute(db);
      await db.schema
        .createTable("local_orders")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("order_number", "text", (c) => c.notNull().unique())
        .addColumn("idempotency_key", "text", (c) => c.notNull().unique())
        .addColumn("source", "text", (c) => c.notNull())
        .addColumn("source_order_id", "text")
        .addColumn("customer_email", "text", (c) => c.notNull())
        .addColumn("source_customer_id", "text")
        .addColumn("platform_customer_id", "text")
        .addColumn("currency", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("subtotal", "bigint", (c) => c.notNull())
        .addColumn("shipping_total", "bigint", (c) => c.notNull())
        .addColumn("tax_total", "bigint", (c) => c.notNull())
        .addColumn("discount_total", "bigint", (c) => c.notNull())
        .addColumn("total", "bigint", (c) => c.notNull())
        .addColumn("shipping_method_code", "text")
        .addColumn("coupon_codes", "text", (c) => c.notNull())
        .addColumn("billing_address", "text")
        .addColumn("shipping_address", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("details", "text")
        .execute();
      await db.schema
        .createTable("local_order_items")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("order_id", "bigint", (c) => c.notNull().references("local_orders.id"))
        .addColumn("line_no", "integer", (c) => c.notNull())
        .addColumn("line_ref", "text", (c) => c.notNull())
        .addColumn("sku", "text", (c) => c.notNull())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("description", "text")
        .addColumn("quantity", "integer", (c) => c.notNull())
        .addColumn("requires_shipping", "integer", (c) => c.notNull())
        .addColumn("unit_price", "bigint", (c) => c.notNull())
        .addColumn("shipping_total", "bigint", (c) => c.notNull())
        .addColumn("tax_total", "bigint", (c) => c.notNull())
        .addColumn("discount_total", "bigint", (c) => c.notNull())
        .addColumn("line_total", "bigint", (c) => c.notNull())
        .addColumn("subscription_id", "text")
        .addColumn("properties", "text")
        .execute();
      await db.schema
        .createTable("counters")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("value", "bigint", (c) => c.notNull())
        .modifyEnd(sql`without rowid`)
        .execute();
      await db.schema
        .createTable("local_stock")
        .addColumn("sku", "text", (c) => c.primaryKey())
        .addColumn("available", "bigint", (c) => c.notNull())
        .modifyEnd(sql`without rowid`)
        .execute();
      await sql`insert into local_orders select * from local_orders_old`.execute(db);
      await sql`insert into local_order_items select * from local_order_items_old`.execute(db);
      // A rowid table let a text primary key be NULL; WITHOUT ROWID refuses it. No query reaches
      // such a row (they look keys up with =), so it is left behind rather than stop the start.
      await sql`insert into counters select * from counters_old where name is not null`.execute(db);
      await sql`insert into local_stock select * from local_stock_old where sku is not null`.execute(db);
      for (const table of ["local_order_items", "local_orders", "counters", "local_stock"]) {
        await sql`drop table ${sql.table(`${table}_old`)}`.execute(db);
      }
      await db.schema.createIndex("local_orders_source_order_id").on("local_orders").columns(["source_order_id"]).execute();
      await db.schema.createIndex("local_order_items_order_id").on("local_order_items").columns(["order_id", "line_no"]).execute();
    },
  },
};

/**
 * Applies the pending migrations in one transaction, recording each in `orderbridge_migrations`,
 * and returns the names applied. Several instances starting together apply each migration once:
 * PostgreSQL serialises them with an advisory lock per schema, SQLite with BEGIN IMMEDIATE (which
 * waits, with the event loop free, for the other process). A failed migration rolls back whole.
 * (Kysely's own Migrator was replaced: it introspects every schema of the database, took another
 * schema's tables for its own, and failed when any schema was dropped meanwhile.)
 */
export async function migrateToLatest(db: Kysely<unknown>, dialect: "sqlite" | "postgres"): Promise<string[]> {
  const run = async (tx: Kysely<unknown>): Promise<string[]> => {
    if (dialect === "postgres") {
      await sql`select pg_advisory_xact_lock(hashtext(current_schema() || '.orderbridge_migrations'))`.execute(tx);
    }
    await sql`create table if not exists orderbridge_migrations (name text primary key, applied_at bigint not null)`.execute(tx);
    const done = new Set((await sql<{ name: string }>`select name from orderbridge_migrations`.execute(tx)).rows.map((r) => r.name));
    const applied: string[] = [];
    for (const name of Object.keys(migrations).sort()) {
      if (done.has(name)) continue;
      try {
        await (migrations[name] as Migration).up(tx, dialect);
      } catch (e) {
        throw new Error(`database migration ${name} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      await sql`insert into orderbridge_migrations (name, applied_at) values (${name}, ${Date.now()})`.execute(tx);
      applied.push(name);
    }
    return applied;
  };
  // SQLite transactions begin IMMEDIATE (src/store/sqlite-group-commit.ts): the lock is taken up front.
  return db.transaction().execute(run);
}
