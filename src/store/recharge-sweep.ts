import { kx, type Tx } from "./handle.js";
import { placedByIds, type PlacedRechargeOrder } from "./recharge-orders.js";
import type { JobState, RechargeSweepStateRow } from "./schema.js";

export type { RechargeSweepStateRow } from "./schema.js";

/**
 * The SQL of the periodic Recharge tasks (the order sweep, the webhook subscription check): a lease
 * row per task, taken and kept with conditional UPDATEs, so one instance at a time runs each among
 * all instances sharing the database; the sweep's cursor lives in the same row. And the reads the
 * sweep decides from: what orderbridge knows of a page of Recharge orders.
 */
export type SweepTask = "orders" | "webhooks";

/** A task's row before its first run: no holder, no progress. */
const newStateRow = (task: SweepTask, now: number): RechargeSweepStateRow => ({
  name: task,
  holder: null,
  lease_until: null,
  watermark: null,
  run_from: null,
  run_until: null,
  page_cursor: null,
  last_finished_at: null,
  last_result: null,
  updated_at: now,
});

/**
 * Takes (or keeps) the task's lease when it is free, ran out, or is ours; the row as it is then, or
 * undefined when another holder has it. The row is created on first use.
 */
export async function takeSweepLease(tx: Tx, o: { task: SweepTask; holder: string; now: number; leaseMs: number }): Promise<RechargeSweepStateRow | undefined> {
  await kx(tx)
    .insertInto("recharge_sweep_state")
    .values(newStateRow(o.task, o.now))
    .onConflict((oc) => oc.column("name").doNothing())
    .execute();
  return kx(tx)
    .updateTable("recharge_sweep_state")
    .set({ holder: o.holder, lease_until: o.now + o.leaseMs, updated_at: o.now })
    .where("name", "=", o.task)
    .where((eb) => eb.or([eb("holder", "is", null), eb("holder", "=", o.holder), eb("lease_until", "is", null), eb("lease_until", "<", o.now)]))
    .returningAll()
    .executeTakeFirst();
}

export type SweepProgress = Partial<Pick<RechargeSweepStateRow, "watermark" | "run_from" | "run_until" | "page_cursor" | "last_finished_at" | "last_result">>;

/** Records progress and extends the lease, only while `holder` has it; false when it lost it (then it must stop). */
export async function saveSweepProgress(tx: Tx, o: { task: SweepTask; holder: string; now: number; leaseMs: number; progress: SweepProgress }): Promise<boolean> {
  const r = await kx(tx)
    .updateTable("recharge_sweep_state")
    .set({ ...o.progress, lease_until: o.now + o.leaseMs, updated_at: o.now })
    .where("name", "=", o.task)
    .where("holder", "=", o.holder)
    .where("lease_until", ">=", o.now)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Gives the lease up (the next run may be any instance's). */
export async function releaseSweepLease(tx: Tx, o: { task: SweepTask; holder: string; now: number }): Promise<void> {
  await kx(tx).updateTable("recharge_sweep_state").set({ holder: null, lease_until: null, updated_at: o.now }).where("name", "=", o.task).where("holder", "=", o.holder).execute();
}

export async function readSweepStates(tx: Tx): Promise<RechargeSweepStateRow[]> {
  return kx(tx).selectFrom("recharge_sweep_state").selectAll().execute();
}

/** Records a result without the lease (the webhook check, run by every instance, shares its last finding). */
export async function recordSweepResult(tx: Tx, o: { task: SweepTask; now: number; result: string }): Promise<void> {
  await kx(tx)
    .insertInto("recharge_sweep_state")
    .values({ ...newStateRow(o.task, o.now), last_finished_at: o.now, last_result: o.result })
    .onConflict((oc) => oc.column("name").doUpdateSet({ last_finished_at: o.now, last_result: o.result, updated_at: o.now }))
    .execute();
}

/** What orderbridge knows of some Recharge orders: the placed ones' sync rows, and their events and write-back jobs. */
export interface KnownRechargeOrders {
  placed: Map<string, PlacedRechargeOrder>;
  jobs: Map<string, { id: string; kind: string; state: JobState }[]>;
}

export async function knownRechargeOrders(tx: Tx, ids: readonly string[], kinds: readonly string[]): Promise<KnownRechargeOrders> {
  const jobs = new Map<string, { id: string; kind: string; state: JobState }[]>();
  if (ids.length === 0) return { placed: new Map(), jobs };
  const placed = await placedByIds(tx, ids);
  const rows = await kx(tx)
    .selectFrom("jobs")
    .select(["id", "kind", "state", "resource_id"])
    .where("resource_id", "in", ids)
    .where("kind", "in", kinds)
    .orderBy("created_at")
    .execute();
  for (const r of rows) {
    const key = r.resource_id ?? "";
    jobs.set(key, [...(jobs.get(key) ?? []), { id: r.id, kind: r.kind, state: r.state }]);
  }
  return { placed, jobs };
}
