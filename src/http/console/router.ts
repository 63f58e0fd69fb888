import express, { type NextFunction, type Request, type Response } from "express";
import { PayloadError, PayloadTooLargeError } from "../../errors.js";
import { consoleSessions } from "../../security/console-session.js";
import type { ConsoleAction, Overview } from "../../store/console.js";
import { EVENT_STATES } from "../../store/events.js";
import { isDateOnly, isoTimeMs } from "../../validation/iso-time.js";
import type { OrderView } from "../../platforms/local/orders-query.js";
import { bearerTokenCheck } from "../../security/bearer-token.js";
import { decodeCallbackCursor, decodeCursor, encodeCallbackCursor, encodeCursor, type AdminDeps } from "../admin.js";
import { unstorableText } from "../../validation/json.js";
import { CSS, html, page, raw, table, time, type Html } from "./html.js";

/** What the console reads and does: the admin API's own functions, and what only the console shows. */
export interface ConsoleDeps extends Pick<AdminDeps, "callbacks" | "orders" | "events"> {
  adminToken: string;
  clock: () => number;
  overview(): Promise<Overview>;
  /** What this instance knows of Recharge: its rate limit (with an API token) and the last webhook check (with PUBLIC_URL). */
  recharge(): Promise<{
    rateLimit?: { waitMs: number; burst: number; perSecond: number };
    webhooks?: { ok: boolean; problems: { topic: string; problem: string }[] };
  }>;
  actions: {
    record(a: Omit<ConsoleAction, "id" | "at">): Promise<void>;
    list(limit: number): Promise<ConsoleAction[]>;
    ended(sessionId: string): Promise<boolean>;
    /** When the sign-ins refused from an address after `since` were (newest first, at most `limit`), as every instance recorded them. */
    refusedSignIns(clientAddress: string, since: number, limit: number): Promise<number[]>;
  };
}

const COOKIE = "ob_console";
const TTL_MS = 8 * 3_600_000;
const BULK_MAX = 1000;
/** Rows a list page shows; "Next page" goes on from the last one. */
const PAGE = 50;
const SIGN_IN_FAILURES = 5;
/** Sign-ins of one address waiting their turn on an instance before more are refused (429). */
const SIGN_IN_WAITING = 10;
const FORM_LIMIT = "16kb";
const TOPICS = ["order/created", "order/processed", "order/updated", "checkout/processed"] as const;
// No script at all, styles from our own file, forms to ourselves only, never in a frame.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

type Session = { sessionId: string; csrf: string };
const session = (res: Response): Session => res.locals["consoleSession"] as Session;

