import { kx, type Tx } from "./handle.js";
import type { JobRow, JobState, RechargeInboxRow } from "./schema.js";

/**
 * The event log as the admin API, the console and the CLI show it: every job (the processing of
 * an inbox event, a write-back) with its inbox event's topic and body where it has one, and the
 * inbox events recorded as ignored, which have no job. An ignored event has the state `ignored`
 * and the kind of the processing it did not get.
 */
export type EventState = JobState | "ignored";
export const EVENT_STATES: readonly EventState[] = ["pending", "running", "done", "skipped", "ignored", "dead"];

/** The kind of job that processes a Recharge inbox event (src/recharge/handlers.ts names it too). */
export const INBOX_EVENT_KIND = "recharge.webhook";

export interface EventRow extends Omit<JobRow, "state"> {
  state: EventState;
  /** From the inbox event; null for a write-back. */
  source: RechargeInboxRow["source"] | null;
  topic: string | null;
  topic_source: string | null;
  api_version: string | null;
  body: string | null;
}

export interface EventListQuery {
  state?: EventState;
  kind?: string;
  resourceId?: string;
  /** A webhook's topic (order/created, ...). */
  topic?: string;
  /** Created (received) at or after / before (ms since the epoch). */
  from?: number;
  to?: number;
  limit: number;
  /** Cursor: the `nextCursor` of the previous page. */
  cursor?: { createdAt: number; id: string };
}

/** An ignored inbox event as an event row: no attempts, its reason as the outcome. */
function ignoredView(i: RechargeInboxRow): EventRow {
  return {
    id: i.id,
    kind: INBOX_EVENT_KIND,
    lane: "inbox",
    dedupe_key: i.dedupe_key,
    resource_id: i.resource_id,
    payload: "{}",
    state: "ignored",
    attempts: 0,
    max_attempts: 0,
    run_at: i.received_at,
    locked_by: null,
    lease_until: null,
    last_error: null,
    outcome: i.ignored_reason,
    correlation_id: i.correlation_id,
    trace_context: null,
    created_at: i.received_at,
    updated_at: i.received_at,
    source: i.source,
    topic: i.topic,
    topic_source: i.topic_source,
    api_version: i.api_version,
    body: i.body,
  };
}

/** A write-back's API version is in its payload (the inbox event's, for the processing of one). */
function withVersion<R extends { api_version: string | null; payload: string }>(r: R): R {
  if (r.api_version !== null) return r;
  try {
    const v = (JSON.parse(r.payload) as Record<string, unknown>)["apiVersion"];
    return typeof v === "string" ? { ...r, api_version: v } : r;
  } catch {
    return r;
  }
}

const jobsWithEvent = (tx: Tx) =>
  kx(tx)
    .selectFrom("jobs")
    .leftJoin("recharge_inbox", "recharge_inbox.id", "jobs.id")
    .selectAll("jobs")
    .select(["recharge_inbox.source", "recharge_inbox.topic", "recharge_inbox.topic_source", "recharge_inbox.api_version", "recharge_inbox.body"]);

/**
 * Newest first, keyset-paginated on (created_at, id): the jobs and the ignored inbox events, each
 * read through its own index up to `limit`, merged.
 */
export async function listEvents(tx: Tx, q: EventListQuery): Promise<EventRow[]> {
  const c = q.cursor;
  const rows: EventRow[] = [];
  if (q.state !== "ignored") {
    let query = jobsWithEvent(tx);
    if (q.state !== undefined) query = query.where("jobs.state", "=", q.state);
    if (q.kind !== undefined) query = query.where("jobs.kind", "=", q.kind);
    if (q.resourceId !== undefined) query = query.where("jobs.resource_id", "=", q.resourceId);
    if (q.topic !== undefined) query = query.where("recharge_inbox.topic", "=", q.topic);
    if (q.from !== undefined) query = query.where("jobs.created_at", ">=", q.from);
    if (q.to !== undefined) query = query.where("jobs.created_at", "<", q.to);
    if (c !== undefined) {
      query = query.where((eb) => eb.or([eb("jobs.created_at", "<", c.createdAt), eb.and([eb("jobs.created_at", "=", c.createdAt), eb("jobs.id", "<", c.id)])]));
    }
    rows.push(...(await query.orderBy("jobs.created_at", "desc").orderBy("jobs.id", "desc").limit(q.limit).execute()).map(withVersion));
  }
  if ((q.state === undefined || q.state === "ignored") && (q.kind === undefined || q.kind === INBOX_EVENT_KIND)) {
    let query = kx(tx).selectFrom("recharge_inbox").selectAll().where("ignored_reason", "is not", null);
    if (q.resourceId !== undefined) query = query.where("resource_id", "=", q.resourceId);
    if (q.topic !== undefined) query = query.where("topic", "=", q.topic);
    if (q.from !== undefined) query = query.where("received_at", ">=", q.from);
    if (q.to !== undefined) query = query.where("received_at", "<", q.to);
    if (c !== undefined) query = query.where((eb) => eb.or([eb("received_at", "<", c.createdAt), eb.and([eb("received_at", "=", c.createdAt), eb("id", "<", c.id)])]));
    rows.push(...(await query.orderBy("received_at", "desc").orderBy("id", "desc").limit(q.limit).execute()).map(ignoredView));
  }
  rows.sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return rows.slice(0, q.limit);
}

/** One event: a job (with its inbox event), or an ignored inbox event. */
export async function getEvent(tx: Tx, id: string): Promise<EventRow | undefined> {
  const job = await jobsWithEvent(tx).where("jobs.id", "=", id).executeTakeFirst();
  if (job !== undefined) return withVersion(job);
  const ignored = await kx(tx).selectFrom("recharge_inbox").selectAll().where("id", "=", id).where("ignored_reason", "is not", null).executeTakeFirst();
  return ignored === undefined ? undefined : ignoredView(ignored);
}
