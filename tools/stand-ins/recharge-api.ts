import { createServer, STATUS_CODES } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { close, firstHeader, isPlainObject, listen, readBody } from "./loopback.js";

/**
 * A real local HTTP server standing in for the Recharge REST API (spec: recharge-webhooks.md §1, §8, §9).
 * It knows `PUT /orders/{id}`, `PUT /charges/{id}` and `GET /orders/{id}` (answering an order stored
 * with `storeOrder`, else 404), checks the access token, the version header and the JSON body, can
 * enforce Recharge's leaky-bucket rate limit (on reads and writes alike), and answers scripted replies.
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
  /** Calls that got a 2xx, e.g. for asserting write-backs landed. */
  succeeded(): RecordedCall[];
  /** Resolves when at least n calls have been received (polls every 10 ms; rejects after timeoutMs, default 10000). */
  waitForCalls(n: number, timeoutMs?: number): Promise<RecordedCall[]>;
  /** Ends hanging requests (destroys their sockets) and closes the server; idempotent. */
  close(): Promise<void>;
}

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
          reject(
            new Error(
              `Recharge stand-in: expected at least ${n} call(s) within ${timeoutMs} ms, got ${this.calls.length}: ${describeCalls(this.calls)}`,
            ),
          );
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

    if (call.method === "PUT") {
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
    const replyBody =
      reply.body !== undefined ? reply.body : reply.status >= 400 ? { errors: STATUS_CODES[reply.status] ?? "Error" } : {};
    this.send(res, call, reply.status, replyBody, headers);
  }

  private answerOk(res: ServerResponse, call: RecordedCall): void {
    const pathname = call.path.split("?")[0] ?? "";
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
    this.send(res, call, 200, { [key]: { id: Number(m[2]), ...fields } });
  }

  private send(
    res: ServerResponse,
    call: RecordedCall,
    status: number,
    body: unknown,
    extraHeaders: Record<string, string> = {},
  ): void {
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
