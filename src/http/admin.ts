import { bearerTokenCheck } from "../security/bearer-token.js";
import express from "express";
import { ConflictError, NotFoundError, PayloadError, UnauthorizedError, type InvalidField } from "../errors.js";
import type { ReplayResult } from "../store/jobs.js";
import { EVENT_STATES, type EventListQuery, type EventRow, type EventState } from "../store/events.js";
import type { JobAttempt } from "../store/job-attempts.js";
import type { CallbackLogEntry, CallbackLogQuery } from "../store/callback-log.js";
import type { OrderView } from "../platforms/local/orders-query.js";
import { unstorableText } from "../validation/json.js";
import { recordRoute } from "./context.js";
import { isoTimeMs } from "../validation/iso-time.js";
import { pathParam } from "./path.js";

export interface AdminDeps {
  callbacks: {
    list(q: CallbackLogQuery): Promise<CallbackLogEntry[]>;
    get(id: string): Promise<CallbackLogEntry | undefined>;
    /** Every callback with this sales order token, oldest first. */
    ofToken(token: string): Promise<CallbackLogEntry[]>;
  };
  orders: {
    list(q: { salesOrderToken?: string; source?: string; sourceOrderId?: string; limit: number; before?: number }): Promise<{ orders: OrderView[]; nextBefore: string | null }>;
    get(orderNumber: string): Promise<OrderView | undefined>;
  };
  events: {
    list(q: EventListQuery): Promise<EventRow[]>;
    get(id: string): Promise<EventRow | undefined>;
    /** Its runs, oldest first. */
    attempts(id: string): Promise<JobAttempt[]>;
    /** An ignored event has no job: not_found for a replay (the route tells the two apart). */
    replay(id: string): Promise<ReplayResult>;
    /** Ids of what a filter matches (neither running nor pending), and how many, for a bulk replay. */
    matching(q: { state?: EventState; kind?: string; resourceId?: string; limit: number }): Promise<string[]>;
    count(q: { state?: EventState; kind?: string; resourceId?: string }): Promise<number>;
    /** A dead letter marked resolved without a replay (skipped); undefined when it is not dead. */
    resolve(id: string, outcome: string): Promise<EventRow | undefined>;
  };
}

