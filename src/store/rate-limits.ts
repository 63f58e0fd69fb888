import { kx, type Tx } from "./handle.js";

/**
 * The `rate_limits` table: one row per shared leaky bucket, holding its theoretical arrival time
 * (GCRA, src/outbound/rate-limiter.ts). Changed only by compare-and-set, atomic on both databases.
 */

/** The bucket's arrival time, or undefined when it has no row yet. */
export async function readTat(tx: Tx, name: string): Promise<number | undefined> {
  const row = await kx(tx).selectFrom("rate_limits").select("tat").where("name", "=", name).executeTakeFirst();
  return row === undefined ? undefined : Number(row.tat);
}

/** Creates the bucket's row at 0 unless it exists (several instances may race to). */
export async function createBucket(tx: Tx, name: string): Promise<void> {
  await kx(tx)
    .insertInto("rate_limits")
    .values({ name, tat: 0 })
    .onConflict((oc) => oc.column("name").doNothing())
    .execute();
}

/** Sets the arrival time to `next` if it is still `current`; false when another caller moved it first. */
export async function compareAndSetTat(tx: Tx, name: string, current: number, next: number): Promise<boolean> {
  const res = await kx(tx).updateTable("rate_limits").set({ tat: next }).where("name", "=", name).where("tat", "=", current).executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}
