import { Migrator, type Kysely, type Migration, type MigrationProvider } from "kysely";

/**
 * Numbered migrations, applied in order by one runner at start-up (Kysely's Migrator takes a lock,
 * so several instances starting at once apply each migration once). Written with Kysely's schema
 * builder so one definition serves SQLite and PostgreSQL. Never edit a released migration: add one.
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
};

class StaticMigrationProvider implements MigrationProvider {
  getMigrations(): Promise<Record<string, Migration>> {
    return Promise.resolve(migrations);
  }
}

/**
 * Brings the database up to the newest migration. Returns the names applied by this call.
 * `schema` (PostgreSQL) must name our schema: without it Kysely takes a migration table in *any*
 * schema of the database as ours, and would skip creating its own.
 */
export async function migrateToLatest(db: Kysely<unknown>, schema?: string): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new StaticMigrationProvider(),
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error !== undefined) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`database migration ${failed?.migrationName ?? ""} failed: ${message}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
