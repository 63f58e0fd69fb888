import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "kysely";
import type { Logger } from "../logger.js";
import { dialectOf, kx, type Tx } from "./handle.js";

/**
 * Retention (RETENTION_DAYS): what finished longer ago than that is pruned, in short batches.
 *
 * - jobs: finished inbox events' processing and write-backs (done, skipped) are deleted. Dead
 *   letters are kept until replayed (then they finish and age like the rest); pending and running
 *   never go.
 * - recharge_inbox: an ignored event goes when it was received before the cutoff; a processed one
 *   when its job is gone (with it, its duplicate keys). A Recharge re-delivery of a pruned event is
 *   accepted as new and places nothing: recharge_orders (never pruned) knows the order.
 * - sp_callbacks: retryable rows (a 409 or 503 answer, nothing placed) are deleted; the next request
 *   with the key starts afresh, as it would anyway. A placed order's row (done) keeps its key, body
 *   hash, status and order number but loses its stored answer (it repeats the customer's name and
 *   addresses): it becomes `pruned`. A retry with the same body then goes to the platform again
 *   under the same key, and the platform's idempotency answers with the order it placed (the local
 *   platform's unique key on local_orders; Shopify's tag lookup; the HTTP platform's webhook-id),
 *   never a second one; another body is refused with 409 as before. uncertain and processing rows
 *   are kept whole: an attempt in flight or one whose process died, they are the only record that
 *   an order may exist on a remote platform.
 * - local_orders, local_order_items, recharge_orders and local_cleared_carts are never pruned: they
 *   are the merchant's orders and the keys that stop an order being placed twice.
 *
 * Every statement touches at most `batchSize` rows, found through the (state, updated_at) indexes,
 * and the pruner pauses between batches at least as long as the batch took, so a SQLite database's
 * one writer spends at most about half its time pruning and the order paths keep their turns.
 * Several instances pruning at once is harmless: on PostgreSQL each batch skips rows another holds
 * (FOR UPDATE SKIP LOCKED), SQLite runs one statement at a time, and a batch's rows are
 * chosen and changed by one statement.
 */

export const DAY_MS = 86_400_000;
/**
 * The shortest retention accepted: a placed callback's stored answer must outlive any retry
 * Subscribe Pro makes. Subscribe Pro documents no automatic retry schedule; its retry flows are
 * manual (a merchant sets a failed subscription's next order date, or presses "Place Order", after
 * the failure e-mail), so a retry can come days after the order. A week covers that with room, and
 * Recharge's own redelivery window (20 tries over 48 hours) many times over. A retry after the
 * answer was pruned still never creates a second order (see above); it is answered through the
 * platform rather than byte for byte from the store.
 */
export const MIN_RETENTION_DAYS = 7;
/**
 * Rows per statement. SQLite's: a statement runs on the event loop (better-sqlite3 is synchronous)
 * and holds the one write lock; 200 finished jobs (≈ 3.7 KB each) take ≈ 2 ms here, 1 000 take
 * 20–50 ms (each such batch also fills the log past SQLite's checkpoint threshold).
 */
export const PRUNE_BATCH_SIZE = { sqlite: 200, postgres: 1000 } as const;
/** The least pause between two batches (more when a batch took longer). */
const MIN_PAUSE_MS = 10;

export const PRUNED_JOB_STATES = ["done", "skipped"] as const;
type PrunedJobState = (typeof PRUNED_JOB_STATES)[number];

export interface PruneResult {
  /** Finished before this time (epoch ms). */
  cutoff: number;
  dryRun: boolean;
  jobs: { deleted: number } & Record<PrunedJobState, number>;
  spCallbacks: {
    /** retryable rows deleted. */
    deleted: number;
    /** done rows whose stored answer was dropped (now `pruned`). */
    answersDropped: number;
  };
  /** Recharge inbox events: ignored ones received before the cutoff, processed ones whose job is gone. */
  rechargeInbox: { deleted: number; ignored: number; processed: number };
  /** Runs of jobs that are gone (pruned above, or before): a job's history goes with it; a dead letter's stays. */
  jobAttempts: { deleted: number };
  /** Callback log entries received before the cutoff. */
  callbackLog: { deleted: number };
  /** Refused console sign-ins (anyone's wrong tokens) before the cutoff; operators' own actions are kept. */
  consoleActions: { deleted: number };
}