/** Reads query parameters, collecting every problem with its pointer before answering 400. */
function queryReader(query: Record<string, unknown>) {
  const fields: InvalidField[] = [];
  const known = new Set<string>();
  return {
    fields,
    int(name: string, min: number, max: number): number | undefined {
      known.add(name);
      const v = query[name];
      if (v === undefined) return undefined;
      if (typeof v !== "string" || !/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
        fields.push({ pointer: `/query/${name}`, message: `must be a whole number from ${min} to ${max}` });
        return undefined;
      }
      return Number(v);
    },
    str(name: string, allowed?: readonly string[]): string | undefined {
      known.add(name);
      const v = query[name];
      if (v === undefined) return undefined;
      if (typeof v !== "string") {
        fields.push({ pointer: `/query/${name}`, message: "must be given once" });
        return undefined;
      }
      const problem = unstorableText(v); // %00: no store can compare it (PostgreSQL refuses it)
      if (problem !== undefined) {
        fields.push({ pointer: `/query/${name}`, message: problem });
        return undefined;
      }
      if (allowed !== undefined && !allowed.includes(v)) {
        fields.push({ pointer: `/query/${name}`, message: `must be one of ${allowed.join(", ")}` });
        return undefined;
      }
      return v;
    },
    check(): void {
      // A parameter this endpoint does not read (a typo, or state[x]=…) would silently not filter.
      for (const name of Object.keys(query)) {
        if (!known.has(name)) fields.push({ pointer: `/query/${name}`, message: `is not a parameter of this endpoint (it takes ${[...known].join(", ")})` });
      }
      if (fields.length > 0) throw new PayloadError("query_invalid", "Invalid query parameters.", fields);
    },
  };
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const parseMaybe = (text: string | null): unknown => {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
};

/** A queue entry as the admin API shows it: an inbox event or a write-back job. */
export function eventView(j: EventRow, full = false): Record<string, unknown> {
  return {
    id: j.id,
    kind: j.kind,
    source: j.source,
    topic: j.topic,
    topicSource: j.topic_source,
    state: j.state,
    attempts: j.attempts,
    maxAttempts: j.max_attempts,
    resourceId: j.resource_id,
    apiVersion: j.api_version,
    outcome: j.outcome,
    lastError: j.last_error,
    nextAttemptAt: j.state === "pending" ? iso(j.run_at) : null,
    correlationId: j.correlation_id,
    createdAt: iso(j.created_at),
    updatedAt: iso(j.updated_at),
    ...(full ? { payload: parseMaybe(j.payload), body: parseMaybe(j.body) } : {}),
  };
}

/** A Subscribe Pro callback as the admin API shows it; `full` adds the masked request body. */
export function callbackView(c: CallbackLogEntry, full = false): Record<string, unknown> {
  return {
    id: c.id,
    receivedAt: iso(c.receivedAt),
    requestId: c.requestId,
    authenticated: c.authenticated,
    salesOrderToken: c.salesOrderToken,
    customerEmail: c.customerEmail,
    status: c.status,
    orderNumber: c.orderNumber,
    errorCode: c.errorCode,
    reasons: c.reasons,
    replayed: c.replayed,
    durationMs: c.durationMs,
    clientAddress: c.clientAddress,
    bodyBytes: c.bodyBytes,
    ...(full ? { body: parseMaybe(c.body) } : {}),
  };
}

export const encodeCallbackCursor = (c: CallbackLogEntry): string => Buffer.from(`cb:${c.receivedAt}:${c.id}`, "utf8").toString("base64url");
export function decodeCallbackCursor(text: string): { receivedAt: number; id: string } | undefined {
  const m = /^cb:(\d{1,15}):(.+)$/.exec(Buffer.from(text, "base64url").toString("utf8"));
  return m === null || unstorableText(m[2] as string) !== undefined ? undefined : { receivedAt: Number(m[1]), id: m[2] as string };
}

/** An ISO 8601 time of a query parameter, as ms since the epoch. */
function timeParam(q: ReturnType<typeof queryReader>, name: string): number | undefined {
  const v = q.str(name);
  if (v === undefined) return undefined;
  const ms = isoTimeMs(v);
  if (ms === undefined) {
    q.fields.push({ pointer: `/query/${name}`, message: "must be an ISO 8601 date or time, e.g. 2026-12-01 or 2026-12-01T10:00:00Z" });
    return undefined;
  }
  return ms;
}

/** One run of an event or job, as the admin API shows it. */
export function attemptView(a: JobAttempt): Record<string, unknown> {
  return {
    attempt: a.attempt,
    outcome: a.outcome,
    detail: a.detail,
    remoteStatus: a.remoteStatus,
    nextAttemptAt: a.nextRunAt === null ? null : iso(a.nextRunAt),
    startedAt: iso(a.startedAt),
    endedAt: iso(a.endedAt),
    durationMs: a.endedAt - a.startedAt,
  };
}

export const encodeCursor = (j: EventRow): string => Buffer.from(`${j.created_at}:${j.id}`, "utf8").toString("base64url");
export function decodeCursor(c: string): { createdAt: number; id: string } | undefined {
  const m = /^(\d{1,15}):(.+)$/.exec(Buffer.from(c, "base64url").toString("utf8"));
  // A forged cursor must not reach the query with a NUL or a number no bigint holds.
  return m === null || unstorableText(m[2] as string) !== undefined ? undefined : { createdAt: Number(m[1]), id: m[2] as string };
}

/** The orders list's cursor: opaque to clients, the last platformOrderId of the page inside. */
const ORDER_CURSOR = "order:";
const encodeOrderCursor = (platformOrderId: string): string => Buffer.from(`${ORDER_CURSOR}${platformOrderId}`, "utf8").toString("base64url");
function decodeOrderCursor(c: string): number | undefined {
  const m = /^order:(\d{1,15})$/.exec(Buffer.from(c, "base64url").toString("utf8"));
  return m === null || Number(m[1]) < 1 ? undefined : Number(m[1]);
}

/** `/admin/*`: local orders and the event log, behind `Authorization: Bearer <ADMIN_TOKEN>`. */
export function adminRouter(token: string, deps: AdminDeps): express.Router {
  const router = express.Router();
  const authorized = bearerTokenCheck(token);
  const authenticate: express.RequestHandler = (req, _res, next) => {
    const header = req.get("authorization");
    if (!authorized(header)) {
      throw new UnauthorizedError(
        header === undefined
          ? "The admin API needs the header Authorization: Bearer <ADMIN_TOKEN>."
          : "The admin token is wrong: send Authorization: Bearer <ADMIN_TOKEN> with the server's ADMIN_TOKEN.",
      );
    }
    next();
  };
  // Every route records its pattern, then checks the token: a 401 is counted under its route too.
  const guard = [recordRoute, authenticate];

  router.get("/callbacks", ...guard, async (req, res) => {
    const q = queryReader(req.query as Record<string, unknown>);
    const limit = q.int("limit", 1, 200) ?? 50;
    const cursorText = q.str("cursor");
    const cursor = cursorText === undefined ? undefined : decodeCallbackCursor(cursorText);
    if (cursorText !== undefined && cursor === undefined) q.fields.push({ pointer: "/query/cursor", message: "must be the nextCursor of a previous page" });
    const statusText = q.str("status");
    let status: CallbackLogQuery["status"];
    if (statusText !== undefined) {
      if (/^[245]xx$/.test(statusText)) status = statusText as "2xx" | "4xx" | "5xx";
      else if (/^[1-5]\d\d$/.test(statusText)) status = Number(statusText);
      else q.fields.push({ pointer: "/query/status", message: "must be an HTTP status (201) or a class (2xx, 4xx, 5xx)" });
    }
    const search = q.str("q");
    const from = timeParam(q, "from");
    const to = timeParam(q, "to");
    const auth = q.str("authenticated", ["true", "false"]);
    q.check();
    const rows = await deps.callbacks.list({
      limit,
      ...(status === undefined ? {} : { status }),
      ...(search === undefined || search === "" ? {} : { search }),
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      ...(auth === undefined ? {} : { authenticated: auth === "true" }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    const last = rows.at(-1);
    res.json({ callbacks: rows.map((c) => callbackView(c)), nextCursor: rows.length === limit && last !== undefined ? encodeCallbackCursor(last) : null });
  });
  router.get("/callbacks/:id", ...guard, async (req, res) => {
    const id = pathParam(req, "id");
    const c = await deps.callbacks.get(id);
    if (c === undefined) throw new NotFoundError(`No callback ${id}.`);
    const order = c.orderNumber === null ? undefined : await deps.orders.get(c.orderNumber);
    const sameToken = c.salesOrderToken === null ? [] : await deps.callbacks.ofToken(c.salesOrderToken);
    res.json({ ...callbackView(c, true), order: order ?? null, sameToken: sameToken.filter((o) => o.id !== c.id).map((o) => callbackView(o)) });
  });
  router.get("/orders", ...guard, async (req, res) => {
    const q = queryReader(req.query as Record<string, unknown>);
    const limit = q.int("limit", 1, 200) ?? 50;
    const cursorText = q.str("cursor");
    const cursor = cursorText === undefined ? undefined : decodeOrderCursor(cursorText);
    if (cursorText !== undefined && cursor === undefined) q.fields.push({ pointer: "/query/cursor", message: "must be the nextCursor of a previous page" });
    // Deprecated alias of cursor, kept for one release: the nextBefore of the previous page.
    const before = q.int("before", 1, Number.MAX_SAFE_INTEGER);
    if (cursorText !== undefined && before !== undefined) q.fields.push({ pointer: "/query/before", message: "is the deprecated form of cursor: give one of the two" });
    const token = q.str("salesOrderToken");
    const source = q.str("source", ["subscribe-pro", "recharge"]);
    const sourceOrderId = q.str("sourceOrderId");
    q.check();
    const after = cursor ?? before;
    const page = await deps.orders.list({
      limit,
      ...(after === undefined ? {} : { before: after }),
      ...(token === undefined ? {} : { salesOrderToken: token }),
      ...(source === undefined ? {} : { source }),
      ...(sourceOrderId === undefined ? {} : { sourceOrderId }),
    });
    res.json({ orders: page.orders, nextCursor: page.nextBefore === null ? null : encodeOrderCursor(page.nextBefore), nextBefore: page.nextBefore });
  });
  router.get("/orders/:orderNumber", ...guard, async (req, res) => {
    const orderNumber = pathParam(req, "orderNumber");
    const order = await deps.orders.get(orderNumber);
    if (order === undefined) throw new NotFoundError(`No order ${orderNumber}.`);
    res.json(order);
  });

  router.get("/events", ...guard, async (req, res) => {
    const q = queryReader(req.query as Record<string, unknown>);
    const limit = q.int("limit", 1, 200) ?? 50;
    const state = q.str("state", EVENT_STATES) as EventState | undefined;
    const kind = q.str("kind");
    const resourceId = q.str("resourceId");
    const topic = q.str("topic");
    const from = timeParam(q, "from");
    const to = timeParam(q, "to");
    const cursorText = q.str("cursor");
    const cursor = cursorText === undefined ? undefined : decodeCursor(cursorText);
    if (cursorText !== undefined && cursor === undefined) q.fields.push({ pointer: "/query/cursor", message: "must be the nextCursor of a previous page" });
    q.check();
    const rows = await deps.events.list({
      limit,
      ...(topic === undefined ? {} : { topic }),
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      ...(state === undefined ? {} : { state }),
      ...(kind === undefined ? {} : { kind }),
      ...(resourceId === undefined ? {} : { resourceId }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    const last = rows.at(-1);
    res.json({ events: rows.map((r) => eventView(r)), nextCursor: rows.length === limit && last !== undefined ? encodeCursor(last) : null });
  });
  router.get("/events/:id", ...guard, async (req, res) => {
    const id = pathParam(req, "id");
    const row = await deps.events.get(id);
    if (row === undefined) throw new NotFoundError(`No event ${id}.`);
    res.json({ ...eventView(row, true), attemptHistory: (await deps.events.attempts(id)).map(attemptView) });
  });
  // Bulk replay: dryRun=true answers the count only. At most 1000 a request (answered: more).
  router.post("/events/replay", ...guard, async (req, res) => {
    const q = queryReader(req.query as Record<string, unknown>);
    const state = q.str("state", EVENT_STATES) as EventState | undefined;
    const kind = q.str("kind");
    const resourceId = q.str("resourceId");
    const dryRun = q.str("dryRun", ["true", "false"]) === "true";
    q.check();
    if (state === undefined && kind === undefined && resourceId === undefined) {
      throw new PayloadError("query_invalid", "Give a filter (state, kind or resourceId): a bulk replay of everything is refused.", [
        { pointer: "/query/state", message: "a filter is required" },
      ]);
    }
    const f = { ...(state === undefined ? {} : { state }), ...(kind === undefined ? {} : { kind }), ...(resourceId === undefined ? {} : { resourceId }) };
    const matched = await deps.events.count(f);
    if (dryRun) return void res.json({ matched, replayed: 0, more: matched > 1000 });
    const ids = await deps.events.matching({ ...f, limit: 1000 });
    let replayed = 0;
    for (const id of ids) if ((await deps.events.replay(id)).kind === "replayed") replayed++;
    res.status(202).json({ matched, replayed, more: matched > ids.length });
  });
  router.post("/events/:id/resolve", ...guard, async (req, res) => {
    const id = pathParam(req, "id");
    const q = queryReader(req.query as Record<string, unknown>);
    const note = q.str("note");
    q.check();
    const r = await deps.events.resolve(id, `resolved through the admin API without a replay${note === undefined ? "" : `: ${note.slice(0, 200)}`}`);
    if (r === undefined) {
      if ((await deps.events.get(id)) === undefined) throw new NotFoundError(`No event ${id}.`);
      throw new ConflictError(`Event ${id} is not a dead letter: only a dead one can be marked resolved.`);
    }
    res.json(eventView(r));
  });
  router.post("/events/:id/replay", ...guard, async (req, res) => {
    const id = pathParam(req, "id");
    const r = await deps.events.replay(id);
    if (r.kind === "not_found") {
      const ignored = await deps.events.get(id);
      if (ignored === undefined) throw new NotFoundError(`No event ${id}.`);
      throw new ConflictError(`Event ${id} was ignored (${ignored.outcome ?? "not a handled topic"}): it is recorded, not processed, so there is nothing to replay.`);
    }
    if (r.kind === "running") throw new ConflictError(`Event ${id} is running right now; replay it after it has finished.`);
    res.status(202).json(eventView((await deps.events.get(id)) ?? { ...r.job, source: null, topic: null, topic_source: null, api_version: null, body: null }));
  });
  // Any other admin path: the token first, as for the routes, so nothing says which paths exist.
  router.use(authenticate);
  return router;
}
