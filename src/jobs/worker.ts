import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Kysely } from "kysely";
import { coerceError, errorText } from "../errors.js";
import type { Logger } from "../logger.js";
import { isStoreUnavailable } from "../store/db.js";
import type { Database, JobRow } from "../store/schema.js";
import { claimNext, completeJob, extendLease, failJob, releaseJob, type Dialect } from "./queue.js";
import { backoffMs, type BackoffOptions } from "./retry-policy.js";

/** What a handler reports for a job it finished. */
export interface JobResult {
  state: "done" | "skipped";
  /** One line for operators: what happened ("placed order OB-100001", "skipped: status queued"). */
  outcome: string;
}

/**
 * A failure that says how to go on. `retry: false` sends the job to dead at once (no retry can fix
 * it); `retryAfterMs` overrides the backoff (a server's Retry-After); `countsAsAttempt: false`
 * reschedules without spending an attempt (waiting for a rate-limit slot).
 */
export class JobError extends Error {
  readonly retry: boolean;
  readonly retryAfterMs: number | undefined;
  readonly countsAsAttempt: boolean;
  constructor(message: string, o: { retry: boolean; retryAfterMs?: number; countsAsAttempt?: boolean; cause?: unknown }) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = "JobError";
    this.retry = o.retry;
    this.retryAfterMs = o.retryAfterMs;
    this.countsAsAttempt = o.countsAsAttempt ?? true;
  }
}

export interface JobContext {
  log: Logger;
  /** Aborted when the worker stops: finish quickly or give the job back. */
  signal: AbortSignal;
  /** The attempt being made, from 1. */
  attempt: number;
}

export type JobHandler = (job: JobRow, ctx: JobContext) => Promise<JobResult>;

export interface WorkerOptions {
  db: Kysely<Database>;
  dialect: Dialect;
  handlers: Record<string, JobHandler>;
  log: Logger;
  /** Jobs run at once by this process. */
  concurrency: number;
  /** How often to look for due jobs when nothing nudged the worker. */
  pollMs: number;
  /** How long a claim lasts; a job held longer by a dead worker is taken over after it. */
  leaseMs: number;
  backoff: BackoffOptions;
  clock?: () => number;
  /** Told the result of every attempt (metrics). */
  onAttempt?: (kind: string, result: "done" | "skipped" | "retry" | "dead" | "released") => void;
}

export interface Worker {
  readonly id: string;
  start(): void;
  /** Look for work now (called after enqueueing). */
  nudge(): void;
  /** Stops claiming, waits up to `deadlineMs` for running jobs, gives back what is still running. */
  stop(deadlineMs?: number): Promise<void>;
  /** Resolves when no job is due or running in this process (tests, benchmarks). */
  idle(): Promise<void>;
  readonly running: number;
}

/**
 * Runs due jobs in this process: `concurrency` loops claim one job each, run its handler, and record
 * the result. A crash anywhere loses nothing: an unfinished job stays `running` until its lease
 * expires and is then claimed again, here or by another instance.
 */
