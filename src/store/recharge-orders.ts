import { kx, type Tx } from "./handle.js";
import type { RechargeOrderRow } from "./schema.js";

/**
 * The `recharge_orders` table: one sync row per Recharge order placed, naming the platform's order
 * (what the write-backs send) and, once known, the order's charge.
 */
export interface PlacedRechargeOrder {
  rechargeOrderId: string;
  platform: string;
  platformOrderId: string;
  orderNumber: string;
  chargeId: string | null;
  isPrepaid: boolean;
  apiVersion: string;
  /** The inbox event that placed it. */
  eventId: string;
  placedAt: number;
}

/** The platform's order for a Recharge order, when one was placed. */
export async function findPlaced(tx: Tx, rechargeOrderId: string): Promise<{ platformOrderId: string; orderNumber: string } | undefined> {
  const row = await kx(tx).selectFrom("recharge_orders").select(["platform_order_id", "order_number"]).where("recharge_order_id", "=", rechargeOrderId).executeTakeFirst();
  return row && { platformOrderId: row.platform_order_id, orderNumber: row.order_number };
}

/** Records a placed order; a Recharge order recorded already keeps its first row. */
export async function recordPlaced(tx: Tx, o: PlacedRechargeOrder): Promise<void> {
  await kx(tx)
    .insertInto("recharge_orders")
    .values({
      recharge_order_id: o.rechargeOrderId,
      platform: o.platform,
      platform_order_id: o.platformOrderId,
      order_number: o.orderNumber,
      charge_id: o.chargeId,
      is_prepaid: o.isPrepaid ? 1 : 0,
      api_version: o.apiVersion,
      event_id: o.eventId,
      placed_at: o.placedAt,
    })
    .onConflict((oc) => oc.column("recharge_order_id").doNothing())
    .execute();
}

/** The charge id kept for a Recharge order (null: not known yet, or no such order). */
export async function chargeIdOf(tx: Tx, rechargeOrderId: string): Promise<string | null> {
  const row = await kx(tx).selectFrom("recharge_orders").select("charge_id").where("recharge_order_id", "=", rechargeOrderId).executeTakeFirst();
  return row?.charge_id ?? null;
}

/** Keeps a learnt charge id, unless the row names one already. */
export async function setChargeIdIfUnknown(tx: Tx, rechargeOrderId: string, chargeId: string): Promise<void> {
  await kx(tx).updateTable("recharge_orders").set({ charge_id: chargeId }).where("recharge_order_id", "=", rechargeOrderId).where("charge_id", "is", null).execute();
}

/**
 * A page of the orders placed since `since`, oldest first, keyset-paginated on (placed_at, id):
 * `after` is the last order of the previous page.
 */
export async function placedSince(tx: Tx, o: { since: number; after: { placedAt: number; rechargeOrderId: string } | undefined; limit: number }): Promise<PlacedRechargeOrder[]> {
  let q = kx(tx).selectFrom("recharge_orders").selectAll().where("placed_at", ">=", o.since);
  const a = o.after;
  if (a !== undefined) {
    q = q.where((eb) => eb.or([eb("placed_at", ">", a.placedAt), eb.and([eb("placed_at", "=", a.placedAt), eb("recharge_order_id", ">", a.rechargeOrderId)])]));
  }
  const rows = await q.orderBy("placed_at").orderBy("recharge_order_id").limit(o.limit).execute();
  return rows.map(placedOf);
}

/** The orders of these Recharge order ids that were placed, by id. */
export async function placedByIds(tx: Tx, ids: readonly string[]): Promise<Map<string, PlacedRechargeOrder>> {
  const placed = new Map<string, PlacedRechargeOrder>();
  if (ids.length === 0) return placed;
  for (const r of await kx(tx).selectFrom("recharge_orders").selectAll().where("recharge_order_id", "in", ids).execute()) placed.set(r.recharge_order_id, placedOf(r));
  return placed;
}

function placedOf(r: RechargeOrderRow): PlacedRechargeOrder {
  return {
    rechargeOrderId: r.recharge_order_id,
    platform: r.platform,
    platformOrderId: r.platform_order_id,
    orderNumber: r.order_number,
    chargeId: r.charge_id,
    isPrepaid: r.is_prepaid === 1,
    apiVersion: r.api_version,
    eventId: r.event_id,
    placedAt: Number(r.placed_at),
  };
}
