// PostgreSQL: whether it answers, its version, and the schemas the run creates (dropped at the end).

import pg from "pg";
import { DATABASE_URL, log, RUN_ID } from "./settings.js";

const schemas: string[] = [];

export async function postgresSkipReason(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query("select 1");
    return undefined;
  } catch (e) {
    return `PostgreSQL unreachable at ${DATABASE_URL} (${(e as Error).message})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function postgresVersion(): Promise<string> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    const r = await client.query<{ server_version: string }>("show server_version");
    return r.rows[0]?.server_version ?? "?";
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function newSchema(suffix: string): string {
  const name = `ob_bench_${RUN_ID}_${suffix}`;
  schemas.push(name);
  return name;
}

export async function dropSchemas(): Promise<void> {
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    for (const s of schemas.splice(0)) {
      if (!/^ob_bench_[a-z0-9_]+$/.test(s)) continue;
      await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      log(`dropped schema ${s}`);
    }
  } catch (e) {
    log(`could not drop schema(s) ${schemas.join(", ")}: ${(e as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