export interface PruneOptions {
  retentionDays: number;
  now: number;
  /** Count what would go instead (through the same indexes), changing nothing. */
  dryRun?: boolean;
  batchSize?: number;
  /** Stops between batches (the service closing). */
  signal?: AbortSignal;
  /** Told every batch's row count (logs, tests). */
  onBatch?: (step: PruneStep, rows: number) => void;
}

export type PruneStep =
  | `jobs.${PrunedJobState}`
  | "recharge_inbox.ignored"
  | "recharge_inbox.processed"
  | "sp_callbacks.retryable"
  | "sp_callbacks.done"
  | "job_attempts"
  | "sp_callback_log"
  | "console_actions.sign_in_refused";

/** The time before which finished rows are pruned. Pure. */
export function pruneCutoff(now: number, retentionDays: number): number {
  return now - retentionDays * DAY_MS;
}

/** Prunes (or, dry, counts) what finished before the retention; see the module comment. */
export async function prune(tx: Tx, o: PruneOptions): Promise<PruneResult> {
  const db = kx(tx);
  const dialect = dialectOf(tx);
  if (!Number.isInteger(o.retentionDays) || o.retentionDays < MIN_RETENTION_DAYS) {
    throw new Error(`retention must be at least ${MIN_RETENTION_DAYS} days (got ${o.retentionDays})`);
  }
  const cutoff = pruneCutoff(o.now, o.retentionDays);
  const batchSize = o.batchSize ?? PRUNE_BATCH_SIZE[dialect];
  const dryRun = o.dryRun === true;
  const lockBatch = dialect === "postgres";
  const result: PruneResult = {
    cutoff,
    dryRun,
    jobs: { deleted: 0, done: 0, skipped: 0 },
    rechargeInbox: { deleted: 0, ignored: 0, processed: 0 },
    spCallbacks: { deleted: 0, answersDropped: 0 },
    jobAttempts: { deleted: 0 },
    callbackLog: { deleted: 0 },
    consoleActions: { deleted: 0 },
  };

  const jobsBatch = (state: PrunedJobState) =>
    db
      .selectFrom("jobs")
      .select("id")
      .where("state", "=", state)
      .where("updated_at", "<", cutoff)
      .limit(batchSize)
      .$if(lockBatch, (q) => q.forUpdate().skipLocked());
  const callbacksBatch = (state: "retryable" | "done") =>
    db
      .selectFrom("sp_callbacks")
      .select("idempotency_key")
      .where("state", "=", state)
      .where("updated_at", "<", cutoff)
      .limit(batchSize)
      .$if(lockBatch, (q) => q.forUpdate().skipLocked());
  const count = async (table: "jobs" | "sp_callbacks", state: string): Promise<number> => {
    const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)} where state = ${state} and updated_at < ${cutoff}`.execute(db);
    return Number(r.rows[0]?.n ?? 0);
  };

  /** Runs one step's batches until a batch comes back short; returns the rows it touched. */
  const drain = async (step: PruneStep, batch: () => Promise<number>): Promise<number> => {
    let total = 0;
    for (;;) {
      if (o.signal?.aborted === true) return total;
      const began = performance.now();
      const n = await batch();
      total += n;
      o.onBatch?.(step, n);
      if (n < batchSize) return total;
      // Yield the writer at least as long as the batch held it.
      await sleep(Math.max(MIN_PAUSE_MS, performance.now() - began));
    }
  };

  for (const state of PRUNED_JOB_STATES) {
    const n = dryRun
      ? await count("jobs", state)
      : await drain(`jobs.${state}`, async () => {
          // No second condition outside the batch: SQLite would then walk the whole state's index
          // instead of looking the batch's ids up (SQLite runs the statement at once; PostgreSQL
          // has the batch's rows locked and re-checked).
          const r = await db.deleteFrom("jobs").where("id", "in", jobsBatch(state)).executeTakeFirst();
          return Number(r.numDeletedRows);
        });
    result.jobs[state] = n;
    result.jobs.deleted += n;
  }
  /** A row whose job is gone; `dry`: gone or pruned by this run (which, dry, deletes nothing). */
  const withoutJob = (ref: string, dry: boolean) =>
    sql<boolean>`not exists (select 1 from jobs as j where j.id = ${sql.ref(ref)}${
      dry ? sql` and (j.state not in (${sql.join([...PRUNED_JOB_STATES])}) or j.updated_at >= ${cutoff})` : sql``
    })`;
  const countOf = async (q: { executeTakeFirst(): Promise<{ n: number | string } | undefined> }): Promise<number> => Number((await q.executeTakeFirst())?.n ?? 0);
  const oldIgnored = () => db.selectFrom("recharge_inbox").select("id").where("ignored_reason", "is not", null).where("received_at", "<", cutoff).limit(batchSize);
  result.rechargeInbox.ignored = dryRun
    ? await countOf(
        db
          .selectFrom("recharge_inbox")
          .select((eb) => eb.fn.countAll<number | string>().as("n"))
          .where("ignored_reason", "is not", null)
          .where("received_at", "<", cutoff),
      )
    : await drain("recharge_inbox.ignored", async () => Number((await db.deleteFrom("recharge_inbox").where("id", "in", oldIgnored()).executeTakeFirst()).numDeletedRows));
  // A processed event goes with its job (in a dry run: whose job is gone or would go).
  const orphanEvents = (dry: boolean) =>
    db.selectFrom("recharge_inbox as i").where("i.received_at", "<", cutoff).where("i.ignored_reason", "is", null).where(withoutJob("i.id", dry));
  result.rechargeInbox.processed = dryRun
    ? await countOf(orphanEvents(true).select((eb) => eb.fn.countAll<number | string>().as("n")))
    : await drain("recharge_inbox.processed", async () =>
        Number((await db.deleteFrom("recharge_inbox").where("id", "in", orphanEvents(false).select("i.id").limit(batchSize)).executeTakeFirst()).numDeletedRows),
      );
  result.rechargeInbox.deleted = result.rechargeInbox.ignored + result.rechargeInbox.processed;
  result.spCallbacks.deleted = dryRun
    ? await count("sp_callbacks", "retryable")
    : await drain("sp_callbacks.retryable", async () => {
        const r = await db.deleteFrom("sp_callbacks").where("idempotency_key", "in", callbacksBatch("retryable")).executeTakeFirst();
        return Number(r.numDeletedRows);
      });
  result.spCallbacks.answersDropped = dryRun
    ? await count("sp_callbacks", "done")
    : await drain("sp_callbacks.done", async () => {
        // The body hash stays: it keeps the key bound to the order placed under it.
        const r = await db.updateTable("sp_callbacks").set({ state: "pruned", response_body: null }).where("idempotency_key", "in", callbacksBatch("done")).executeTakeFirst();
        return Number(r.numUpdatedRows);
      });
  // A job's runs go with it. In a dry run the jobs are still there: counted are the runs that
  // ended before the cutoff and whose job is gone or would go.
  const orphanAttempts = (dry: boolean) => db.selectFrom("job_attempts as a").where("a.ended_at", "<", cutoff).where(withoutJob("a.job_id", dry));
  result.jobAttempts.deleted = dryRun
    ? await countOf(orphanAttempts(true).select((eb) => eb.fn.countAll<number | string>().as("n")))
    : await drain("job_attempts", async () => {
        const r = await db.deleteFrom("job_attempts").where("id", "in", orphanAttempts(false).select("a.id").limit(batchSize)).executeTakeFirst();
        return Number(r.numDeletedRows);
      });
  const oldCallbacks = () => db.selectFrom("sp_callback_log").select("id").where("received_at", "<", cutoff).limit(batchSize);
  result.callbackLog.deleted = dryRun
    ? await countOf(
        db
          .selectFrom("sp_callback_log")
          .select((eb) => eb.fn.countAll<number | string>().as("n"))
          .where("received_at", "<", cutoff),
      )
    : await drain("sp_callback_log", async () => {
        const r = await db.deleteFrom("sp_callback_log").where("id", "in", oldCallbacks()).executeTakeFirst();
        return Number(r.numDeletedRows);
      });
  // Wrong admin tokens are anyone's (the sign-in throttle needs a minute of them); what operators
  // did (sign-ins, replays, resolutions) is the console's audit trail and stays.
  const oldRefusals = () => db.selectFrom("console_actions").where("at", "<", cutoff).where("action", "=", "sign-in-refused");
  result.consoleActions.deleted = dryRun
    ? await countOf(oldRefusals().select((eb) => eb.fn.countAll<number | string>().as("n")))
    : await drain("console_actions.sign_in_refused", async () => {
        const r = await db.deleteFrom("console_actions").where("id", "in", oldRefusals().select("id").limit(batchSize)).executeTakeFirst();
        return Number(r.numDeletedRows);
      });
  return result;
}

export interface PrunerOptions {
  db: Tx;
  retentionDays: number;
  intervalMs: number;
  /** The first run after start (default: a minute, or the interval when shorter). */
  firstDelayMs?: number;
  log: Logger;
  clock?: () => number;
  batchSize?: number;
}

export interface Pruner {
  start(): void;
  /** Stops the timer and the run in progress (between two batches), and waits for it. */
  stop(): Promise<void>;
}

/** Prunes once shortly after start, then every `intervalMs`; a failed run is logged and retried then. */
export function createPruner(o: PrunerOptions): Pruner {
  const clock = o.clock ?? Date.now;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  const schedule = (ms: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce().finally(() => {
        running = undefined;
        schedule(o.intervalMs);
      });
    }, ms);
    timer.unref();
  };

  async function runOnce(): Promise<void> {
    const began = Date.now();
    try {
      const r = await prune(o.db, {
        retentionDays: o.retentionDays,
        now: clock(),
        signal: controller.signal,
        ...(o.batchSize === undefined ? {} : { batchSize: o.batchSize }),
      });
      const total =
        r.jobs.deleted + r.rechargeInbox.deleted + r.jobAttempts.deleted + r.spCallbacks.deleted + r.spCallbacks.answersDropped + r.callbackLog.deleted + r.consoleActions.deleted;
      const fields = { ...describePrune(r), ms: Date.now() - began };
      if (total > 0) o.log.info("pruned what finished before the retention", fields);
      else o.log.debug("nothing to prune", fields);
    } catch (e) {
      o.log.warn("pruning failed; trying again at the next interval", { error: e instanceof Error ? e.message : String(e) });
    }
  }

  return {
    start() {
      if (timer !== undefined || stopped) return;
      schedule(o.firstDelayMs ?? Math.min(60_000, o.intervalMs));
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      controller.abort();
      await running;
    },
  };
}

/** The figures of a prune, for logs and `orderbridge prune --json`. */
export function describePrune(r: PruneResult): Record<string, unknown> {
  return {
    cutoff: new Date(r.cutoff).toISOString(),
    dryRun: r.dryRun,
    jobs: { ...r.jobs },
    recharge_inbox: { ...r.rechargeInbox },
    sp_callbacks: { deleted: r.spCallbacks.deleted, answersDropped: r.spCallbacks.answersDropped },
    job_attempts: { deleted: r.jobAttempts.deleted },
    sp_callback_log: { deleted: r.callbackLog.deleted },
    console_actions: { deleted: r.consoleActions.deleted },
  };
}
