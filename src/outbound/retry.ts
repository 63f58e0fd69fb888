import { setTimeout as sleep } from "node:timers/promises";
import { backoffMs, type BackoffOptions } from "./retry-policy.js";

/**
 * The one retry loop of outbound calls that retry within a caller's deadline (the platform
 * adapters; the Recharge write-back retries across job runs instead, src/jobs/). Each attempt says
 * whether it is done or what to wait for; the loop sleeps (abortably) and tries again until the
 * signal ends it. What an attempt throws ends the loop as it is.
 */
export type Attempt<T> =
  | { done: T }
  /** Another pass at once, without waiting (the attempt made progress, e.g. dropped a refused line). */
  | { again: true }
  | {
      /** Why this attempt failed, for the log and the final error. */
      failure: string;
      /** How long to wait: a remote's Retry-After or its own hint; default the backoff. */
      waitMs?: number | undefined;
    };

export interface RetryOptions<T> {
  signal: AbortSignal;
  backoff: BackoffOptions;
  /** No wait is longer than this (a Retry-After included). */
  maxWaitMs?: number;
  attempt: (n: number) => Promise<Attempt<T>>;
  /** Told before each wait (logs). */
  onRetry?: (r: { attempt: number; failure: string; waitMs: number }) => void;
  /** The error to throw when the deadline ends a wait. */
  giveUp: (r: { attempts: number; failure: string }) => Error;
  random?: () => number;
}

export async function retrying<T>(o: RetryOptions<T>): Promise<T> {
  for (let n = 1; ; n++) {
    const a = await o.attempt(n);
    if ("done" in a) return a.done;
    if ("again" in a) continue;
    const waitMs = Math.max(0, Math.min(a.waitMs ?? backoffMs(n, o.backoff, o.random), o.maxWaitMs ?? Infinity));
    o.onRetry?.({ attempt: n, failure: a.failure, waitMs });
    try {
      // timers/promises removes its abort listener when done: the caller's signal may live long.
      await sleep(waitMs, undefined, { signal: o.signal });
    } catch {
      throw o.giveUp({ attempts: n, failure: a.failure });
    }
  }
}
