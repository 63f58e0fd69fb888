import { currentTraceparent } from "../telemetry/tracing.js";
import { dialectOf, kx, type Tx } from "./handle.js";
import { timeSortedId } from "./ids.js";
import type { JobRow, JobState } from "./schema.js";

export type { JobRow, JobState } from "./schema.js";

/**
 * The durable work queue: one table (`jobs`) holds the processing of received events (the inbox's
 * rows are the receiver's: src/store/recharge-inbox.ts) and the outbox (write-back calls). Every transition is a conditional write, so several workers, in one process or
 * in several sharing a database, never run one job twice at once. On PostgreSQL a claim skips rows
 * another transaction holds (FOR UPDATE SKIP LOCKED); SQLite has one writer at a time anyway.
 *
 * Each job belongs to a lane, and each lane is claimed by loops of its own: placing orders (the
 * inbox) never waits behind write-backs that wait for Recharge's rate limit.
 */
/** inbox: received webhooks (placing orders); writeback: calls to Recharge's API, under its rate limit. */
export type Lane = "inbox" | "writeback";

export interface NewJob {
  kind: string;
  lane: Lane;
  /** Id prefix: "evt" for inbox events, "job" for outbox calls. */
  prefix: "evt" | "job";
  /** Its id, when it is given (the processing of an inbox event has the event's); otherwise a new one. */
  id?: string;
  dedupeKey?: string | null;
  resourceId?: string | null;
  payload?: unknown;
  maxAttempts: number;
  runAt?: number;
  correlationId?: string | null;
  /** The W3C traceparent of the span that queued it; by default the active span's (tracing on). */
  traceContext?: string | null;
}

export const newJobId = (prefix: string): string => timeSortedId(prefix, Date.now(), 16);

/**
 * Adds a job unless one with the same dedupe key exists. Returns the id of the job that stands for
 * this work (the new one, or the existing duplicate) and whether it was new.
 */
export async function enqueue(tx: Tx, job: NewJob, now: number): Promise<{ id: string; inserted: boolean }> {
  const db = kx(tx);
  const key = job.dedupeKey ?? null;
  // A second try only when the duplicate it conflicted with was pruned (retention) in between.
  for (let attempt = 1; ; attempt++) {
    const id = job.id ?? newJobId(job.prefix);
    const res = await db
      .insertInto("jobs")
      .values({
        id,
        kind: job.kind,
        lane: job.lane,
        dedupe_key: key,
        resource_id: job.resourceId ?? null,
        payload: JSON.stringify(job.payload ?? {}),
        state: "pending",
        attempts: 0,
        max_attempts: job.maxAttempts,
        run_at: job.runAt ?? now,
        locked_by: null,
        lease_until: null,
        last_error: null,
        outcome: null,
        correlation_id: job.correlationId ?? null,
        trace_context: job.traceContext ?? currentTraceparent() ?? null,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0n) === 1) return { id, inserted: true };
    const existing = key === null ? undefined : await db.selectFrom("jobs").select("id").where("dedupe_key", "=", key).executeTakeFirst();
    if (existing !== undefined) return { id: existing.id, inserted: false };
    if (key === null || job.id !== undefined || attempt >= 3) throw new Error("the job was neither inserted nor found: a conflict on its id");
  }
}

/**
 * Claims the lane's next due job (pending, oldest run_at first), through the (lane, state, run_at)
 * index. PostgreSQL: one statement, skipping rows other claims hold. SQLite: the due job is read
 * first and claimed by id, so a claim that finds nothing (most of them, for an idle lane) is a read
 * and not a write transaction with its flush; a job another loop claimed in between is followed by
 * the next one.
 */
export async function claimNext(tx: Tx, o: { lane: Lane; workerId: string; now: number; leaseMs: number }): Promise<JobRow | undefined> {
  const db = kx(tx);
  const due = db.selectFrom("jobs").select("id").where("lane", "=", o.lane).where("state", "=", "pending").where("run_at", "<=", o.now).orderBy("run_at").limit(1);
  const claim = (id: string | typeof due) =>
    db
      .updateTable("jobs")
      .set({ state: "running", locked_by: o.workerId, lease_until: o.now + o.leaseMs, updated_at: o.now })
      .where("id", "=", id)
      // Re-checked here: on PostgreSQL the row is locked, on SQLite another loop may have claimed
      // it since it was read; either way a job is never claimed twice.
      .where("state", "=", "pending")
      .returningAll()
      .executeTakeFirst();
  if (dialectOf(tx) === "postgres") return claim(due.forUpdate().skipLocked());
  for (let tries = 0; tries < 5; tries++) {
    const next = await due.executeTakeFirst();
    if (next === undefined) return undefined;
    const row = await claim(next.id);
    if (row !== undefined) return row;
  }
  return undefined;
}

/** Whether the lane has a job due now (read only). */
export async function hasDue(tx: Tx, lane: Lane, now: number): Promise<boolean> {
  const db = kx(tx);
  const row = await db.selectFrom("jobs").select("id").where("lane", "=", lane).where("state", "=", "pending").where("run_at", "<=", now).limit(1).executeTakeFirst();
  return row !== undefined;
}

