import { createServer, STATUS_CODES } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { close, firstHeader, isPlainObject, listen, readBody } from "./loopback.js";

/**
 * A real local HTTP server standing in for the Recharge REST API (spec: recharge-webhooks.md §1, §8, §9).
 * It knows `PUT /orders/{id}`, `PUT /charges/{id}` and `GET /orders/{id}` (answering an order stored
 * with `storeOrder`, else 404; a `PUT` of a stored order updates it, as Recharge does), `GET /orders`
 * (the stored orders, filtered by `status`, `updated_at_min`/`_max` and `has_external_order`, newest id
 * first, `limit` up to 250, cursor pagination with `next_cursor`/`previous_cursor`, the cursor taken
 * as `cursor` or `page_info`), and `GET/POST/PUT/DELETE /webhooks` (the store's webhook
 * registrations). It checks the access token, the version header and the JSON body, can enforce
 * Recharge's leaky-bucket rate limit (on reads and writes alike), and answers scripted replies.
 * Uses node:http only, so it is independent of the app under test.
 */

export interface RecordedCall {
  method: string;
  /** The request target as sent, e.g. "/orders/512340001" (a query string, if any, is kept). */
  path: string;
  /** Node's lower-cased request headers. */
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or the raw text when not JSON, or null when empty. */
  body: unknown;
  /** Date.now() when the request (with its body) was received. */
  at: number;
  /** What the stand-in answered (0 while a hanging call is held). */
  status: number;
}

export type Reply =
  | { status: number; body?: unknown; retryAfter?: string | number; headers?: Record<string, string> }
  | "hang"
  /** Applies the update (recorded as a 200) but never answers: the caller cannot know it landed. */
  | "apply-then-hang"
  /** Holds the request until `until` settles, then answers `then` (default: the usual success). */
  | { until: Promise<unknown>; then?: Reply | "ok" };

export interface RechargeStandInOptions {
  /** Expected X-Recharge-Access-Token; a wrong/missing one → 401 {"errors":"..."}. */
  token: string;
  /**
   * Enforce a leaky bucket: a request arriving when the bucket is full → 429 (with Retry-After
   * seconds, rounded up, when retryAfter is true) and is NOT counted as accepted.
   */
  bucket?: { size: number; leakPerSecond: number; retryAfter?: boolean };
  /** `GET /orders` answers at most this many a page whatever `limit` asks (more pages, fewer orders). */
  pageCap?: number;
}

export interface RechargeStandIn {
  /** "http://127.0.0.1:<port>" */
  url: string;
  /** Every request, in arrival order (including rejected ones). */
  calls: RecordedCall[];
  /** Replies used for the next requests, first in first out, before falling back to `defaultReply`. */
  queue(...replies: Reply[]): void;
  /** The reply when the queue is empty; initially a 200 success ("ok"). Set to "hang" or {status: 500} etc. */
  defaultReply: Reply | "ok";
  /** Count of 429 answers given because of the bucket (not scripted ones). */
  readonly bucketRejections: number;
  /**
   * Keeps an order (the object inside a webhook's `{"order": …}`, in the shape of the version the
   * test reads it with) for `GET /orders/{its id}`.
   */
  storeOrder(order: Record<string, unknown>): void;
  /** A stored order as it is now (after write-backs), or undefined. */
  order(id: string | number): Record<string, unknown> | undefined;
  /** The store's webhook registrations, as `GET /webhooks` lists them (oldest first). */
  readonly webhooks: StandInWebhook[];
  /** Registers a webhook as another app (or a person with the token) would; returns it. */
  addWebhook(w: Omit<StandInWebhook, "id">): StandInWebhook;
  /** Removes a registration, as Recharge does after 20 failed deliveries; false when there was none. */
  deleteWebhook(id: number): boolean;
  /** Calls that got a 2xx, e.g. for asserting write-backs landed. */
  succeeded(): RecordedCall[];
  /** Resolves when at least n calls have been received (polls every 10 ms; rejects after timeoutMs, default 10000). */
  waitForCalls(n: number, timeoutMs?: number): Promise<RecordedCall[]>;
  /** Ends hanging requests (destroys their sockets) and closes the server; idempotent. */
  close(): Promise<void>;
}

export interface StandInWebhook {
  id: number;
  address: string;
  topic: string;
  /** Absent: the store's default version renders its payloads. */
  version?: string;
  included_objects?: string[];
}

/** Recharge's largest page (seed-004, "Cursor Pagination"). */
export const MAX_PAGE = 250;

