import { bearerTokenCheck } from "../security/bearer-token.js";
import express from "express";
import { ConflictError, NotFoundError, PayloadError, UnauthorizedError, type InvalidField } from "../errors.js";
import type { JobListQuery, JobRow, JobState, ReplayResult } from "../store/jobs.js";
import type { OrderView } from "../platforms/local/orders-query.js";
import { unstorableText } from "../validation/json.js";
import { recordRoute } from "./context.js";
import { pathParam } from "./path.js";

export interface AdminDeps {
  orders: {
    list(q: { salesOrderToken?: string; source?: string; sourceOrderId?: string; limit: number; before?: number }): Promise<{ orders: OrderView[]; nextBefore: string | null }>;
    get(orderNumber: string): Promise<OrderView | undefined>;
  };
  events: {
    list(q: JobListQuery): Promise<JobRow[]>;
    get(id: string): Promise<JobRow | undefined>;
    replay(id: string): Promise<ReplayResult>;
  };
}

const JOB_STATES: readonly JobState[] = ["pending", "running", "done", "skipped", "ignored", "dead"];

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
export function eventView(j: JobRow, full = false): Record<string, unknown> {
  return {
    id: j.id,
    kind: j.kind,
    topic: j.topic,
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

const encodeCursor = (j: JobRow): string => Buffer.from(`${j.created_at}:${j.id}`, "utf8").toString("base64url");
function decodeCursor(c: string): { createdAt: number; id: string } | undefined {
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
    const state = q.str("state", JOB_STATES) as JobState | undefined;
    const kind = q.str("kind");
    const resourceId = q.str("resourceId");
    const cursorText = q.str("cursor");
    const cursor = cursorText === undefined ? undefined : decodeCursor(cursorText);
    if (cursorText !== undefined && cursor === undefined) q.fields.push({ pointer: "/query/cursor", message: "must be the nextCursor of a previous page" });
    q.check();
    const rows = await deps.events.list({
      limit,
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
    res.json(eventView(row, true));
  });
  router.post("/events/:id/replay", ...guard, async (req, res) => {
    const id = pathParam(req, "id");
    const r = await deps.events.replay(id);
    if (r.kind === "not_found") throw new NotFoundError(`No event ${id}.`);
    if (r.kind === "running") throw new ConflictError(`Event ${id} is running right now; replay it after it has finished.`);
    res.status(202).json(eventView(r.job));
  });
  // Any other admin path: the token first, as for the routes, so nothing says which paths exist.
  router.use(authenticate);
  return router;
}