/**
 * Puts running jobs whose lease ran out (their worker died, or lost the database for longer than
 * the lease) back to pending, due at once, their attempt not spent. Returns how many. Reads first,
 * so the usual case (none) writes nothing.
 */
export async function requeueExpired(tx: Tx, now: number): Promise<number> {
  const db = kx(tx);
  const expired = await db.selectFrom("jobs").select("id").where("state", "=", "running").where("lease_until", "<", now).limit(100).execute();
  if (expired.length === 0) return 0;
  const r = await db
    .updateTable("jobs")
    .set({ state: "pending", locked_by: null, lease_until: null, updated_at: now })
    .where(
      "id",
      "in",
      expired.map((e) => e.id),
    )
    .where("state", "=", "running")
    .where("lease_until", "<", now)
    .executeTakeFirst();
  return Number(r.numUpdatedRows);
}

/** Extends a running job's lease; false when the worker no longer owns it. */
export async function extendLease(tx: Tx, id: string, workerId: string, leaseUntil: number): Promise<boolean> {
  const db = kx(tx);
  const r = await db.updateTable("jobs").set({ lease_until: leaseUntil }).where("id", "=", id).where("locked_by", "=", workerId).where("state", "=", "running").executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Marks a job finished (done or skipped). Only the worker holding it may; false otherwise. */
export async function completeJob(tx: Tx, id: string, workerId: string, o: { state: "done" | "skipped"; outcome: string; attempts: number; now: number }): Promise<boolean> {
  const db = kx(tx);
  const r = await db
    .updateTable("jobs")
    // The last error goes: a finished job shows its outcome (its earlier failures are in job_attempts).
    .set({ state: o.state, outcome: o.outcome, last_error: null, attempts: o.attempts, locked_by: null, lease_until: null, updated_at: o.now })
    .where("id", "=", id)
    .where("locked_by", "=", workerId)
    .where("state", "=", "running")
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Records a failed attempt: back to pending at `retryAt`, or dead when `retryAt` is undefined. */
export async function failJob(tx: Tx, id: string, workerId: string, o: { error: string; attempts: number; retryAt: number | undefined; now: number }): Promise<boolean> {
  const db = kx(tx);
  const r = await db
    .updateTable("jobs")
    .set({
      state: o.retryAt === undefined ? "dead" : "pending",
      run_at: o.retryAt ?? o.now,
      attempts: o.attempts,
      last_error: o.error.slice(0, 4000),
      locked_by: null,
      lease_until: null,
      updated_at: o.now,
    })
    .where("id", "=", id)
    .where("locked_by", "=", workerId)
    .where("state", "=", "running")
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Gives back a job this worker holds without counting an attempt (shutdown, rate-limit wait). */
export async function releaseJob(tx: Tx, id: string, workerId: string, runAt: number, now: number): Promise<void> {
  const db = kx(tx);
  await db
    .updateTable("jobs")
    .set({ state: "pending", run_at: runAt, locked_by: null, lease_until: null, updated_at: now })
    .where("id", "=", id)
    .where("locked_by", "=", workerId)
    .where("state", "=", "running")
    .execute();
}

export type ReplayResult = { kind: "replayed"; job: JobRow } | { kind: "not_found" } | { kind: "running" };

/** Runs a job again from the start: pending now, with a fresh attempt budget. */
export async function replayJob(tx: Tx, id: string, now: number): Promise<ReplayResult> {
  const db = kx(tx);
  const r = await db
    .updateTable("jobs")
    // From the start: a fresh attempt budget, and no outcome or error of the runs before (the log
    // keeps those); a replay that succeeds must not still show the error it was replayed for.
    .set({ state: "pending", attempts: 0, run_at: now, locked_by: null, lease_until: null, outcome: null, last_error: null, updated_at: now })
    .where("id", "=", id)
    .where("state", "!=", "running")
    .returningAll()
    .executeTakeFirst();
  if (r !== undefined) return { kind: "replayed", job: r };
  const exists = await db.selectFrom("jobs").select("state").where("id", "=", id).executeTakeFirst();
  return exists === undefined ? { kind: "not_found" } : { kind: "running" };
}

export async function getJob(tx: Tx, id: string): Promise<JobRow | undefined> {
  const db = kx(tx);
  return db.selectFrom("jobs").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Gives back every job this worker still holds (at shutdown), due at once, its attempt not spent. */
export async function releaseAllHeldBy(tx: Tx, workerId: string, now: number): Promise<void> {
  await kx(tx)
    .updateTable("jobs")
    .set({ state: "pending", locked_by: null, lease_until: null, updated_at: now })
    .where("locked_by", "=", workerId)
    .where("state", "=", "running")
    .execute();
}

/** The jobs of these kinds for these resources (ids): their kind, resource and state. */
export async function jobsForResources(tx: Tx, kinds: readonly string[], resourceIds: readonly string[]): Promise<{ kind: string; resource_id: string | null; state: JobState }[]> {
  if (resourceIds.length === 0) return [];
  return kx(tx).selectFrom("jobs").select(["kind", "resource_id", "state"]).where("kind", "in", kinds).where("resource_id", "in", resourceIds).execute();
}
