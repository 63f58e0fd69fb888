import { setTimeout as sleep } from "node:timers/promises";
import type { RateLimiter, ReserveOptions } from "../outbound/rate-limiter.js";
import { createHttpClient } from "../outbound/http-client.js";
import type { Scrub } from "../security/scrub.js";
import type { RechargeApiVersion } from "./order.js";

/**
 * The Recharge REST API, as far as orderbridge calls it. Every request carries the access token and
 * an explicit `X-Recharge-Version` (never the store default), waits for a slot of the shared rate
 * limiter first, and resolves with the status whatever it is: what a status means for the job is the
 * caller's decision (src/outbound/retry-policy.ts). Network failures and timeouts reject with an
 * OutboundFailure (src/outbound/http-client.ts), its message scrubbed of the token.
 */
export interface RechargeResponse {
  status: number;
  data: unknown;
  headers: Record<string, string | undefined>;
}

export interface RechargeClient {
  put(path: string, body: unknown, version: RechargeApiVersion, signal?: AbortSignal): Promise<RechargeResponse>;
  /** A read (e.g. `GET /orders/{id}`): a slot of the same rate limit as a write. */
  get(path: string, version: RechargeApiVersion, signal?: AbortSignal, opts?: ReserveOptions): Promise<RechargeResponse>;
  /** `POST /webhooks` and the like (webhook registrations). */
  post(path: string, body: unknown, version: RechargeApiVersion, signal?: AbortSignal): Promise<RechargeResponse>;
  delete(path: string, version: RechargeApiVersion, signal?: AbortSignal): Promise<RechargeResponse>;
  readonly limiter: RateLimiter;
  /** Removes the access token from a text (what Recharge answered, before it is logged or stored). */
  readonly scrub: Scrub;
}

export interface RechargeClientOptions {
  baseUrl: string;
  token: string;
  timeoutMs: number;
  limiter: RateLimiter;
  /** Called with the wait before a request, when there is one (logs, metrics). */
  onWait?: (ms: number) => void;
  /** Told each call's HTTP status, or "error" when there was none (metrics). */
  onResponse?: (status: number | "error") => void;
  /**
   * The longest wait for a slot that a call sleeps through while holding its job; when the next slot
   * is further away, no slot is taken and the call rejects with RateLimitDeferral.
   */
  maxWaitMs: number;
}

/** The next rate-limit slot is further away than a job should hold its claim: no slot was taken; try again in `waitMs`. */
export class RateLimitDeferral extends Error {
  constructor(readonly waitMs: number) {
    super(`waiting ${waitMs} ms for a Recharge rate-limit slot`);
    this.name = "RateLimitDeferral";
  }
}

export function createRechargeClient(o: RechargeClientOptions): RechargeClient {
  const http = createHttpClient({
    baseUrl: o.baseUrl,
    timeoutMs: o.timeoutMs,
    headers: { "X-Recharge-Access-Token": o.token, Accept: "application/json" },
    secrets: [o.token],
    // Ids and numbers, one order (a few kilobytes), or a page of 250 orders (the sweep's GET /orders).
    maxAnswerBytes: 32 * 1024 * 1024,
  });
  type Method = "GET" | "PUT" | "POST" | "DELETE";
  const hasBody = (method: Method): boolean => method === "PUT" || method === "POST";
  async function send(
    method: Method,
    path: string,
    body: unknown,
    version: RechargeApiVersion,
    signal: AbortSignal | undefined,
    reserve?: ReserveOptions,
  ): Promise<RechargeResponse> {
    const slot = await o.limiter.tryReserve(o.maxWaitMs, reserve);
    if (!slot.granted) throw new RateLimitDeferral(slot.waitMs);
    const wait = slot.waitMs;
    if (wait > 0) {
      o.onWait?.(wait);
      // timers/promises removes its abort listener when done: the worker's signal lives long.
      await sleep(wait, undefined, signal === undefined ? {} : { signal });
    }
    // A 429 answered to another call while this one waited for its slot: not sent (the slot is
    // void anyway: the 429's penalty moves the bucket past it).
    const paused = o.limiter.pausedFor();
    if (paused > 0) throw new RateLimitDeferral(paused);
    const res = await http
      .request({
        method,
        url: path,
        headers: { "X-Recharge-Version": version, ...(hasBody(method) ? { "Content-Type": "application/json" } : {}) },
        ...(hasBody(method) ? { body: JSON.stringify(body) } : {}),
        signal,
      })
      .catch((e: unknown) => {
        o.onResponse?.("error");
        throw e;
      });
    o.onResponse?.(res.status);
    return { status: res.status, data: jsonOrText(res.text), headers: res.headers };
  }
  return {
    limiter: o.limiter,
    scrub: http.scrub,
    put: (path, body, version, signal) => send("PUT", path, body, version, signal),
    get: (path, version, signal, opts) => send("GET", path, undefined, version, signal, opts),
    post: (path, body, version, signal) => send("POST", path, body, version, signal),
    delete: (path, version, signal) => send("DELETE", path, undefined, version, signal),
  };
}

/** The answer as JSON when it is JSON, else its text ("" when empty): the caller decides what it means. */
function jsonOrText(text: string): unknown {
  if (text === "") return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