const VALID_VERSIONS: ReadonlySet<string> = new Set(["2021-01", "2021-11"]);
const RESOURCE_PATH = /^\/(orders|charges)\/(\d+)\/?$/;

function parseBody(raw: string): { body: unknown; json: boolean } {
  if (raw.length === 0) return { body: null, json: false };
  try {
    return { body: JSON.parse(raw) as unknown, json: true };
  } catch {
    return { body: raw, json: false };
  }
}

function describeCalls(calls: readonly RecordedCall[]): string {
  if (calls.length === 0) return "(none)";
  return calls.map((c, i) => `#${i + 1} ${c.method} ${c.path} → ${c.status}`).join("; ");
}

class RechargeApiStandIn implements RechargeStandIn {
  url = "";
  calls: RecordedCall[] = [];
  defaultReply: Reply | "ok" = "ok";

  private readonly server: Server;
  private readonly scripted: Reply[] = [];
  private readonly orders = new Map<string, Record<string, unknown>>();
  readonly webhooks: StandInWebhook[] = [];
  private nextWebhookId = 9001;
  private readonly hanging = new Set<ServerResponse>();
  private rejectedByBucket = 0;
  private level = 0;
  private levelAt = Date.now();
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: RechargeStandInOptions) {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
  }

  get bucketRejections(): number {
    return this.rejectedByBucket;
  }

  async listen(): Promise<void> {
    this.url = await listen(this.server);
  }

  queue(...replies: Reply[]): void {
    this.scripted.push(...replies);
  }

  storeOrder(order: Record<string, unknown>): void {
    this.orders.set(String(order["id"]), structuredClone(order));
  }

  order(id: string | number): Record<string, unknown> | undefined {
    const o = this.orders.get(String(id));
    return o === undefined ? undefined : structuredClone(o);
  }

  addWebhook(w: Omit<StandInWebhook, "id">): StandInWebhook {
    const hook: StandInWebhook = { id: this.nextWebhookId++, ...structuredClone(w) };
    this.webhooks.push(hook);
    return structuredClone(hook);
  }

  deleteWebhook(id: number): boolean {
    const i = this.webhooks.findIndex((w) => w.id === id);
    if (i < 0) return false;
    this.webhooks.splice(i, 1);
    return true;
  }

  succeeded(): RecordedCall[] {
    return this.calls.filter((c) => c.status >= 200 && c.status < 300);
  }

  waitForCalls(n: number, timeoutMs = 10_000): Promise<RecordedCall[]> {
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.calls.length >= n) {
          resolve([...this.calls]);
        } else if (Date.now() >= deadline) {
          reject(new Error(`Recharge stand-in: expected at least ${n} call(s) within ${timeoutMs} ms, got ${this.calls.length}: ${describeCalls(this.calls)}`));
        } else {
          setTimeout(check, 10);
        }
      };
      check();
    });
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      for (const res of this.hanging) res.socket?.destroy();
      this.hanging.clear();
      this.closing = close(this.server);
    }
    return this.closing;
  }

  /** Leak the bucket up to now. */
  private leak(): void {
    const now = Date.now();
    const bucket = this.opts.bucket;
    if (bucket !== undefined) {
      this.level = Math.max(0, this.level - (bucket.leakPerSecond * (now - this.levelAt)) / 1000);
    }
    this.levelAt = now;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const { body, json } = parseBody(raw);
    const call: RecordedCall = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers: { ...req.headers },
      body,
      at: Date.now(),
      status: 0,
    };
    this.calls.push(call);

    if (firstHeader(req.headers["x-recharge-access-token"]) !== this.opts.token) {
      this.send(res, call, 401, { errors: "A valid API access token is required (X-Recharge-Access-Token)" });
      return;
    }

    const version = firstHeader(req.headers["x-recharge-version"]);
    if (version === undefined || !VALID_VERSIONS.has(version)) {
      this.send(res, call, 426, { errors: "Invalid API version" });
      return;
    }

    if (call.method === "PUT" || call.method === "POST") {
      const contentType = (firstHeader(req.headers["content-type"]) ?? "").split(";")[0]?.trim().toLowerCase();
      if (contentType !== "application/json" || !json || !isPlainObject(body)) {
        this.send(res, call, 415, { errors: "The request body must be a JSON object sent as application/json" });
        return;
      }
    }

    const bucket = this.opts.bucket;
    if (bucket !== undefined) {
      this.leak();
      if (this.level + 1 > bucket.size) {
        this.rejectedByBucket++;
        const headers: Record<string, string> = {};
        if (bucket.retryAfter === true) {
          const wait = (this.level + 1 - bucket.size) / bucket.leakPerSecond;
          headers["retry-after"] = String(Math.max(1, Math.ceil(wait)));
        }
        this.send(res, call, 429, { errors: "Too many requests" }, headers);
        return;
      }
      this.level += 1;
    }

    let reply = this.scripted.length > 0 ? this.scripted.shift() : this.defaultReply;
    if (typeof reply === "object" && "until" in reply) {
      await reply.until.catch(() => undefined);
      reply = reply.then ?? "ok";
    }
    if (reply === undefined || reply === "ok") {
      this.answerOk(res, call);
      return;
    }
    if (reply === "hang" || reply === "apply-then-hang") {
      if (reply === "apply-then-hang") call.status = 200;
      this.hanging.add(res);
      res.on("close", () => this.hanging.delete(res));
      return;
    }
    if ("until" in reply) throw new Error("a held reply cannot answer with another held reply");
    const headers: Record<string, string> = { ...(reply.headers ?? {}) };
    if (reply.retryAfter !== undefined) headers["retry-after"] = String(reply.retryAfter);
    const replyBody = reply.body !== undefined ? reply.body : reply.status >= 400 ? { errors: STATUS_CODES[reply.status] ?? "Error" } : {};
    this.send(res, call, reply.status, replyBody, headers);
  }

  private answerOk(res: ServerResponse, call: RecordedCall): void {
    const [pathname = "", search = ""] = call.path.split("?");
    const query = new URLSearchParams(search);
    if (pathname === "/orders" || pathname === "/orders/") {
      if (call.method === "GET") this.listOrders(res, call, query);
      else this.send(res, call, 405, { errors: "Method Not Allowed" });
      return;
    }
    const hook = /^\/webhooks(?:\/(\d+))?\/?$/.exec(pathname);
    if (hook !== null) {
      this.answerWebhooks(res, call, hook[1] === undefined ? undefined : Number(hook[1]));
      return;
    }
    const m = RESOURCE_PATH.exec(pathname);
    if (m === null || (call.method !== "PUT" && call.method !== "GET")) {
      this.send(res, call, 404, { errors: "Not Found" });
      return;
    }
    const key = m[1] === "orders" ? "order" : "charge";
    if (call.method === "GET") {
      const order = key === "order" ? this.orders.get(m[2] ?? "") : undefined;
      if (order === undefined) this.send(res, call, 404, { errors: "Not Found" });
      else this.send(res, call, 200, { order });
      return;
    }
    const fields = isPlainObject(call.body) ? call.body : {};
    const stored = key === "order" ? this.orders.get(m[2] ?? "") : undefined;
    if (stored !== undefined) {
      // Recharge keeps what was written, and the write is an update of the order.
      Object.assign(stored, structuredClone(fields), { updated_at: new Date().toISOString().replace(/\.\d{3}Z$/, "+00:00") });
      this.send(res, call, 200, { order: stored });
      return;
    }
    this.send(res, call, 200, { [key]: { id: Number(m[2]), ...fields } });
  }

  /**
   * `GET /orders`: newest id first (Recharge's default sort for orders), filtered. The cursor
   * carries the filters and the last id of its page, so a page follows the one before whatever
   * changed in between; with a cursor, the filters of the query are not read (as Recharge's cursors
   * work: the cursor alone names the page, `limit` aside).
   */
  private listOrders(res: ServerResponse, call: RecordedCall, query: URLSearchParams): void {
    const limitText = query.get("limit") ?? "50";
    const limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > MAX_PAGE) {
      this.send(res, call, 422, { errors: { limit: `must be between 1 and ${MAX_PAGE}` } });
      return;
    }
    const cursorText = query.get("cursor") ?? query.get("page_info");
    let filters: Record<string, string>;
    let before: number | undefined;
    if (cursorText !== null) {
      try {
        const c = JSON.parse(Buffer.from(cursorText, "base64url").toString("utf8")) as { f: Record<string, string>; before: number };
        filters = c.f;
        before = c.before;
      } catch {
        this.send(res, call, 422, { errors: { cursor: "invalid cursor" } });
        return;
      }
    } else {
      filters = {};
      for (const k of ["status", "updated_at_min", "updated_at_max", "has_external_order"]) {
        const v = query.get(k);
        if (v !== null) filters[k] = v;
      }
    }
    const time = (v: unknown): number => (typeof v === "string" ? Date.parse(/[zZ]|[+-]\d{2}:?\d{2}$/.test(v) ? v : `${v}Z`) : Number.NaN);
    const min = filters["updated_at_min"] === undefined ? undefined : time(filters["updated_at_min"]);
    const max = filters["updated_at_max"] === undefined ? undefined : time(filters["updated_at_max"]);
    const external = (o: Record<string, unknown>): boolean => {
      const e = o["external_order_id"];
      const v = isPlainObject(e) ? e["ecommerce"] : e;
      return v !== null && v !== undefined && v !== "";
    };
    const matching = [...this.orders.values()]
      .filter((o) => filters["status"] === undefined || String(o["status"]).toLowerCase() === filters["status"]?.toLowerCase())
      .filter((o) => min === undefined || time(o["updated_at"]) >= min)
      .filter((o) => max === undefined || time(o["updated_at"]) <= max)
      .filter((o) => filters["has_external_order"] === undefined || external(o) === ["true", "1"].includes(filters["has_external_order"] ?? ""))
      .sort((a, b) => Number(b["id"]) - Number(a["id"]));
    const rest = before === undefined ? matching : matching.filter((o) => Number(o["id"]) < (before as number));
    const size = Math.min(limit, this.opts.pageCap ?? MAX_PAGE);
    const page = rest.slice(0, size);
    const last = page[page.length - 1];
    const cursor = (c: object): string => Buffer.from(JSON.stringify(c)).toString("base64url");
    const next = rest.length > size && last !== undefined ? cursor({ f: filters, before: Number(last["id"]) }) : null;
    const previous = before === undefined ? null : cursor({ f: filters, before: Number.MAX_SAFE_INTEGER });
    this.send(res, call, 200, { next_cursor: next, previous_cursor: previous, orders: page });
  }

  private answerWebhooks(res: ServerResponse, call: RecordedCall, id: number | undefined): void {
    const body = isPlainObject(call.body) ? call.body : {};
    if (id === undefined) {
      if (call.method === "GET") {
        this.send(res, call, 200, { webhooks: this.webhooks, next_cursor: null, previous_cursor: null });
        return;
      }
      if (call.method !== "POST") {
        this.send(res, call, 405, { errors: "Method Not Allowed" });
        return;
      }
      const { address, topic } = body;
      if (typeof address !== "string" || typeof topic !== "string") {
        this.send(res, call, 422, { errors: { address: "required", topic: "required" } });
        return;
      }
      if (this.webhooks.filter((w) => w.topic === topic).length >= 10) {
        this.send(res, call, 422, { errors: { topic: "a token can register at most 10 webhooks of the same topic" } });
        return;
      }
      const created = this.addWebhook({
        address,
        topic,
        version: typeof body["version"] === "string" ? body["version"] : "2021-01",
        ...(Array.isArray(body["included_objects"]) ? { included_objects: body["included_objects"] as string[] } : {}),
      });
      this.send(res, call, 200, { webhook: created });
      return;
    }
    const hook = this.webhooks.find((w) => w.id === id);
    if (hook === undefined) {
      this.send(res, call, 404, { errors: "Not Found" });
      return;
    }
    if (call.method === "GET") this.send(res, call, 200, { webhook: hook });
    else if (call.method === "DELETE") {
      this.deleteWebhook(id);
      this.send(res, call, 204, null);
    } else if (call.method === "PUT") {
      for (const k of ["address", "topic", "version"] as const) if (typeof body[k] === "string") hook[k] = body[k];
      if (Array.isArray(body["included_objects"])) hook.included_objects = body["included_objects"] as string[];
      this.send(res, call, 200, { webhook: hook });
    } else this.send(res, call, 405, { errors: "Method Not Allowed" });
  }

  private send(res: ServerResponse, call: RecordedCall, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
    call.status = status;
    const headers: Record<string, string> = { "content-type": "application/json", ...extraHeaders };
    const bucket = this.opts.bucket;
    if (bucket !== undefined) {
      this.leak();
      headers["x-recharge-limit"] = `${Math.min(bucket.size, Math.ceil(this.level))}/${bucket.size}`;
    }
    if (status === 204 || status === 304) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    const text = JSON.stringify(body ?? null);
    headers["content-length"] = String(Buffer.byteLength(text));
    res.writeHead(status, headers);
    res.end(text);
  }
}

/** Start a Recharge API stand-in on 127.0.0.1 (a free port). Close it with `close()`. */
export async function startRechargeStandIn(opts: RechargeStandInOptions): Promise<RechargeStandIn> {
  const standIn = new RechargeApiStandIn(opts);
  await standIn.listen();
  return standIn;
}
