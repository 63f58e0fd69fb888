import type { Tx } from "../store/handle.js";
import { compareAndSetTat, createBucket, readTat } from "../store/rate-limits.js";
import { gcraPenalize, gcraTryReserve, gcraWait, type RateSpec } from "./retry-policy.js";

/**
 * A leaky bucket kept in the database (one `rate_limits` row per name), so every worker of every
 * instance sharing the database draws from the same bucket. Compare-and-set on the row's single
 * value makes each reservation atomic on SQLite and PostgreSQL alike.
 *
 * A slot is only ever taken by a caller about to send (`tryReserve` grants it within a short wait, or
 * takes nothing): the bucket then never runs ahead of the requests really sent by more than its burst.
 */
export interface RateLimiter {
  /** How long until a slot is free (0 = now); takes nothing. */
  wait(): Promise<number>;
  /**
   * Takes the next slot when it is free within `maxWaitMs` (then `waitMs` is how long to wait before
   * using it); otherwise takes nothing and says how long until one is free.
   */
  tryReserve(maxWaitMs: number, opts?: ReserveOptions): Promise<{ granted: boolean; waitMs: number }>;
  /** The remote side answered 429: no slot before `retryAfterMs` (or one interval). */
  penalize(retryAfterMs: number | undefined): Promise<void>;
  /**
   * How long this process still holds back after a 429 it was told of (0: not paused). Known at
   * once, before the shared bucket's row is written: a call that was waiting for its slot checks
   * it before it is sent.
   */
  pausedFor(): number;
}

export interface ReserveOptions {
  /**
   * Slots of the burst this caller leaves to others: it is granted a slot only while more than these
   * are free (the Recharge sweep leaves write-backs most of the bucket).
   */
  keepFree?: number;
}

export function createRateLimiter(db: Tx, name: string, remote: RateSpec, clock: () => number = Date.now): RateLimiter {
  // One slot of the remote bucket stays free: requests sent at exactly the limit arrive with some
  // network jitter, and one that overtakes another would find the bucket full (429). The sustained
  // rate is unchanged.
  const spec: RateSpec = { burst: Math.max(1, remote.burst - 1), perSecond: remote.perSecond };
  const read = (): Promise<number | undefined> => readTat(db, name);
  /** Moves `tat` with compare-and-set; `next` returns undefined to change nothing. */
  async function update<T>(next: (tat: number, now: number) => { tat: number | undefined; result: T }): Promise<T> {
    for (;;) {
      const now = clock();
      const current = await read();
      if (current === undefined) {
        await createBucket(db, name);
        continue;
      }
      const r = next(current, now);
      if (r.tat === undefined) return r.result;
      if (await compareAndSetTat(db, name, current, Math.ceil(r.tat))) return r.result;
    }
  }
  // A 429 pauses this process at once; the bucket's row tells the other instances (and this one
  // after a restart) once it is written, which may take a moment behind other writes.
  let pausedUntil = 0;
  const pausedFor = (): number => Math.max(0, pausedUntil - clock());
  return {
    async wait() {
      const tat = await read();
      return Math.max(pausedFor(), tat === undefined ? 0 : gcraWait(tat, clock(), spec));
    },
    pausedFor,
    tryReserve: async (maxWaitMs, opts = {}) => {
      const paused = pausedFor();
      if (paused > 0) return { granted: false, waitMs: paused };
      return update((tat, now) => {
        // Leaving k slots free is seeing a bucket k slots smaller: the same rate, a shorter burst.
        const keep = Math.min(spec.burst - 1, Math.max(0, Math.floor(opts.keepFree ?? 0)));
        const r = gcraTryReserve(tat, now, keep === 0 ? spec : { burst: spec.burst - keep, perSecond: spec.perSecond }, maxWaitMs);
        return { tat: r.granted ? r.tat : undefined, result: { granted: r.granted, waitMs: r.waitMs } };
      });
    },
    penalize: (retryAfterMs) => {
      pausedUntil = Math.max(pausedUntil, clock() + Math.max(1000 / spec.perSecond, retryAfterMs ?? 0));
      return update((tat, now) => ({ tat: gcraPenalize(tat, now, spec, retryAfterMs), result: undefined }));
    },
  };
}
