// Retention: /metrics and the order path with a million finished rows, and while they are pruned.

import fs from "node:fs";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { openStore } from "../../src/store/db.js";
import { DAY_MS } from "../../src/store/retention.js";
import { fmtSec } from "../lib/format.js";
import { describe, measure, median, spOrderRequests, type Measurement } from "../lib/load.js";
import { startServer, stopServer, type Server } from "../lib/processes.js";
import type { Results } from "../lib/results.js";
import { log, RETENTION_PRUNE_DAYS, RETENTION_ROWS, RETENTION_SCRAPES, RETENTION_SPREAD_DAYS, ROUNDS } from "../lib/settings.js";
import { dataDir, orderbridgeEnv, smokeTest } from "../lib/targets.js";

export interface ScrapeTimes {
  p50: number;
  p99: number;
}

export interface RetentionResult {
  rows: number;
  seedMs: number;
  dbMb: number;
  empty: { scrapes: ScrapeTimes[]; load: Measurement[] };
  seeded: { scrapes: ScrapeTimes[]; load: Measurement[] };
  /** The seeded database again, with RETENTION_DAYS=7: pruning runs during the measured load. */
  pruning: { scrapes: ScrapeTimes; load: Measurement; prunable: number; pruned: number; runMs: number } | undefined;
}

/** `count` sequential GET /metrics, each timed from request to the end of the body (ms). */
async function scrapeTimes(s: Server, count = RETENTION_SCRAPES): Promise<ScrapeTimes> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const res = await fetch(`${s.url}/metrics`);
    await res.text();
    if (res.status !== 200) throw new Error(`${s.name}: GET /metrics answered ${res.status}`);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const at = (q: number): number => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)] as number;
  return { p50: median(times), p99: at(0.99) };
}

/**
 * Creates the database (migrated by orderbridge's own code) and seeds `rows` finished jobs (every
 * second one a Recharge event with its ≈ 3.7 KB body in the inbox) and `rows` placed callbacks (≈ 1.1 KB stored answer
 * each), finished evenly over the last RETENTION_SPREAD_DAYS days, with INSERT … SELECT over a
 * recursive CTE in chunks (seeding is set-up, not measured: synchronous=OFF).
 */
async function seedFinishedRows(dir: string, rows: number): Promise<void> {
  const store = await openStore(loadConfig({ DATA_DIR: dir }).database, createLogger({ level: "error", format: "json", silent: true }));
  await store.close();
  const db = new BetterSqlite3(path.join(dir, "orderbridge.sqlite"));
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = OFF");
    const now = Date.now();
    const spread = RETENTION_SPREAD_DAYS * DAY_MS;
    const jobBody = `{"order":{"id":0,"status":"success","email":"jane@example.com","shipping_address":{"first_name":"Jane","address1":"100 Main St"},"filler":"${"x".repeat(2900)}"}}`;
    const answer = `{"orderNumber":"SEED","orderDetails":{"customerEmail":"jane@example.com","shippingAddress":{"firstName":"Jane"},"filler":"${"x".repeat(950)}"}}`;
    const series = "with recursive s(i) as (select ? union all select i + 1 from s where i < ?)";
    const at = `(? - (i * ?) / ?)`; // finished evenly over the spread, newest first
    // Every second row a Recharge event (its inbox row with the body, and its job; every 97th of
    // those ignored: no job), the others write-backs.
    const events = db.prepare(
      `${series} insert into recharge_inbox (id, source, topic, topic_source, dedupe_key, body_hash, resource_id, api_version, body, ignored_reason,
         correlation_id, received_at)
       select 'evt_seed_' || i, 'webhook', 'order/created', 'path', 'seed:' || i, 'seed:' || i, cast(i as text), '2021-11', ?,
         case when i % 97 = 0 then 'topic order/created is not handled' end, 'req-' || i, ${at} from s where i % 2 = 0`,
    );
    const jobs = db.prepare(
      `${series} insert into jobs (id, kind, lane, dedupe_key, resource_id, payload, state, attempts, max_attempts, run_at, locked_by, lease_until,
         last_error, outcome, correlation_id, created_at, updated_at)
       select case when i % 2 = 0 then 'evt_seed_' else 'job_seed_' end || i,
         case when i % 2 = 0 then 'recharge.webhook' else 'recharge.order_writeback' end,
         case when i % 2 = 0 then 'inbox' else 'writeback' end,
         case when i % 2 = 0 then null else 'seed:' || i end, cast(i as text),
         case when i % 2 = 0 then '{"eventId":"evt_seed_' || i || '"}'
           else '{"rechargeOrderId":"0","apiVersion":"2021-11","externalOrderId":"100271","externalOrderNumber":"OB-100271"}' end,
         case when i % 50 = 0 then 'skipped' else 'done' end, 1, 20, ${at}, null, null, null,
         'placed order OB-' || i, 'req-' || i, ${at}, ${at} from s where not (i % 2 = 0 and i % 97 = 0)`,
    );
    const callbacks = db.prepare(
      `${series} insert into sp_callbacks (idempotency_key, body_hash, state, attempt_id, lease_until, status, response_body, order_number,
         request_id, created_at, updated_at)
       select 'sp:seed-' || i, lower(hex(randomblob(32))), 'done', 'att-' || i, ${at}, 201, ?, 'SEED-' || i, 'req-' || i, ${at}, ${at} from s`,
    );
    const chunk = 50_000;
    for (let from = 1; from <= rows; from += chunk) {
      const to = Math.min(rows, from + chunk - 1);
      const time = [now, spread, rows];
      db.transaction(() => {
        events.run(from, to, jobBody, ...time);
        jobs.run(from, to, ...time, ...time, ...time);
        callbacks.run(from, to, ...time, answer, ...time, ...time);
      })();
    }
    db.pragma("wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
  }
}

