import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { coerceError, errorText } from "../errors.js";
import type { Logger } from "../logger.js";
import { isDataError, isStoreUnavailable } from "../store/db.js";
import { transaction, type Tx } from "../store/handle.js";
import { recordAttempt, type JobAttempt } from "../store/job-attempts.js";
import { claimNext, completeJob, extendLease, failJob, hasDue, releaseAllHeldBy, releaseJob, requeueExpired, type JobRow, type Lane } from "../store/jobs.js";
import { backoffMs, type BackoffOptions } from "../outbound/retry-policy.js";

/** What a handler reports for a job it finished. */
export interface JobResult {
  state: "done" | "skipped";
  /** One line for operators: what happened ("placed order OB-100001", "skipped: status queued"). */
  outcome: string;
  /** The HTTP status of the remote call the run made, when it made one (kept in its attempt history). */
  remoteStatus?: number;
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
  /** The HTTP status of the remote call that failed, when there was an answer. */
  readonly remoteStatus: number | undefined;
  constructor(message: string, o: { retry: boolean; retryAfterMs?: number; countsAsAttempt?: boolean; remoteStatus?: number; cause?: unknown }) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = "JobError";
    this.retry = o.retry;
    this.retryAfterMs = o.retryAfterMs;
    this.countsAsAttempt = o.countsAsAttempt ?? true;
    this.remoteStatus = o.remoteStatus;
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

/** One lane's loops: how many, and what they wait for before claiming. */
export interface LaneOptions {
  lane: Lane;
  /** Jobs of this lane run at once by this process (0: this process runs none of them). */
  concurrency: number;
  /**
   * How long until this lane's next job may run (e.g. the next slot of a rate limit); 0 = now.
   * A loop waits for it before claiming, so a job never sits claimed while it waits.
   */
  ready?: () => Promise<number>;
  /**
   * While `lane` has work in this process (a job running or due), this lane starts at most one job
   * per `intervalMs`: it keeps to its sustained share and leaves its burst for when `lane` is idle.
   * (Write-backs give way to placing orders: Recharge's 40-call burst spent during a burst of orders
   * slowed their placement, for no gain — the write-backs still go out at the API's rate.)
   */
  yieldTo?: { lane: Lane; intervalMs: number };
}

export interface WorkerOptions {
  /** The store the queue is in (src/store/jobs.ts). */
  db: Tx;
  handlers: Record<string, JobHandler>;
  lanes: LaneOptions[];
  log: Logger;
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
  /** Look for work now (called after enqueueing): one loop of the lane, or of every lane. */
  nudge(lane?: Lane): void;
  /** Stops claiming, waits up to `deadlineMs` for running jobs, gives back what is still running. */
  stop(deadlineMs?: number): Promise<void>;
  /** Resolves when no job is due or running in this process (tests, benchmarks). */
  idle(): Promise<void>;
  readonly running: number;
}

/** The longest a lane sleeps for its `ready` before asking again. */
const MAX_READY_SLEEP_MS = 5_000;

/**
 * Runs due jobs in this process: each lane's loops claim one job each, run its handler, and record
 * the result. A crash anywhere loses nothing: an unfinished job stays `running` until its lease
 * expires and is then requeued (requeueExpired, every poll) and claimed again, here or by another
 * instance.
 */
export function createWorker(o: WorkerOptions): Worker {
  const clock = o.clock ?? Date.now;
  const id = `w_${process.pid}_${randomBytes(4).toString("hex")}`;
  const controller = new AbortController();
  let started = false;
  let stopping = false;
  /** Loops sleeping until the next poll, by lane; a nudge wakes one of them. */
  const sleepers = new Map<Lane, Set<() => void>>();
  const wakeRequested = new Set<Lane>();
  const active = new Set<Promise<void>>();
  const loops: Promise<void>[] = [];
  let idleWaiters: (() => void)[] = [];
  /** Lanes whose last claim found nothing due. */
  const emptyLanes = new Set<Lane>();
  const lanes = o.lanes.filter((l) => l.concurrency > 0);
  /** Jobs running in this process, by lane. */
  const runningIn = new Map<Lane, number>();
  /** When a loop of the lane last went to claim while it gave way (see LaneOptions.yieldTo). */
  const lastYieldedStart = new Map<Lane, number>();
  /** Whether `lane` has work in this process: a job running, or its last claim found one. */
  const busy = (lane: Lane): boolean => lanes.some((l) => l.lane === lane) && ((runningIn.get(lane) ?? 0) > 0 || !emptyLanes.has(lane));
  /** How long a loop of `l` waits before it may claim because it gives way to a busy lane; 0 = now. */
  function yieldMs(l: LaneOptions): number {
    if (l.yieldTo === undefined || !busy(l.yieldTo.lane)) return 0;
    const now = clock();
    const wait = (lastYieldedStart.get(l.lane) ?? -Infinity) + l.yieldTo.intervalMs - now;
    if (wait > 0) return wait;
    // Taken before any await, so that the lane's other loops wait for the next interval.
    lastYieldedStart.set(l.lane, now);
    return 0;
  }

  // One new job wakes one sleeping loop of its lane (it claims until the lane is empty); with every
  // loop busy, the next one to finish looks again at once. Waking them all would have each of them
  // claim, and on SQLite every claim that finds the job taken is a read for nothing.
  const nudgeLane = (lane: Lane): void => {
    const sleeping = sleepers.get(lane);
    const first = sleeping?.values().next();
    if (first !== undefined && first.done !== true) first.value();
    else wakeRequested.add(lane);
  };
  const nudge = (lane?: Lane): void => {
    for (const l of lanes) if (lane === undefined || l.lane === lane) nudgeLane(l.lane);
  };

  /** Sleeps `ms`, or until the stop (and, given a lane, until a nudge of it). */
  async function pause(ms: number, wakeOn?: Lane): Promise<void> {
    if (stopping) return;
    await new Promise<void>((resolve) => {
      const sleeping = wakeOn === undefined ? undefined : (sleepers.get(wakeOn) ?? sleepers.set(wakeOn, new Set()).get(wakeOn));
      const done = (): void => {
        clearTimeout(timer);
        sleeping?.delete(done);
        stopWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleeping?.add(done);
      stopWaiters.add(done);
    });
  }
  const stopWaiters = new Set<() => void>();

  async function waitForWork(lane: Lane): Promise<void> {
    // A nudge that came while every loop was busy: look again at once.
    if (wakeRequested.delete(lane)) return;
    await pause(o.pollMs, lane);
  }

  async function loop(l: LaneOptions): Promise<void> {
    while (!stopping) {
      let job: JobRow | undefined;
      try {
        const giveWay = yieldMs(l);
        if (giveWay > 0) {
          emptyLanes.delete(l.lane);
          await pause(giveWay);
          continue;
        }
        const wait = l.ready === undefined ? 0 : await l.ready();
        if (wait > 0) {
          // Nothing is claimed while the lane waits; when nothing is due either, it is idle.
          if (!(await hasDue(o.db, l.lane, clock()))) {
            emptyLanes.add(l.lane);
            settleIdle();
            await waitForWork(l.lane);
            continue;
          }
          emptyLanes.delete(l.lane);
          await pause(Math.min(wait, MAX_READY_SLEEP_MS));
          continue;
        }
        await reapIfDue();
        job = await claimNext(o.db, { lane: l.lane, workerId: id, now: clock(), leaseMs: o.leaseMs });
      } catch (e) {
        if (!stopping) o.log.warn("could not claim a job", { lane: l.lane, error: coerceError(e).message });
        await pause(Math.min(5000, o.pollMs * 2));
        continue;
      }
      if (job === undefined) {
        emptyLanes.add(l.lane);
        settleIdle();
        await waitForWork(l.lane);
        continue;
      }
      emptyLanes.delete(l.lane);
      runningIn.set(l.lane, (runningIn.get(l.lane) ?? 0) + 1);
      const run = runJob(job);
      active.add(run);
      await run;
      active.delete(run);
      runningIn.set(l.lane, (runningIn.get(l.lane) ?? 1) - 1);
    }
  }

  // Jobs whose lease ran out go back to pending, looked for at most every poll (or quarter lease).
  const reapEveryMs = Math.max(10, Math.min(o.pollMs, Math.floor(o.leaseMs / 4)));
  let lastReap = 0;
  let reaping: Promise<void> | undefined;
  function reapIfDue(): Promise<void> {
    const now = clock();
    if (reaping !== undefined || now - lastReap < reapEveryMs) return reaping ?? Promise.resolve();
    lastReap = now;
    reaping = requeueExpired(o.db, now)
      .then((n) => {
        if (n > 0) o.log.warn("requeued jobs whose lease ran out (their worker stopped or lost the database)", { jobs: n });
      })
      .finally(() => (reaping = undefined));
    return reaping;
  }

  async function runJob(job: JobRow): Promise<void> {
    const attempt = job.attempts + 1;
    const startedAt = clock();
    const log = o.log.child({ jobId: job.id, kind: job.kind, ...(job.correlation_id === null ? {} : { correlationId: job.correlation_id }) });
    const handler = o.handlers[job.kind];
    // The lease is renewed while the job runs (every third of it), so a job slower than the lease
    // is not taken over by another worker mid-run; a dead worker renews nothing, and its job is
    // taken over once the lease runs out.
    let running = true;
    let leaseUntil = job.lease_until ?? clock() + o.leaseMs;
    const heartbeat = setInterval(
      () => {
        const until = clock() + o.leaseMs;
        extendLease(o.db, job.id, id, until).then(
          (kept) => {
            if (kept) leaseUntil = until;
            else if (running) log.warn("lost the lease of a running job: another worker took it over");
          },
          (e: unknown) => log.debug("could not renew a job's lease", { error: coerceError(e).message }),
        );
      },
      Math.max(50, Math.floor(o.leaseMs / 3)),
    );
    heartbeat.unref();
    const settled = (): void => {
      running = false;
      clearInterval(heartbeat);
    };
    let result: JobResult;
    try {
      if (handler === undefined) throw new JobError(`no handler for jobs of kind ${job.kind}`, { retry: false });
      result = await handler(job, { log, signal: controller.signal, attempt }).finally(settled);
    } catch (e) {
      settled();
      await recordFailure(job, attempt, e, log, () => leaseUntil, startedAt);
      return;
    }
    const kept = await record(
      log,
      "its result",
      () => leaseUntil,
      () => {
        const now = clock();
        return withAttempt((tx) => completeJob(tx, job.id, id, { state: result.state, outcome: result.outcome, attempts: attempt, now }), {
          jobId: job.id,
          attempt,
          outcome: result.state,
          detail: result.outcome,
          remoteStatus: result.remoteStatus ?? null,
          nextRunAt: null,
          workerId: id,
          startedAt,
          endedAt: now,
        });
      },
    );
    if (kept === undefined) return;
    if (kept) o.onAttempt?.(job.kind, result.state);
    if (kept) log.info("job finished", { state: result.state, outcome: result.outcome, attempt });
    else log.warn("job finished after its lease was taken over; the other worker's result stands", { outcome: result.outcome });
  }

  /**
   * Records what a job did. While the database is unavailable the record is retried (the worker
   * still holds the job) until it is back, so a call that was made is recorded as soon as it can be,
   * not repeated after the lease; after the lease, or at shutdown's deadline, it is left to the lease
   * (undefined).
   */
  async function record(log: Logger, what: string, leaseUntil: () => number, write: () => Promise<boolean>): Promise<boolean | undefined> {
    for (let i = 0; ; i++) {
      try {
        return await write();
      } catch (e) {
        const err = coerceError(e);
        const canWait = isStoreUnavailable(err) && !controller.signal.aborted && clock() < leaseUntil();
        if (!canWait) {
          log.warn("could not record a job's outcome; its lease will expire and it runs again", { what, error: err.message });
          return undefined;
        }
        if (i === 0) log.warn("could not record a job's outcome: the database is unavailable; retrying until it is back", { what, error: err.message });
        await pause(Math.min(2000, 100 * 2 ** i));
        if (controller.signal.aborted) {
          log.warn("stopped before a job's outcome could be recorded; its lease will expire and it runs again", { what });
          return undefined;
        }
      }
    }
  }

  /** A job's new state and the run that led to it, in one transaction: the history never disagrees with the job. */
  async function withAttempt(write: (tx: Tx) => Promise<boolean>, a: JobAttempt): Promise<boolean> {
    return transaction(o.db, async (tx) => {
      const kept = await write(tx);
      if (kept) await recordAttempt(tx, a);
      return kept;
    });
  }

  async function recordFailure(job: JobRow, attempt: number, e: unknown, log: Logger, leaseUntil: () => number, startedAt: number): Promise<void> {
    const err = coerceError(e);
    const now = clock();
    if (controller.signal.aborted) {
      // Interrupted by shutdown (whatever the error says): give it back without spending an attempt.
      await withAttempt(async (tx) => (await releaseJob(tx, job.id, id, now, now), true), {
        jobId: job.id,
        attempt,
        outcome: "released",
        detail: "given back at shutdown",
        remoteStatus: null,
        nextRunAt: now,
        workerId: id,
        startedAt,
        endedAt: now,
      }).catch(() => undefined);
      o.onAttempt?.(job.kind, "released");
      return;
    }
    const je = err instanceof JobError ? err : undefined;
    // Unknown failures (database down, bugs) are retried; a value the database refuses never passes.
    const retryable = je === undefined ? !isDataError(err) : je.retry;
    const counts = je?.countsAsAttempt ?? true;
    const attempts = counts ? attempt : job.attempts;
    const exhausted = counts && attempts >= job.max_attempts;
    const retryAt = !retryable || exhausted ? undefined : now + (je?.retryAfterMs ?? backoffMs(attempts, o.backoff));
    const message = describe(err);
    const kept = await record(log, "a failure", leaseUntil, () => {
      const at = clock();
      return withAttempt((tx) => failJob(tx, job.id, id, { error: message, attempts, retryAt, now: at }), {
        jobId: job.id,
        attempt,
        outcome: retryAt === undefined ? "dead" : counts ? "retry" : "deferred",
        detail: message,
        remoteStatus: je?.remoteStatus ?? null,
        nextRunAt: retryAt ?? null,
        workerId: id,
        startedAt,
        endedAt: at,
      });
    });
    if (kept !== true) return;
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
    if (active.size > 0 || lanes.some((l) => !emptyLanes.has(l.lane))) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  }

  let stopped: Promise<void> | undefined;
  async function stopNow(deadlineMs: number): Promise<void> {
    stopping = true;
    for (const wake of [...stopWaiters]) wake();
    const all = Promise.all(loops);
    // Unreferenced: a timer left over after the race must not keep the process alive.
    const timedOut = await Promise.race([all.then(() => false), sleep(deadlineMs, undefined, { ref: false }).then(() => true)]);
    if (timedOut) {
      controller.abort();
      await Promise.race([all, sleep(2000, undefined, { ref: false })]);
    }
    // Whatever is still held goes back to the queue for the next worker.
    await releaseAllHeldBy(o.db, id, clock()).catch(() => undefined);
  }

  return {
    id,
    get running() {
      return active.size;
    },
    start() {
      if (started) return;
      started = true;
      for (const l of lanes) for (let i = 0; i < l.concurrency; i++) loops.push(loop(l));
    },
    nudge,
    stop(deadlineMs = 10_000) {
      // Every caller waits for the same stop.
      stopped ??= stopNow(deadlineMs);
      return stopped;
    },
    idle() {
      if (!started || lanes.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        idleWaiters.push(resolve);
        // Every loop looks again, so that each lane reports whether it is empty.
        for (const set of sleepers.values()) for (const wake of [...set]) wake();
        for (const l of lanes) wakeRequested.add(l.lane);
      });
    },
  };
}

function describe(e: Error): string {
  const cause = e.cause instanceof Error ? `: ${e.cause.message}` : "";
  const text = errorText(e);
  return `${text}${cause && !text.includes(cause.slice(2)) ? cause : ""}`;
}
