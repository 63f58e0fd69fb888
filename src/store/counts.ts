import { sql, type Kysely } from "kysely";
import { kx, type Tx } from "./handle.js";
import type { Database, JobState } from "./schema.js";

/** The states the queue gauges count: never the finished ones, which retention keeps for weeks. */
export const QUEUE_STATES = ["pending", "running", "dead"] as const satisfies readonly JobState[];

/**
 * The gauges' one query: counts per kind and unfinished state, and the oldest due job's age. It
 * reads only unfinished rows, through an index on state (jobs_state_updated, or jobs_due), so a
 * scrape costs the same with a million finished rows as with none.
 */
export function queueQuery(db: Kysely<Database>, now: number) {
  return db
    .selectFrom("jobs")
    .select(["state", "kind", sql<number>`count(*)`.as("n"), sql<number | null>`min(case when state = 'pending' and run_at <= ${now} then created_at end)`.as("oldest")])
    .where("state", "in", QUEUE_STATES)
    .groupBy(["state", "kind"]);
}

/** Unfinished jobs per kind and state, with the creation time of the oldest one due (null: none due). */
export async function queueCounts(tx: Tx, now: number): Promise<{ kind: string; state: string; n: number; oldest: number | null }[]> {
  const rows = await queueQuery(kx(tx), now).execute();
  return rows.map((r) => ({ kind: r.kind, state: r.state, n: Number(r.n), oldest: r.oldest === null || r.oldest === undefined ? null : Number(r.oldest) }));
}