function countRows(dir: string, sqlText: string, ...params: unknown[]): number {
  const db = new BetterSqlite3(path.join(dir, "orderbridge.sqlite"), { readonly: true });
  try {
    return Number(
      (db
        .prepare(sqlText)
        .pluck()
        .get(...params) as number | bigint) ?? 0,
    );
  } finally {
    db.close();
  }
}

export async function runRetention(results: Results): Promise<void> {
  const emptyDir = dataDir("retention-empty");
  const seededDir = dataDir("retention-seeded");
  log(`retention: seeding ${RETENTION_ROWS} finished jobs and ${RETENTION_ROWS} placed callbacks`);
  const t0 = Date.now();
  await seedFinishedRows(seededDir, RETENTION_ROWS);
  const seedMs = Date.now() - t0;
  const dbMb = fs.statSync(path.join(seededDir, "orderbridge.sqlite")).size / 1024 ** 2;
  log(`retention: seeded in ${fmtSec(seedMs)} (database ${dbMb.toFixed(0)} MB)`);
  const r: RetentionResult = { rows: RETENTION_ROWS, seedMs, dbMb, empty: { scrapes: [], load: [] }, seeded: { scrapes: [], load: [] }, pruning: undefined };
  results.retention = r;
  const env = (dir: string, extra: Record<string, string> = {}) => orderbridgeEnv({ DATA_DIR: dir, SQLITE_SYNCHRONOUS: "FULL", ...extra });
  let empty: Server | undefined;
  let seeded: Server | undefined;
  try {
    empty = await startServer("ob-retention-empty", ["dist/main.js"], env(emptyDir));
    seeded = await startServer("ob-retention-seeded", ["dist/main.js"], env(seededDir));
    await smokeTest(empty);
    await smokeTest(seeded);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, s, into] of [
        ["empty", empty, r.empty],
        ["seeded", seeded, r.seeded],
      ] as const) {
        const scrapes = await scrapeTimes(s);
        into.scrapes.push(scrapes);
        const m = await measure([s], spOrderRequests);
        into.load.push(m);
        log(`round ${round}/${ROUNDS} retention ${name.padEnd(7)} /metrics p50 ${scrapes.p50.toFixed(1)} ms, p99 ${scrapes.p99.toFixed(1)} ms; ${describe(m)}`);
      }
    }
  } finally {
    await stopServer(empty);
    await stopServer(seeded);
  }

  // The same seeded database with a retention shorter than most of its rows' age: the pruner starts
  // one second after start-up and is still deleting while the load is measured.
  const cutoff = Date.now() - RETENTION_PRUNE_DAYS * DAY_MS;
  const finishedBefore = (): number =>
    countRows(seededDir, "select count(*) from jobs where state in ('done', 'skipped') and updated_at < ?", cutoff) +
    countRows(seededDir, "select count(*) from recharge_inbox where received_at < ?", cutoff) +
    countRows(seededDir, "select count(*) from sp_callbacks where state = 'done' and updated_at < ?", cutoff);
  const prunable = finishedBefore();
  let pruner: Server | undefined;
  try {
    const started = Date.now();
    pruner = await startServer("ob-retention-pruning", ["dist/main.js"], env(seededDir, { RETENTION_DAYS: String(RETENTION_PRUNE_DAYS), PRUNE_INTERVAL_MS: "1000" }));
    const load = await measure([pruner], spOrderRequests);
    const scrapes = await scrapeTimes(pruner);
    await stopServer(pruner);
    const runMs = Date.now() - started;
    const pruned = prunable - finishedBefore();
    r.pruning = { scrapes, load, prunable, pruned, runMs };
    log(`retention pruning: ${pruned} of ${prunable} prunable rows pruned in the ${fmtSec(runMs)} it ran; /metrics p50 ${scrapes.p50.toFixed(1)} ms; ${describe(load)}`);
  } finally {
    await stopServer(pruner);
  }
}
