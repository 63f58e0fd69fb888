import { sql } from "kysely";
import { kx, type Tx } from "./handle.js";
import { timeSortedId } from "./ids.js";
import type { JobRow } from "./schema.js";

export interface ConsoleAction {
  id: string;
  at: number;
  sessionId: string;
  action: string;
  target: string | null;
  detail: string | null;
  clientAddress: string | null;
}

export async function recordAction(tx: Tx, a: Omit<ConsoleAction, "id">): Promise<void> {
  await kx(tx)
    .insertInto("console_actions")
    .values({
      id: timeSortedId("act", a.at),
      at: a.at,
      session_id: a.sessionId,
      action: a.action,
      target: a.target,
      detail: a.detail,
      client_address: a.clientAddress,
    })
    .execute();
}

export async function listActions(tx: Tx, limit: number): Promise<ConsoleAction[]> {
  const rows = await kx(tx).selectFrom("console_actions").selectAll().orderBy("at", "desc").orderBy("id", "desc").limit(limit).execute();
  return rows.map((r) => ({ id: r.id, at: Number(r.at), sessionId: r.session_id, action: r.action, target: r.target, detail: r.detail, clientAddress: r.client_address }));
}

/**
 * When the sign-ins refused from `clientAddress` after `since` were, newest first, at most `limit`:
 * the console's throttle, counted in the database so that every instance sharing it (and one
 * restarted) counts the same tries.
 */
export async function refusedSignIns(tx: Tx, clientAddress: string, since: number, limit: number): Promise<number[]> {
  const rows = await kx(tx)
    .selectFrom("console_actions")
    .select("at")
    .where("client_address", "=", clientAddress)
    .where("action", "=", "sign-in-refused")
    .where("at", ">", since)
    .orderBy("at", "desc")
    .limit(limit)
    .execute();
  return rows.map((r) => Number(r.at));
}

/** Whether the session signed out (its cookie is then refused, though it has not expired). */
export async function sessionEnded(tx: Tx, sessionId: string): Promise<boolean> {
  const r = await kx(tx).selectFrom("console_actions").select("id").where("session_id", "=", sessionId).where("action", "=", "sign-out").executeTakeFirst();
  return r !== undefined;
}

/** A dead letter marked resolved without running it again: `skipped`, its outcome saying who and why. */
export async function resolveDead(tx: Tx, id: string, outcome: string, now: number): Promise<JobRow | undefined> {
  return kx(tx)
    .updateTable("jobs")
    .set({ state: "skipped", outcome, last_error: null, locked_by: null, lease_until: null, updated_at: now })
    .where("id", "=", id)
    .where("state", "=", "dead")
    .returningAll()
    .executeTakeFirst();
}

/**
 * The ids of the jobs a filter matches (at most `limit`), for a bulk replay: never running or
 * pending ones (a pending job runs anyway; replaying it would skip its backoff), so what a replay
 * made pending is not matched again and the next call goes on to the others.
 */
export async function matchingJobIds(tx: Tx, q: { state?: string; kind?: string; resourceId?: string; limit: number }): Promise<string[]> {
  let query = kx(tx).selectFrom("jobs").select("id").where("state", "not in", ["running", "pending"]);
  if (q.state !== undefined) query = query.where("state", "=", q.state as JobRow["state"]);
  if (q.kind !== undefined) query = query.where("kind", "=", q.kind);
  if (q.resourceId !== undefined) query = query.where("resource_id", "=", q.resourceId);
  return (await query.orderBy("created_at").limit(q.limit).execute()).map((r) => r.id);
}

export async function countMatchingJobs(tx: Tx, q: { state?: string; kind?: string; resourceId?: string }): Promise<number> {
  let query = kx(tx)
    .selectFrom("jobs")
    .select((eb) => eb.fn.countAll<number | string>().as("n"))
    .where("state", "not in", ["running", "pending"]);
  if (q.state !== undefined) query = query.where("state", "=", q.state as JobRow["state"]);
  if (q.kind !== undefined) query = query.where("kind", "=", q.kind);
  if (q.resourceId !== undefined) query = query.where("resource_id", "=", q.resourceId);
  return Number((await query.executeTakeFirst())?.n ?? 0);
}

export interface Overview {
  ordersLastHour: number;
  ordersLastDay: number;
  /** Callbacks of the last 24 h by status. */
  callbacksByStatus: { status: number; n: number }[];
  /** Inbox events of the last 24 h by state. */
  webhooksByState: { state: string; n: number }[];
  /** Unfinished work per lane: how many pending, running, dead, and the age of the oldest due. */
  lanes: { lane: string; pending: number; running: number; dead: number; oldestDueAt: number | null }[];
  latestErrors: { id: string; kind: string; lastError: string | null; updatedAt: number }[];
}

export async function overview(tx: Tx, now: number): Promise<Overview> {
  const db = kx(tx);
  const hour = now - 3_600_000;
  const day = now - 86_400_000;
  const orders = await db
    .selectFrom("local_orders")
    .select([sql<number>`sum(case when created_at >= ${hour} then 1 else 0 end)`.as("h"), sql<number>`count(*)`.as("d")])
    .where("created_at", ">=", day)
    .executeTakeFirst();
  const callbacks = await db
    .selectFrom("sp_callback_log")
    .select(["status", (eb) => eb.fn.countAll<number | string>().as("n")])
    .where("received_at", ">=", day)
    .groupBy("status")
    .orderBy("status")
    .execute();
  const webhooks = await db
    .selectFrom("jobs")
    .select(["state", (eb) => eb.fn.countAll<number | string>().as("n")])
    .where("lane", "=", "inbox")
    .where("created_at", ">=", day)
    .groupBy("state")
    .orderBy("state")
    .execute();
  const lanes = await db
    .selectFrom("jobs")
    .select([
      "lane",
      sql<number>`sum(case when state = 'pending' then 1 else 0 end)`.as("pending"),
      sql<number>`sum(case when state = 'running' then 1 else 0 end)`.as("running"),
      sql<number>`sum(case when state = 'dead' then 1 else 0 end)`.as("dead"),
      sql<number | null>`min(case when state = 'pending' and run_at <= ${now} then created_at end)`.as("oldest"),
    ])
    .where("state", "in", ["pending", "running", "dead"])
    .groupBy("lane")
    .execute();
  const errors = await db.selectFrom("jobs").select(["id", "kind", "last_error", "updated_at"]).where("state", "=", "dead").orderBy("updated_at", "desc").limit(5).execute();
  return {
    ordersLastHour: Number(orders?.h ?? 0),
    ordersLastDay: Number(orders?.d ?? 0),
    callbacksByStatus: callbacks.map((r) => ({ status: r.status, n: Number(r.n) })),
    webhooksByState: webhooks.map((r) => ({ state: r.state, n: Number(r.n) })),
    lanes: ["inbox", "writeback"].map((lane) => {
      const r = lanes.find((l) => l.lane === lane);
      return { lane, pending: Number(r?.pending ?? 0), running: Number(r?.running ?? 0), dead: Number(r?.dead ?? 0), oldestDueAt: r?.oldest == null ? null : Number(r.oldest) };
    }),
    latestErrors: errors.map((e) => ({ id: e.id, kind: e.kind, lastError: e.last_error, updatedAt: Number(e.updated_at) })),
  };
}
