import type { Kysely } from "kysely";
import type { Database } from "../store/schema.js";
import { gcraPenalize, gcraReserve, type RateSpec } from "./retry-policy.js";

/**
 * A leaky bucket kept in the database (one `rate_limits` row per name), so every worker of every
 * instance sharing the database draws from the same bucket. Compare-and-set on the row's single
 * value makes each reservation atomic on SQLite and PostgreSQL alike.
 */
export interface RateLimiter {
  /** Reserves the next slot; resolves with how long to wait before using it (0 = now). */
  reserve(): Promise<number>;
  /** The remote side answered 429: no slot before `retryAfterMs` (or one interval). */
  penalize(retryAfterMs: number | undefined): Promise<void>;
}

export function createRateLimiter(db: Kysely<Database>, name: string, remote: RateSpec, clock: () => number = Date.now): RateLimiter {
  // One slot of the remote bucket stays free: requests sent at exactly the limit arrive with some
  // network jitter, and one that overtakes another would find the bucket full (429). The sustained
  // rate is unchanged.
  const spec: RateSpec = { burst: Math.max(1, remote.burst - 1), perSecond: remote.perSecond };
  async function update(next: (tat: number, now: number) => { tat: number; waitMs: number }): Promise<number> {
    for (;;) {
      const now = clock();
      const row = await db.selectFrom("rate_limits").select("tat").where("name", "=", name).executeTakeFirst();
      if (row === undefined) {
        await db.insertInto("rate_limits").values({ name, tat: 0 }).onConflict((oc) => oc.column("name").doNothing()).execute();
        continue;
      }
      const current = Number(row.tat);
      const r = next(current, now);
      const res = await db
        .updateTable("rate_limits")
        .set({ tat: Math.ceil(r.tat) })
        .where("name", "=", name)
        .where("tat", "=", current)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) return r.waitMs;
    }
  }
  return {
    reserve: () => update((tat, now) => gcraReserve(tat, now, spec)),
    async penalize(retryAfterMs) {
      await update((tat, now) => ({ tat: gcraPenalize(tat, now, spec, retryAfterMs), waitMs: 0 }));
    },
  };
}
