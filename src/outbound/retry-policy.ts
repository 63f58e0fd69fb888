/**
 * When and how to retry outbound work. Pure: the clock and the random source come in as arguments.
 */

export interface BackoffOptions {
  /** Delay before the first retry. */
  baseMs: number;
  /** Longest delay between two attempts. */
  maxMs: number;
}

/**
 * Exponential backoff with "equal jitter": after the n-th failure (n ≥ 1) wait between half and all
 * of min(maxMs, baseMs × 2^(n−1)). Spreads retries of many jobs without ever retrying at once.
 */
export function backoffMs(failures: number, o: BackoffOptions, random: () => number = Math.random): number {
  const exp = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.round(exp / 2 + random() * (exp / 2));
}

export type HttpVerdict = "ok" | "retry" | "dead";

/**
 * How an HTTP answer of a remote API is treated: 2xx done; network errors (status undefined), 408,
 * 409 (concurrent edit), 425, 429 and 5xx are retried; every other status (400, 401, 403, 404, 422,
 * …) cannot get better by retrying and goes straight to dead.
 */
export function classifyHttpStatus(status: number | undefined): HttpVerdict {
  if (status === undefined) return "retry";
  if (status >= 200 && status < 300) return "ok";
  if (status === 408 || status === 409 || status === 425 || status === 429 || status >= 500) return "retry";
  return "dead";
}

/** `Retry-After` as milliseconds from now: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * The GCRA form of a leaky bucket of `burst` requests draining at `perSecond`: `tat` (theoretical
 * arrival time) is the only state. A request reserves the earliest slot the bucket allows and learns
 * how long to wait for it. Equivalent to Recharge's bucket (40 deep, 2/s): `burst` requests at once,
 * then one every 1/perSecond s.
 */
export interface RateSpec {
  burst: number;
  perSecond: number;
}

/** How far ahead of the clock `tat` may run while the bucket still has room (burst − 1 intervals). */
const tolerance = (r: RateSpec): number => (r.burst - 1) * (1000 / r.perSecond);

export function gcraReserve(tat: number, now: number, r: RateSpec): { tat: number; waitMs: number } {
  const interval = 1000 / r.perSecond;
  const start = Math.max(now, tat - tolerance(r));
  return { tat: Math.max(tat, start) + interval, waitMs: Math.ceil(start - now) };
}

/** How long until the bucket has a free slot (0 = now), without taking it. */
export function gcraWait(tat: number, now: number, r: RateSpec): number {
  return Math.max(0, Math.ceil(tat - tolerance(r) - now));
}

/**
 * Takes the earliest slot only when it comes within `maxWaitMs`; otherwise takes nothing and says
 * how long until one is free. A caller that will not wait must not take a slot: an unused slot is a
 * request never sent, and slots taken and dropped again and again move the bucket ahead of the
 * clock for good (nothing is ever sent).
 */
export function gcraTryReserve(tat: number, now: number, r: RateSpec, maxWaitMs: number): { granted: true; tat: number; waitMs: number } | { granted: false; waitMs: number } {
  const waitMs = gcraWait(tat, now, r);
  if (waitMs > maxWaitMs) return { granted: false, waitMs };
  return { granted: true, ...gcraReserve(tat, now, r) };
}

/**
 * After the remote side refused with 429: assume its bucket is full, so the next slot is one interval
 * away, or `retryAfterMs` away when the answer said so.
 */
export function gcraPenalize(tat: number, now: number, r: RateSpec, retryAfterMs: number | undefined): number {
  const nextAllowed = now + Math.max(1000 / r.perSecond, retryAfterMs ?? 0);
  return Math.max(tat, nextAllowed + tolerance(r));
}