function cookieOf(req: Request, name: string): string | undefined {
  for (const part of (req.get("cookie") ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** A query or form field as one string (or undefined), never a value no store can compare. */
function field(src: unknown, name: string): string | undefined {
  const v = (src as Record<string, unknown> | undefined)?.[name];
  if (typeof v !== "string" || v === "" || v.length > 256 || unstorableText(v) !== undefined) return undefined;
  return v;
}
const oneOf = <T extends string>(v: string | undefined, values: readonly T[]): T | undefined =>
  v !== undefined && (values as readonly string[]).includes(v) ? (v as T) : undefined;
/** A list's from/to fields as ms since the epoch; a date alone as "to" means through that day. */
function dateRange(src: unknown): { from: number | undefined; to: number | undefined } {
  const toText = field(src, "to");
  const to = isoTimeMs(toText);
  return { from: isoTimeMs(field(src, "from")), to: to !== undefined && isDateOnly(toText) ? to + 86_400_000 : to };
}
const stateClass = (s: string): string => (s === "dead" || s === "retry" ? "bad" : s === "done" ? "ok" : "");
const statusClass = (n: number): string => (n >= 400 && n !== 409 ? "bad" : n < 300 ? "ok" : "");
const pretty = (text: string | null): string => {
  if (text === null) return "";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
};

/**
 * The operator console at /console (with ADMIN_TOKEN): server-rendered pages that read without
 * JavaScript, a session cookie after signing in with the admin token, a CSRF token in every form
 * that changes something, every action recorded.
 */
export function consoleRouter(d: ConsoleDeps): express.Router {
  const router = express.Router();
  const sessions = consoleSessions(d.adminToken, { ttlMs: TTL_MS });
  const tokenOk = bearerTokenCheck(d.adminToken);
  // A form too large, with too many fields, or not decodable is the sender's mistake: a 4xx, as the
  // JSON routes answer it, never the parser's error as a 500.
  const parseForm = express.urlencoded({ extended: false, limit: FORM_LIMIT, parameterLimit: 50 });
  const form = (req: Request, res: Response, next: NextFunction): void =>
    parseForm(req, res, (err?: unknown) => {
      if (err === undefined || err === null) return next();
      const type = (err as { type?: string }).type;
      if (type === "entity.too.large") return next(new PayloadTooLargeError(`The form is larger than ${FORM_LIMIT}.`));
      if (type === "parameters.too.many") return next(new PayloadError("form_invalid", "The form has too many fields."));
      return next(new PayloadError("form_invalid", `The form could not be read: ${(err as Error).message}`));
    });
  const send = (res: Response, status: number, body: string): void => {
    res.status(status).set({ "Content-Security-Policy": CSP, "Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8" }).send(body);
  };
  const secure = (req: Request): boolean => req.secure;

  router.get("/console.css", (_req, res) => {
    res.set({ "Content-Type": "text/css; charset=utf-8", "Cache-Control": "max-age=300", "Content-Security-Policy": CSP }).send(CSS);
  });

  const signInPage = (message?: string): string =>
    page(
      { title: "Sign in" },
      html`${message === undefined ? raw("") : html`<p class="notice bad" role="alert">${message}</p>`}
        <form method="post" action="/console/sign-in">
          <p>
            <label>Admin token <input type="password" name="token" autocomplete="current-password" required autofocus /></label>
          </p>
          <p><button type="submit">Sign in</button></p>
        </form>
        <p class="muted">The token is the service's <code>ADMIN_TOKEN</code>. The session lasts 8 hours.</p>`,
    );
  router.get("/sign-in", (_req, res) => send(res, 200, signInPage()));
  // Guessing the token: at most SIGN_IN_FAILURES wrong ones per address a minute, counted from the
  // action log in the database, so every instance that shares it (and one restarted) counts the
  // same tries. An address's sign-ins run one at a time on an instance, so a burst of tries sent
  // together cannot all pass the count before any is recorded; more than SIGN_IN_WAITING of them
  // waiting are refused at once, and other addresses never wait behind them.
  const queues = new Map<string, { tail: Promise<unknown>; waiting: number }>();
  const oneAtATime = async <T>(address: string, fn: () => Promise<T>): Promise<T | undefined> => {
    let q = queues.get(address);
    if (q === undefined) queues.set(address, (q = { tail: Promise.resolve(), waiting: 0 }));
    if (q.waiting >= SIGN_IN_WAITING) return undefined;
    q.waiting++;
    const run = q.tail.then(fn, fn);
    q.tail = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      if (--q.waiting === 0) queues.delete(address);
    }
  };
  const tooMany = (res: Response, retryAfterS: number): void => {
    res.set("Retry-After", String(Math.max(1, Math.ceil(retryAfterS))));
    send(res, 429, signInPage("Too many wrong tokens from this address: wait a minute."));
  };
  router.post("/sign-in", form, async (req, res) => {
    // As the action log stores it (an address, or what a trusted proxy said it was), cut short.
    const address = (req.ip ?? "(unknown)").slice(0, 64);
    const signedIn = await oneAtATime(address, async () => {
      const now = d.clock();
      // Newest first: the address may try again once the SIGN_IN_FAILURES-th newest is a minute old.
      const recent = await d.actions.refusedSignIns(address, now - 60_000, SIGN_IN_FAILURES);
      const oldestThatCounts = recent[SIGN_IN_FAILURES - 1];
      if (oldestThatCounts !== undefined) {
        tooMany(res, (60_000 - (now - oldestThatCounts)) / 1000);
        return false;
      }
      const token = (req.body as Record<string, unknown> | undefined)?.["token"];
      if (typeof token !== "string" || !tokenOk(`Bearer ${token}`)) {
        await d.actions.record({ sessionId: "-", action: "sign-in-refused", target: null, detail: "a wrong admin token", clientAddress: address });
        send(res, 401, signInPage("That is not the admin token."));
        return false;
      }
      return true;
    });
    if (signedIn === undefined) return tooMany(res, 60);
    if (!signedIn) return;
    const s = sessions.issue(d.clock());
    await d.actions.record({ sessionId: s.sessionId, action: "sign-in", target: null, detail: null, clientAddress: req.ip ?? null });
    res.cookie(COOKIE, s.cookie, { httpOnly: true, sameSite: "strict", secure: secure(req), path: "/console", maxAge: TTL_MS });
    res.redirect(303, "/console");
  });

  // Everything below needs a session; a state-changing request also its CSRF token.
  router.use(async (req: Request, res: Response, next: NextFunction) => {
    const s = sessions.verify(cookieOf(req, COOKIE), d.clock());
    if (s === undefined || (await d.actions.ended(s.sessionId))) {
      if (req.method === "GET") return res.redirect(303, "/console/sign-in");
      return send(res, 401, signInPage("Your session has ended: sign in again."));
    }
    res.locals["consoleSession"] = { sessionId: s.sessionId, csrf: sessions.csrfToken(s.sessionId) } satisfies Session;
    next();
  });
  const csrf = [
    form,
    (req: Request, res: Response, next: NextFunction): void => {
      if (!sessions.checkCsrf(session(res).sessionId, (req.body as Record<string, unknown> | undefined)?.["csrf"])) {
        send(
          res,
          403,
          page(
            { title: "Refused", csrf: session(res).csrf },
            html`<p class="notice bad" role="alert">This request did not carry the console's CSRF token, so it was refused and nothing changed. Use the console's own buttons.</p>`,
          ),
        );
        return;
      }
      next();
    },
  ];
  const record = (req: Request, res: Response, action: string, target: string | null, detail: string | null): Promise<void> =>
    d.actions.record({ sessionId: session(res).sessionId, action, target, detail, clientAddress: req.ip ?? null });

  router.post("/sign-out", ...csrf, async (req, res) => {
    await record(req, res, "sign-out", null, null);
    res.clearCookie(COOKIE, { path: "/console" });
    res.redirect(303, "/console/sign-in");
  });

  router.get("/", async (_req, res) => {
    const o = await d.overview();
    const rc = await d.recharge();
    const now = d.clock();
    const age = (ms: number | null): string => (ms === null ? "–" : `${Math.round((now - ms) / 1000)} s`);
    const banner =
      rc.webhooks === undefined || rc.webhooks.ok
        ? raw("")
        : html`<div class="notice bad" role="alert" data-testid="webhook-banner">
            <strong>Recharge webhook subscriptions need attention:</strong> ${rc.webhooks.problems.map((p) => `${p.topic}: ${p.problem}`).join("; ")}. Run
            <code>orderbridge recharge webhooks sync</code> (or set RECHARGE_WEBHOOKS_AUTOSYNC=true); the sweep places what is missed meanwhile.
          </div>`;
    const body = html`${banner}
      <p class="muted">Refreshed every 10 seconds.</p>
      <div class="cards">
        <div class="card">
          <h2>Orders placed</h2>
          <p>
            <span class="big" data-testid="orders-hour">${o.ordersLastHour}</span> last hour · <span data-testid="orders-day">${o.ordersLastDay}</span> last 24 h (local platform)
          </p>
        </div>
        <div class="card">
          <h2>Recharge API</h2>
          <p>
            ${
              rc.rateLimit === undefined
                ? "No API token: write-back off."
                : html`<span data-testid="rate-wait">${rc.rateLimit.waitMs === 0 ? "a call may go now" : `next call in ${Math.ceil(rc.rateLimit.waitMs / 1000)} s`}</span> (bucket
                    of ${rc.rateLimit.burst}, ${rc.rateLimit.perSecond}/s)`
            }
          </p>
          <p>
            ${
              rc.webhooks === undefined
                ? "Webhook subscriptions: not checked (set PUBLIC_URL)."
                : rc.webhooks.ok
                  ? html`Webhook subscriptions: <span class="ok">ok</span>`
                  : html`Webhook subscriptions: <span class="bad">problem</span>`
            }
          </p>
        </div>
        <div class="card">
          <h2>Dead letters</h2>
          <p><a class="big" href="/console/events?state=dead" data-testid="dead">${o.lanes.reduce((n, l) => n + l.dead, 0)}</a></p>
        </div>
      </div>
      ${table(
        "Queues",
        ["lane", "pending", "running", "dead", "oldest due waiting"],
        o.lanes.map((l) => [html`${l.lane}`, html`${l.pending}`, html`${l.running}`, html`${l.dead}`, html`${age(l.oldestDueAt)}`]),
      )}
      ${table(
        "Callbacks, last 24 h",
        ["status", "count"],
        o.callbacksByStatus.map((c) => [html`<a href="/console/callbacks?status=${c.status}" class="${statusClass(c.status)}">${c.status}</a>`, html`${c.n}`]),
        "No callbacks in the last 24 hours.",
      )}
      ${table(
        "Recharge webhooks, last 24 h",
        ["state", "count"],
        o.webhooksByState.map((w) => [html`<a href="/console/events?kind=recharge.webhook&amp;state=${w.state}" class="${stateClass(w.state)}">${w.state}</a>`, html`${w.n}`]),
        "No webhooks in the last 24 hours.",
      )}
      ${table(
        "Latest errors",
        ["event", "kind", "when", "error"],
        o.latestErrors.map((e) => [html`<a href="/console/events/${encodeURIComponent(e.id)}">${e.id}</a>`, html`${e.kind}`, time(e.updatedAt), html`${e.lastError}`]),
        "No dead letters.",
      )}`;
    send(res, 200, page({ title: "Overview", csrf: session(res).csrf, refreshSeconds: 10, current: "overview" }, body));
  });

  router.get("/callbacks", async (req, res) => {
    const q = req.query;
    const statusText = field(q, "status");
    const status = statusText !== undefined && /^([1-5]\d\d)$/.test(statusText) ? Number(statusText) : oneOf(statusText, ["2xx", "4xx", "5xx"] as const);
    const search = field(q, "q");
    const { from, to } = dateRange(q);
    const cursorText = field(q, "cursor");
    const cursor = cursorText === undefined ? undefined : decodeCallbackCursor(cursorText);
    const rows = await d.callbacks.list({
      limit: PAGE,
      ...(cursor === undefined ? {} : { cursor }),
      ...(status === undefined ? {} : { status }),
      ...(search === undefined ? {} : { search }),
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
    });
    const body = html`<form class="filters" method="get" action="/console/callbacks" role="search">
        <label>Status <input name="status" value="${statusText}" placeholder="409 or 4xx" size="6" /></label>
        <label>Token, order number or email <input name="q" value="${search}" type="search" /></label>
        <label>From <input name="from" type="date" value="${field(q, "from")}" /></label><label>To <input name="to" type="date" value="${field(q, "to")}" /></label>
        <button type="submit">Filter</button>
      </form>
      ${table(
        `${rows.length} callback(s), newest first`,
        ["received", "status", "token", "order", "ms", "reason"],
        rows.map((c) => [
          html`<a href="/console/callbacks/${encodeURIComponent(c.id)}">${time(c.receivedAt)}</a>`,
          html`<span class="${statusClass(c.status)}">${c.status}</span>${c.authenticated ? "" : " (refused)"}`,
          html`${c.salesOrderToken}`,
          c.orderNumber === null ? html`` : html`<a href="/console/orders/${encodeURIComponent(c.orderNumber)}">${c.orderNumber}</a>`,
          html`${c.durationMs}`,
          html`${c.reasons?.errorMessage ?? c.reasons?.errorItems?.[0]?.message ?? (c.replayed ? "stored answer sent again" : "")}`,
        ]),
        "No callback matches.",
      )}
      ${nextPage(req, rows.length === PAGE ? rows.at(-1) : undefined, encodeCallbackCursor)}`;
    send(res, 200, page({ title: "Callbacks", csrf: session(res).csrf, current: "callbacks" }, body));
  });

  router.get("/callbacks/:id", async (req, res) => {
    const c = await d.callbacks.get(String(req.params["id"]));
    if (c === undefined) return send(res, 404, page({ title: "Not found", csrf: session(res).csrf }, html`<p>No such callback.</p>`));
    const order = c.orderNumber === null ? undefined : await d.orders.get(c.orderNumber);
    const others = c.salesOrderToken === null ? [] : (await d.callbacks.ofToken(c.salesOrderToken)).filter((o) => o.id !== c.id);
    const body = html`<dl>
        <dt>Received</dt>
        <dd>${time(c.receivedAt)}</dd>
        <dt>Status</dt>
        <dd data-testid="status">${c.status}${c.replayed ? " (stored answer sent again)" : ""}</dd>
        <dt>Token</dt>
        <dd data-testid="token">${c.salesOrderToken}</dd>
        <dt>Order</dt>
        <dd>${c.orderNumber === null ? "–" : html`<a href="/console/orders/${encodeURIComponent(c.orderNumber)}">${c.orderNumber}</a>`}</dd>
        <dt>Error code</dt>
        <dd>${c.errorCode ?? "–"}</dd>
        <dt>Request id</dt>
        <dd>${c.requestId}</dd>
        <dt>Client</dt>
        <dd>${c.clientAddress}</dd>
        <dt>Took</dt>
        <dd>${c.durationMs} ms</dd>
      </dl>
      ${
        c.reasons === null
          ? raw("")
          : html`<h2>Reasons</h2>
              <pre>${JSON.stringify(c.reasons, null, 2)}</pre>`
      }
      <h2>Request body (masked)</h2>
      ${c.body === null ? html`<p class="muted">Not kept (not JSON, or refused before its signature was accepted).</p>` : html`<pre data-testid="body">${pretty(c.body)}</pre>`}
      ${
        order === undefined
          ? raw("")
          : html`<h2>Order</h2>
              ${orderLines(order)}`
      }
      ${table(
        "Other callbacks with this token",
        ["received", "status", "order"],
        others.map((o) => [html`<a href="/console/callbacks/${encodeURIComponent(o.id)}">${time(o.receivedAt)}</a>`, html`${o.status}`, html`${o.orderNumber}`]),
        "None.",
      )}`;
    send(res, 200, page({ title: `Callback ${c.salesOrderToken ?? c.id}`, csrf: session(res).csrf, current: "callbacks" }, body));
  });

  const eventFilter = (src: unknown) => {
    const state = oneOf(field(src, "state"), EVENT_STATES);
    const kind = field(src, "kind");
    const resourceId = field(src, "resource");
    return { ...(state === undefined ? {} : { state }), ...(kind === undefined ? {} : { kind }), ...(resourceId === undefined ? {} : { resourceId }) };
  };
  const filterQuery = (f: ReturnType<typeof eventFilter>): string =>
    new URLSearchParams({ ...(f.state ? { state: f.state } : {}), ...(f.kind ? { kind: f.kind } : {}), ...(f.resourceId ? { resource: f.resourceId } : {}) }).toString();

  router.get("/events", async (req, res) => {
    const f = eventFilter(req.query);
    const cursorText = field(req.query, "cursor");
    const cursor = cursorText === undefined ? undefined : decodeCursor(cursorText);
    const topic = oneOf(field(req.query, "topic"), TOPICS);
    const { from, to } = dateRange(req.query);
    const rows = await d.events.list({
      limit: PAGE,
      ...f,
      ...(topic === undefined ? {} : { topic }),
      ...(from === undefined ? {} : { from }),
      ...(to === undefined ? {} : { to }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    const s = session(res);
    const body = html`<form class="filters" method="get" action="/console/events" role="search">
        <label
          >State
          <select name="state">
            <option value="">any</option>
            ${EVENT_STATES.map((st) => html`<option${raw(f.state === st ? " selected" : "")}>${st}</option>`)}
          </select></label
        >
        <label
          >Kind
          <select name="kind">
            <option value="">any</option>
            ${["recharge.webhook", "recharge.order_writeback", "recharge.charge_writeback"].map((k) => html`<option${raw(f.kind === k ? " selected" : "")}>${k}</option>`)}
          </select></label
        >
        <label
          >Topic
          <select name="topic">
            <option value="">any</option>
            ${TOPICS.map((tp) => html`<option${raw(topic === tp ? " selected" : "")}>${tp}</option>`)}
          </select></label
        >
        <label>Recharge order id <input name="resource" value="${f.resourceId}" type="search" /></label>
        <label>From <input name="from" type="date" value="${field(req.query, "from")}" /></label><label>To <input name="to" type="date" value="${field(req.query, "to")}" /></label>
        <button type="submit">Filter</button>
      </form>
      <form method="post" action="/console/events/replay-matching" class="filters">
        <input type="hidden" name="csrf" value="${s.csrf}" />
        ${f.state === undefined ? raw("") : html`<input type="hidden" name="state" value="${f.state}" />`}${f.kind === undefined ? raw("") : html`<input type="hidden" name="kind" value="${f.kind}" />`}${f.resourceId === undefined ? raw("") : html`<input type="hidden" name="resource" value="${f.resourceId}" />`}
        <button type="submit">Replay all that match…</button>
      </form>
      ${table(
        `${rows.length} event(s), newest first`,
        ["event", "kind", "state", "attempts", "resource", "created", "next attempt", "outcome / last error"],
        rows.map((j) => [
          html`<a href="/console/events/${encodeURIComponent(j.id)}">${j.id}</a>`,
          html`${j.kind}${j.topic === null ? "" : ` (${j.topic})`}`,
          html`<span class="${stateClass(j.state)}">${j.state}</span>`,
          html`${j.attempts}/${j.max_attempts}`,
          html`${j.resource_id}`,
          time(j.created_at),
          j.state === "pending" ? time(j.run_at) : html`–`,
          html`${j.last_error ?? j.outcome}`,
        ]),
        "No event matches.",
      )}
      ${nextPage(req, rows.length === PAGE ? rows.at(-1) : undefined, encodeCursor)}`;
    send(res, 200, page({ title: "Events", csrf: s.csrf, current: "events" }, body));
  });

  // A bulk replay asks first: the count, then a confirmation (the same filter, confirm=yes).
  router.post("/events/replay-matching", ...csrf, async (req, res) => {
    const f = eventFilter(req.body);
    const s = session(res);
    if (Object.keys(f).length === 0) {
      return send(
        res,
        400,
        page(
          { title: "Choose a filter", csrf: s.csrf, current: "events" },
          html`<p class="notice bad" role="alert">Filter the list first (a state, a kind or a Recharge order): replaying everything is refused.</p>
            <p><a href="/console/events">Back to the events</a></p>`,
        ),
      );
    }
    if (field(req.body, "confirm") !== "yes") {
      const n = await d.events.count(f);
      const body = html`<p data-testid="bulk-count">
          ${n} event(s) match${Object.keys(f).length === 0 ? " (no filter: every event that is not running)" : ""}: ${filterQuery(f) || "all"}.
          ${n > BULK_MAX ? `The first ${BULK_MAX} will be replayed.` : ""}
        </p>
        <form method="post" action="/console/events/replay-matching">
          <input type="hidden" name="csrf" value="${s.csrf}" /><input type="hidden" name="confirm" value="yes" />
          ${f.state === undefined ? raw("") : html`<input type="hidden" name="state" value="${f.state}" />`}${f.kind === undefined ? raw("") : html`<input type="hidden" name="kind" value="${f.kind}" />`}${f.resourceId === undefined ? raw("") : html`<input type="hidden" name="resource" value="${f.resourceId}" />`}
          <button type="submit">Replay ${n > BULK_MAX ? BULK_MAX : n} event(s)</button> <a href="/console/events?${filterQuery(f)}">Cancel</a>
        </form>`;
      return send(res, 200, page({ title: "Replay all that match?", csrf: s.csrf, current: "events" }, body));
    }
    const ids = await d.events.matching({ ...f, limit: BULK_MAX });
    let replayed = 0;
    for (const id of ids) if ((await d.events.replay(id)).kind === "replayed") replayed++;
    await record(req, res, "bulk-replay", filterQuery(f) || "all", `${replayed} of ${ids.length} replayed`);
    res.redirect(303, `/console/events?${filterQuery({ ...f, state: "pending" } as ReturnType<typeof eventFilter>)}&done=${replayed}`);
  });

  router.get("/events/:id", async (req, res) => {
    const id = String(req.params["id"]);
    const j = await d.events.get(id);
    const s = session(res);
    if (j === undefined) return send(res, 404, page({ title: "Not found", csrf: s.csrf }, html`<p>No such event.</p>`));
    const attempts = await d.events.attempts(id);
    const writeBacks = j.resource_id !== null ? (await d.events.list({ limit: 20, resourceId: j.resource_id })).filter((w) => w.id !== j.id) : [];
    const orders = j.resource_id === null ? [] : (await d.orders.list({ limit: 5, sourceOrderId: j.resource_id })).orders;
    const NOTICES: Record<string, string> = {
      replayed: "Replayed: it runs again from the start.",
      running: "It is running right now; replay it after it has finished.",
      not_found: "No such event, or an ignored one (nothing to replay).",
      resolved: "Marked resolved.",
      not_dead: "Only a dead letter can be marked resolved.",
    };
    const done = NOTICES[field(req.query, "done") ?? ""];
    const body = html`${done === undefined ? raw("") : html`<p class="notice" role="status">${done}</p>`}
      <dl>
        <dt>Kind</dt>
        <dd>${j.kind}${j.topic === null ? "" : ` (${j.topic})`}</dd>
        ${
          j.source === null
            ? raw("")
            : html`<dt>Arrived</dt>
                <dd>
                  ${j.source === "sweep" ? "found by the Recharge sweep (no webhook placed it)" : `as a webhook${j.topic_source === null ? "" : `, topic from the ${j.topic_source === "path" ? "URL" : j.topic_source === "header" ? "X-Recharge-Topic header" : "body"}`}`}
                </dd>`
        }
        <dt>State</dt>
        <dd data-testid="state" class="${stateClass(j.state)}">${j.state}</dd>
        <dt>Attempts</dt>
        <dd>${j.attempts} of ${j.max_attempts}</dd>
        <dt>Recharge order</dt>
        <dd>${j.resource_id ?? "–"}</dd>
        <dt>Created</dt>
        <dd>${time(j.created_at)}</dd>
        <dt>Next attempt</dt>
        <dd>${j.state === "pending" ? time(j.run_at) : "–"}</dd>
        <dt>Outcome</dt>
        <dd>${j.outcome ?? "–"}</dd>
        <dt>Last error</dt>
        <dd>${j.last_error ?? "–"}</dd>
        <dt>Request id</dt>
        <dd>${j.correlation_id ?? "–"}</dd>
      </dl>
      <p>
        ${
          j.state === "running"
            ? html`<span class="muted">Running now: it can be replayed once it has finished.</span>`
            : j.state === "ignored"
              ? html`<span class="muted">Ignored: recorded as it came, not processed; there is nothing to replay.</span>`
              : html`<form method="post" action="/console/events/${encodeURIComponent(j.id)}/replay" class="inline">
                  <input type="hidden" name="csrf" value="${s.csrf}" /><button type="submit">Replay</button>
                </form>`
        }
        ${
          j.state === "dead"
            ? html` <form method="post" action="/console/events/${encodeURIComponent(j.id)}/resolve" class="inline">
                <input type="hidden" name="csrf" value="${s.csrf}" /><label class="inline">Note <input name="note" maxlength="200" /></label>
                <button type="submit">Mark resolved without replaying</button>
              </form>`
            : raw("")
        }
      </p>
      ${table(
        "Attempts",
        ["#", "outcome", "remote status", "started", "ms", "next attempt", "detail"],
        attempts.map((a) => [
          html`${a.attempt}`,
          html`<span class="${stateClass(a.outcome)}">${a.outcome}</span>`,
          html`${a.remoteStatus ?? "–"}`,
          time(a.startedAt),
          html`${a.endedAt - a.startedAt}`,
          time(a.nextRunAt),
          html`${a.detail}`,
        ]),
        "Not run yet.",
      )}
      ${orders.map(
        (o) =>
          html`<h2>Order placed</h2>
            ${orderLines(o)}`,
      )}
      ${table(
        "Other events and write-backs of this Recharge order",
        ["event", "kind", "state", "outcome / last error"],
        writeBacks.map((w) => [html`<a href="/console/events/${encodeURIComponent(w.id)}">${w.id}</a>`, html`${w.kind}`, html`${w.state}`, html`${w.last_error ?? w.outcome}`]),
        "None.",
      )}
      ${
        j.body === null
          ? raw("")
          : html`<h2>Body as received</h2>
              <pre>${pretty(j.body)}</pre>`
      }
      <h2>Payload</h2>
      <pre>${pretty(j.payload)}</pre>`;
    send(res, 200, page({ title: `Event ${j.id}`, csrf: s.csrf, current: "events" }, body));
  });

  router.post("/events/:id/replay", ...csrf, async (req, res) => {
    const id = String(req.params["id"]);
    const r = await d.events.replay(id);
    await record(req, res, "replay", id, r.kind);
    res.redirect(303, `/console/events/${encodeURIComponent(id)}?done=${r.kind}`);
  });
  router.post("/events/:id/resolve", ...csrf, async (req, res) => {
    const id = String(req.params["id"]);
    const note = field(req.body, "note");
    const r = await d.events.resolve(id, `resolved in the console without a replay${note === undefined ? "" : `: ${note}`}`);
    await record(req, res, "resolve", id, r === undefined ? "not dead" : (note ?? null));
    res.redirect(303, `/console/events/${encodeURIComponent(id)}?done=${r === undefined ? "not_dead" : "resolved"}`);
  });

  router.get("/orders", async (req, res) => {
    const token = field(req.query, "q");
    const byToken = token === undefined ? undefined : await d.orders.list({ limit: 100, salesOrderToken: token });
    const bySource = token === undefined ? undefined : await d.orders.list({ limit: 100, sourceOrderId: token });
    const byNumber = token === undefined ? undefined : await d.orders.get(token);
    const beforeText = field(req.query, "before");
    const before = beforeText !== undefined && /^\d{1,15}$/.test(beforeText) ? Number(beforeText) : undefined;
    const newest = token === undefined ? await d.orders.list({ limit: PAGE, ...(before === undefined ? {} : { before }) }) : undefined;
    const list =
      newest !== undefined
        ? newest.orders
        : [...new Map([...(byToken?.orders ?? []), ...(bySource?.orders ?? []), ...(byNumber === undefined ? [] : [byNumber])].map((o) => [o.orderNumber, o])).values()];
    const body = html`<form class="filters" method="get" action="/console/orders" role="search">
        <label>Order number, token or Recharge order id <input name="q" type="search" value="${token}" /></label><button type="submit">Search</button>
      </form>
      ${table(
        `${list.length} order(s) of the local platform, newest first`,
        ["order", "source", "source order", "created", "items", "total"],
        list.map((o) => [
          html`<a href="/console/orders/${encodeURIComponent(o.orderNumber)}">${o.orderNumber}</a>`,
          html`${o.source}`,
          html`${o.sourceOrderId}`,
          html`${o.createdAt}`,
          html`${o.items.length}`,
          html`${o.total} ${o.currency}`,
        ]),
        "No order matches (orders placed on another platform are in that platform; see Callbacks and Events).",
      )}
      ${newest?.nextBefore == null ? raw("") : html`<p><a href="/console/orders?before=${newest.nextBefore}" rel="next">Next page</a></p>`}`;
    send(res, 200, page({ title: "Orders", csrf: session(res).csrf, current: "orders" }, body));
  });
  router.get("/orders/:n", async (req, res) => {
    const o = await d.orders.get(String(req.params["n"]));
    if (o === undefined) return send(res, 404, page({ title: "Not found", csrf: session(res).csrf }, html`<p>No such order.</p>`));
    const callbacks = o.salesOrderToken === null ? [] : await d.callbacks.ofToken(o.salesOrderToken);
    const events = o.source === "recharge" && o.sourceOrderId !== null ? await d.events.list({ limit: 20, resourceId: o.sourceOrderId }) : [];
    const body = html`${orderLines(o)}
    ${table(
      "Callbacks",
      ["received", "status"],
      callbacks.map((c) => [html`<a href="/console/callbacks/${encodeURIComponent(c.id)}">${time(c.receivedAt)}</a>`, html`${c.status}`]),
      "None.",
    )}
    ${table(
      "Recharge events and write-backs",
      ["event", "kind", "state"],
      events.map((e) => [html`<a href="/console/events/${encodeURIComponent(e.id)}">${e.id}</a>`, html`${e.kind}`, html`${e.state}`]),
      "None.",
    )}`;
    send(res, 200, page({ title: `Order ${o.orderNumber}`, csrf: session(res).csrf, current: "orders" }, body));
  });

  router.get("/actions", async (_req, res) => {
    const list = await d.actions.list(200);
    const body = table(
      "What operators did, newest first",
      ["when", "action", "target", "result", "session", "from"],
      list.map((a) => [
        time(a.at),
        html`${a.action}`,
        html`${a.target}`,
        html`${a.detail}`,
        html`${a.sessionId.slice(0, 12)}…${a.sessionId === session(res).sessionId ? " (this one)" : ""}`,
        html`${a.clientAddress}`,
      ]),
      "No actions yet.",
    );
    send(res, 200, page({ title: "Actions", csrf: session(res).csrf, current: "actions" }, body));
  });

  router.use((_req: Request, res: Response) => send(res, 404, page({ title: "Not found", csrf: session(res).csrf }, html`<p>No such console page.</p>`)));
  return router;
}

/** The link to the page after this one: the same filters, the cursor of its last row. */
function nextPage<T>(req: Request, last: T | undefined, encode: (row: T) => string): Html {
  if (last === undefined) return raw("");
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(req.query)) if (typeof v === "string" && k !== "cursor" && k !== "done") params.set(k, v);
  params.set("cursor", encode(last));
  return html`<p><a href="${req.baseUrl}${req.path}?${params.toString()}" rel="next">Next page</a></p>`;
}

function orderLines(o: OrderView): Html {
  return html`<dl>
      <dt>Order</dt>
      <dd><a href="/console/orders/${encodeURIComponent(o.orderNumber)}" data-testid="order-number">${o.orderNumber}</a></dd>
      <dt>Source</dt>
      <dd>${o.source} ${o.sourceOrderId ?? ""}</dd>
      <dt>Customer</dt>
      <dd>${o.customer.email}</dd>
      <dt>Created</dt>
      <dd>${o.createdAt}</dd>
      <dt>Total</dt>
      <dd>${o.total} ${o.currency} (subtotal ${o.subtotal}, shipping ${o.shippingTotal}, tax ${o.taxTotal}, discount ${o.discountTotal})</dd>
    </dl>
    ${table(
      "Lines",
      ["item id", "sku", "name", "qty", "unit price", "tax", "line total"],
      o.items.map((i) => [
        html`${i.platformOrderItemId}`,
        html`${i.sku}`,
        html`${i.name}`,
        html`${(i as { quantity?: unknown }).quantity}`,
        html`${(i as { unitPrice?: unknown }).unitPrice}`,
        html`${(i as { taxTotal?: unknown }).taxTotal}`,
        html`${(i as { lineTotal?: unknown }).lineTotal}`,
      ]),
    )}`;
}
