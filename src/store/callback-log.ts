import { kx, transaction, type Tx } from "./handle.js";
import type { SpCallbackLogRow } from "./schema.js";

/** One Subscribe Pro callback as the admin API shows it (the row with its JSON parsed). */
export interface CallbackLogEntry {
  id: string;
  receivedAt: number;
  requestId: string;
  authenticated: boolean;
  salesOrderToken: string | null;
  customerEmail: string | null;
  status: number;
  orderNumber: string | null;
  errorCode: string | null;
  reasons: { errorMessage?: string; errorItems?: { subscriptionId?: string; message?: string }[]; errors?: { pointer: string; message: string }[] } | null;
  replayed: boolean;
  durationMs: number;
  clientAddress: string | null;
  /** The masked request body (JSON text), when kept. */
  body: string | null;
  bodyBytes: number;
}

export interface CallbackLogQuery {
  limit: number;
  /** Only callbacks answered with this status, or this class ("2xx", "4xx", "5xx"). */
  status?: number | "2xx" | "4xx" | "5xx";
  /** A sales order token, an order number or an email: any of the three that equals it. */
  search?: string;
  /** Received at or after / before (ms since the epoch). */
  from?: number;
  to?: number;
  /** false: the refused sample only; true: authenticated ones only; undefined: both. */
  authenticated?: boolean;
  /** The page after this (receivedAt, id): newest first. */
  cursor?: { receivedAt: number; id: string };
}

/**
 * Adds callbacks to the log in one transaction, then trims the refused sample to the newest
 * `sampleSize` rows: a flood of unauthenticated requests costs a bounded number of rows.
 */
export async function appendCallbacks(tx: Tx, entries: readonly CallbackLogEntry[], o: { sampleSize: number }): Promise<void> {
  if (entries.length === 0) return;
  await transaction(tx, async (t) => {
    const db = kx(t);
    await db.insertInto("sp_callback_log").values(entries.map(rowOf)).execute();
    if (entries.some((e) => !e.authenticated)) {
      const keep = db.selectFrom("sp_callback_log").select("id").where("authenticated", "=", 0).orderBy("received_at", "desc").orderBy("id", "desc").limit(o.sampleSize);
      await db.deleteFrom("sp_callback_log").where("authenticated", "=", 0).where("id", "not in", keep).execute();
    }
  });
}

export async function listCallbacks(tx: Tx, q: CallbackLogQuery): Promise<CallbackLogEntry[]> {
  let query = kx(tx).selectFrom("sp_callback_log").selectAll();
  const s = q.status;
  if (typeof s === "number") query = query.where("status", "=", s);
  else if (s !== undefined) {
    const base = Number(s[0]) * 100;
    query = query.where("status", ">=", base).where("status", "<", base + 100);
  }
  const term = q.search;
  if (term !== undefined) query = query.where((eb) => eb.or([eb("sales_order_token", "=", term), eb("order_number", "=", term), eb("customer_email", "=", term)]));
  if (q.from !== undefined) query = query.where("received_at", ">=", q.from);
  if (q.to !== undefined) query = query.where("received_at", "<", q.to);
  if (q.authenticated !== undefined) query = query.where("authenticated", "=", q.authenticated ? 1 : 0);
  const c = q.cursor;
  if (c !== undefined) query = query.where((eb) => eb.or([eb("received_at", "<", c.receivedAt), eb.and([eb("received_at", "=", c.receivedAt), eb("id", "<", c.id)])]));
  const rows = await query.orderBy("received_at", "desc").orderBy("id", "desc").limit(q.limit).execute();
  return rows.map(entryOf);
}

export async function getCallback(tx: Tx, id: string): Promise<CallbackLogEntry | undefined> {
  const row = await kx(tx).selectFrom("sp_callback_log").selectAll().where("id", "=", id).executeTakeFirst();
  return row === undefined ? undefined : entryOf(row);
}

/** The callbacks of one token, oldest first (a detail page's "every attempt of this order"). */
export async function callbacksOfToken(tx: Tx, token: string, limit = 100): Promise<CallbackLogEntry[]> {
  const rows = await kx(tx)
    .selectFrom("sp_callback_log")
    .selectAll()
    .where("sales_order_token", "=", token)
    .orderBy("received_at", "asc")
    .orderBy("id", "asc")
    .limit(limit)
    .execute();
  return rows.map(entryOf);
}

function rowOf(e: CallbackLogEntry): SpCallbackLogRow {
  return {
    id: e.id,
    received_at: e.receivedAt,
    request_id: e.requestId,
    authenticated: e.authenticated ? 1 : 0,
    sales_order_token: e.salesOrderToken,
    customer_email: e.customerEmail,
    status: e.status,
    order_number: e.orderNumber,
    error_code: e.errorCode,
    reasons: e.reasons === null ? null : JSON.stringify(e.reasons),
    replayed: e.replayed ? 1 : 0,
    duration_ms: e.durationMs,
    client_address: e.clientAddress,
    body: e.body,
    body_bytes: e.bodyBytes,
  };
}

function entryOf(r: SpCallbackLogRow): CallbackLogEntry {
  let reasons: CallbackLogEntry["reasons"] = null;
  if (r.reasons !== null) {
    try {
      reasons = JSON.parse(r.reasons) as CallbackLogEntry["reasons"];
    } catch {
      reasons = null;
    }
  }
  return {
    id: r.id,
    receivedAt: Number(r.received_at),
    requestId: r.request_id,
    authenticated: r.authenticated === 1,
    salesOrderToken: r.sales_order_token,
    customerEmail: r.customer_email,
    status: r.status,
    orderNumber: r.order_number,
    errorCode: r.error_code,
    reasons,
    replayed: r.replayed === 1,
    durationMs: Number(r.duration_ms),
    clientAddress: r.client_address,
    body: r.body,
    bodyBytes: r.body_bytes,
  };
}
