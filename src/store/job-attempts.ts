import { kx, type Tx } from "./handle.js";
import { timeSortedId } from "./ids.js";
import type { JobAttemptOutcome, JobAttemptRow } from "./schema.js";

export type { JobAttemptOutcome } from "./schema.js";

/** One run of a job, as the worker records it with the job's new state (same transaction). */
export interface JobAttempt {
  jobId: string;
  attempt: number;
  outcome: JobAttemptOutcome;
  detail: string | null;
  remoteStatus: number | null;
  nextRunAt: number | null;
  workerId: string;
  startedAt: number;
  endedAt: number;
}

/** The longest detail kept (a failure's message is bounded by the worker already; this is a backstop). */
const MAX_DETAIL = 4_000;

export async function recordAttempt(tx: Tx, a: JobAttempt): Promise<void> {
  await kx(tx)
    .insertInto("job_attempts")
    .values({
      id: timeSortedId("att", a.startedAt),
      job_id: a.jobId,
      attempt: a.attempt,
      outcome: a.outcome,
      detail: a.detail === null ? null : a.detail.slice(0, MAX_DETAIL),
      remote_status: a.remoteStatus,
      next_run_at: a.nextRunAt,
      worker_id: a.workerId,
      started_at: a.startedAt,
      ended_at: a.endedAt,
    })
    .execute();
}

/** A job's runs, oldest first (at most `limit`, the newest of them when there are more). */
export async function attemptsOf(tx: Tx, jobId: string, limit = 200): Promise<JobAttempt[]> {
  const rows = await kx(tx).selectFrom("job_attempts").selectAll().where("job_id", "=", jobId).orderBy("started_at", "desc").orderBy("id", "desc").limit(limit).execute();
  return rows.reverse().map(attemptOf);
}

function attemptOf(r: JobAttemptRow): JobAttempt {
  return {
    jobId: r.job_id,
    attempt: r.attempt,
    outcome: r.outcome,
    detail: r.detail,
    remoteStatus: r.remote_status,
    nextRunAt: r.next_run_at === null ? null : Number(r.next_run_at),
    workerId: r.worker_id,
    startedAt: Number(r.started_at),
    endedAt: Number(r.ended_at),
  };
}
