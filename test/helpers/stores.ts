import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";

export type StoreKind = "sqlite" | "postgres";

export function testDatabaseUrl(): string {
  return process.env["TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
}

let probe: Promise<string | undefined> | undefined;

/** undefined when PostgreSQL answers; otherwise why the PostgreSQL pass is skipped. */
export function postgresSkipReason(): Promise<string | undefined> {
  probe ??= (async () => {
    if (process.env["TEST_POSTGRES"] === "0") return "TEST_POSTGRES=0";
    const client = new pg.Client({ connectionString: testDatabaseUrl(), connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.query("select 1");
      return undefined;
    } catch (e) {
      return `no PostgreSQL at ${testDatabaseUrl()} (${(e as Error).message})`;
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return probe;
}

/** The stores every integration suite runs against, with the reason when one is skipped. */
export async function storeKinds(): Promise<{ kind: StoreKind; skip: string | false }[]> {
  const reason = await postgresSkipReason();
  return [
    { kind: "sqlite", skip: false },
    { kind: "postgres", skip: reason ?? false },
  ];
}

/**
 * A fresh, empty database of the given kind: environment variables for loadConfig, and a cleanup.
 * SQLite gets its own temp DATA_DIR; PostgreSQL its own schema in the test database.
 */
export function freshDatabase(kind: StoreKind): { env: Record<string, string>; dataDir: string; cleanup: () => Promise<void> } {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-test-"));
  if (kind === "sqlite") {
    return { env: { DATA_DIR: dataDir }, dataDir, cleanup: async () => fs.rmSync(dataDir, { recursive: true, force: true }) };
  }
  const schema = `ob_test_${randomBytes(6).toString("hex")}`;
  return {
    env: { DATA_DIR: dataDir, DATABASE_URL: testDatabaseUrl(), DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: "5" },
    dataDir,
    cleanup: async () => {
      fs.rmSync(dataDir, { recursive: true, force: true });
      const client = new pg.Client({ connectionString: testDatabaseUrl() });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  };
}
