import { transaction, type Tx } from "../store/handle.js";
import { enqueue, jobsForResources } from "../store/jobs.js";
import { placedSince, type PlacedRechargeOrder } from "../store/recharge-orders.js";
import { JOB_PUT_CHARGE, JOB_PUT_ORDER, writeBackJobs } from "./handlers.js";
import type { RechargeApiVersion } from "./order.js";

export interface CatchUpResult {
  /** Recharge orders placed in the window. */
  orders: number;
  /** Write-back jobs queued now (or, with dryRun, that would be). */
  queued: number;
  /** Write-back jobs that existed already, by state (a dead one is replayed, not queued again). */
  existing: Record<string, number>;
}

const BATCH = 500;

/**
 * Queues the write-backs that Recharge orders placed since `since` never got (placed while
 * RECHARGE_WRITEBACK was off, or before a token was set). Idempotent: a write-back that exists, in
 * whatever state, is left as it is (its dedupe key), so running this twice queues nothing more.
 */
export async function queueMissingWriteBacks(db: Tx, o: { since: number; maxAttempts: number; dryRun: boolean; now: number }): Promise<CatchUpResult> {
  const result: CatchUpResult = { orders: 0, queued: 0, existing: {} };
  let after: { placedAt: number; rechargeOrderId: string } | undefined;
  for (;;) {
    const rows = await placedSince(db, { since: o.since, after, limit: BATCH });
    if (rows.length === 0) return result;
    const last = rows[rows.length - 1] as (typeof rows)[number];
    after = { placedAt: last.placedAt, rechargeOrderId: last.rechargeOrderId };
    result.orders += rows.length;
    const r = await queueWriteBacksFor(db, rows, o);
    result.queued += r.queued;
    for (const [state, n] of Object.entries(r.existing)) result.existing[state] = (result.existing[state] ?? 0) + n;
  }
}

/**
 * Queues the write-backs of these placed orders that do not exist yet, in whatever state (also used
 * by the sweep, src/recharge/sweep.ts, for orders Recharge still shows without an external id).
 */
export async function queueWriteBacksFor(
  db: Tx,
  rows: readonly PlacedRechargeOrder[],
  o: { maxAttempts: number; dryRun: boolean; now: number; correlationId?: string | null },
): Promise<Omit<CatchUpResult, "orders">> {
  const result: Omit<CatchUpResult, "orders"> = { queued: 0, existing: {} };
  if (rows.length === 0) return result;
  const jobs = rows.flatMap((r) =>
    writeBackJobs({
      rechargeOrderId: r.rechargeOrderId,
      chargeId: r.chargeId ?? undefined,
      isPrepaid: r.isPrepaid,
      apiVersion: r.apiVersion as RechargeApiVersion,
      placed: { platformOrderId: r.platformOrderId, orderNumber: r.orderNumber },
      maxAttempts: o.maxAttempts,
      correlationId: o.correlationId ?? null,
    }),
  );
  // Matched by kind and order, not by dedupe key: a charge write-back queued before its key was
  // the order's alone (recharge:put-charge:<charge id>:<order id>) is found as well.
  const found = await jobsForResources(
    db,
    [JOB_PUT_ORDER, JOB_PUT_CHARGE],
    rows.map((r) => r.rechargeOrderId),
  );
  const have = new Set(found.map((f) => `${f.kind} ${f.resource_id}`));
  for (const f of found) result.existing[f.state] = (result.existing[f.state] ?? 0) + 1;
  const missing = jobs.filter((j) => !have.has(`${j.kind} ${j.resourceId}`));
  if (o.dryRun) {
    result.queued += missing.length;
    return result;
  }
  await transaction(db, async (tx) => {
    for (const j of missing) if ((await enqueue(tx, j, o.now)).inserted) result.queued++;
  });
  return result;
}