export function createWorker(o: WorkerOptions): Worker {
  const clock = o.clock ?? Date.now;
  const id = `w_${process.pid}_${randomBytes(4).toString("hex")}`;
  const controller = new AbortController();
  let started = false;
  let stopping = false;
  /** Loops sleeping until the next poll; a nudge wakes them all. */
  const sleepers = new Set<() => void>();
  let wakeRequested = false;
  const active = new Set<Promise<void>>();
  const loops: Promise<void>[] = [];
  let idleWaiters: (() => void)[] = [];
  let lastClaimEmpty = false;

  const nudge = (): void => {
    wakeRequested = true;
    for (const wake of [...sleepers]) wake();
  };

  async function waitForWork(): Promise<void> {
    // A nudge that came while every loop was busy: look again at once.
    if (wakeRequested) {
      wakeRequested = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, o.pollMs);
      sleepers.add(done);
    });
    wakeRequested = false;
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      let job: JobRow | undefined;
      try {
        job = await claimNext(o.db, o.dialect, { workerId: id, now: clock(), leaseMs: o.leaseMs });
      } catch (e) {
        if (!stopping) o.log.warn("could not claim a job", { error: coerceError(e).message });
        await sleep(Math.min(5000, o.pollMs * 2)).catch(() => undefined);
        continue;
      }
      if (job === undefined) {
        lastClaimEmpty = true;
        settleIdle();
        await waitForWork();
        continue;
      }
      lastClaimEmpty = false;
      const run = runJob(job);
      active.add(run);
      await run;
      active.delete(run);
    }
  }

  async function runJob(job: JobRow): Promise<void> {
    const attempt = job.attempts + 1;
    const log = o.log.child({ jobId: job.id, kind: job.kind, ...(job.correlation_id === null ? {} : { correlationId: job.correlation_id }) });
    const handler = o.handlers[job.kind];
    // The lease is renewed while the job runs (every third of it), so a job slower than the lease
    // is not taken over by another worker mid-run; a dead worker renews nothing, and its job is
    // taken over once the lease runs out.
    let running = true;
    const heartbeat = setInterval(() => {
      extendLease(o.db, job.id, id, clock() + o.leaseMs).then(
        (kept) => {
          if (!kept && running) log.warn("lost the lease of a running job: another worker took it over");
        },
        (e: unknown) => log.debug("could not renew a job's lease", { error: coerceError(e).message }),
      );
    }, Math.max(50, Math.floor(o.leaseMs / 3)));
    heartbeat.unref();
    const settled = (): void => {
      running = false;
      clearInterval(heartbeat);
    };
    try {
      if (handler === undefined) throw new JobError(`no handler for jobs of kind ${job.kind}`, { retry: false });
      const result = await handler(job, { log, signal: controller.signal, attempt }).finally(settled);
      const kept = await completeJob(o.db, job.id, id, { state: result.state, outcome: result.outcome, attempts: attempt, now: clock() });
      if (kept) o.onAttempt?.(job.kind, result.state);
      if (kept) log.info("job finished", { state: result.state, outcome: result.outcome, attempt });
      else log.warn("job finished after its lease was taken over; the other worker's result stands", { outcome: result.outcome });
    } catch (e) {
      settled();
      await recordFailure(job, attempt, e, log);
    }
  }

  async function recordFailure(job: JobRow, attempt: number, e: unknown, log: Logger): Promise<void> {
    const err = coerceError(e);
    const now = clock();
    if (controller.signal.aborted) {
      // Interrupted by shutdown (whatever the error says): give it back without spending an attempt.
      await releaseJob(o.db, job.id, id, now, now).catch(() => undefined);
      o.onAttempt?.(job.kind, "released");
      return;
    }
    const je = err instanceof JobError ? err : undefined;
    const retryable = je === undefined ? true : je.retry; // unknown failures (database down, bugs) are retried
    const counts = je?.countsAsAttempt ?? true;
    const attempts = counts ? attempt : job.attempts;
    const exhausted = counts && attempts >= job.max_attempts;
    const retryAt = !retryable || exhausted ? undefined : now + (je?.retryAfterMs ?? backoffMs(attempts, o.backoff));
    const message = describe(err);
    try {
      await failJob(o.db, job.id, id, { error: message, attempts, retryAt, now });
    } catch (dbErr) {
      log.warn("could not record a job failure; its lease will expire and it runs again", { error: coerceError(dbErr).message });
      return;
    }
    o.onAttempt?.(job.kind, retryAt === undefined ? "dead" : counts ? "retry" : "released");
    if (retryAt === undefined) {
      log.error("job is dead: kept for inspection and replay", { error: message, attempts, exhausted });
    } else if (counts) {
      log.warn("job failed; will retry", { error: message, attempt: attempts, retryInMs: retryAt - now, storeDown: isStoreUnavailable(err) });
    } else {
      log.debug("job rescheduled", { reason: message, retryInMs: retryAt - now });
    }
  }

  function settleIdle(): void {
    if (active.size > 0 || !lastClaimEmpty) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  }

  let stopped: Promise<void> | undefined;
  async function stopNow(deadlineMs: number): Promise<void> {
    stopping = true;
    nudge();
    const all = Promise.all(loops);
    // Unreferenced: a timer left over after the race must not keep the process alive.
    const timedOut = await Promise.race([all.then(() => false), sleep(deadlineMs, undefined, { ref: false }).then(() => true)]);
    if (timedOut) {
      controller.abort();
      await Promise.race([all, sleep(2000, undefined, { ref: false })]);
    }
    // Whatever is still held goes back to the queue for the next worker.
    await o.db
      .updateTable("jobs")
      .set({ state: "pending", locked_by: null, lease_until: null, updated_at: clock() })
      .where("locked_by", "=", id)
      .where("state", "=", "running")
      .execute()
      .catch(() => undefined);
  }

  return {
    id,
    get running() {
      return active.size;
    },
    start() {
      if (started) return;
      started = true;
      for (let i = 0; i < o.concurrency; i++) loops.push(loop());
    },
    nudge,
    stop(deadlineMs = 10_000) {
      // Every caller waits for the same stop.
      stopped ??= stopNow(deadlineMs);
      return stopped;
    },
    idle() {
      if (!started || o.concurrency === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        nudge();
      });
    },
  };
}

function describe(e: Error): string {
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : "";
  const text = errorText(e);
  return `${text}${cause && !text.includes(cause.slice(2)) ? cause : ""}`;
}
