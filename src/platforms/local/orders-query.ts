import { currencyUnit, formatMinor } from "../../money.js";
import type { Tx } from "../../store/handle.js";
import { itemsOfOrders, listLocalOrders, localOrderByNumber, type LocalOrder, type LocalOrderItem } from "../../store/local-orders.js";

/** An order of the local platform as the admin API shows it (amounts as decimal text). */
export interface OrderView {
  platformOrderId: string;
  orderNumber: string;
  source: string;
  salesOrderToken: string | null;
  /** The source's own order id (Subscribe Pro salesOrderToken, Recharge order id). */
  sourceOrderId: string | null;
  status: string;
  state: string;
  createdAt: string;
  currency: string;
  customer: { email: string; sourceCustomerId: string | null; platformCustomerId: string | null };
  subtotal: string;
  shippingTotal: string;
  taxTotal: string;
  discountTotal: string;
  total: string;
  shippingMethodCode: string | null;
  couponCodes: string[];
  billingAddress: Record<string, string> | null;
  shippingAddress: Record<string, string> | null;
  items: {
    platformOrderItemId: string;
    sku: string;
    name: string;
    description: string | null;
    quantity: number;
    requiresShipping: boolean;
    unitPrice: string;
    shippingTotal: string;
    taxTotal: string;
    lineTotal: string;
    subscriptionId: string | null;
    properties: { name: string; value: string }[];
  }[];
  /**
   * What the source sent beyond lines and prices: shippingLines (with their taxTotal), discounts,
   * amountDifferences (where the source's totals and its lines disagree: the totals above are the
   * source's), note, tags, attributes.
   */
  details: Record<string, unknown> | null;
}

function view(o: LocalOrder, items: LocalOrderItem[]): OrderView {
  // Stored orders passed the ISO 4217 check; one stored before it had two decimals.
  const exp = currencyUnit(o.currency) ?? 2;
  const m = (n: number): string => formatMinor(n, exp);
  return {
    platformOrderId: String(o.id),
    orderNumber: o.order_number,
    source: o.source,
    salesOrderToken: o.source === "subscribe-pro" ? o.source_order_id : null,
    sourceOrderId: o.source_order_id,
    status: o.status,
    state: o.state,
    createdAt: new Date(o.created_at).toISOString(),
    currency: o.currency,
    customer: { email: o.customer_email, sourceCustomerId: o.source_customer_id, platformCustomerId: o.platform_customer_id },
    subtotal: m(o.subtotal),
    shippingTotal: m(o.shipping_total),
    taxTotal: m(o.tax_total),
    discountTotal: m(o.discount_total),
    total: m(o.total),
    shippingMethodCode: o.shipping_method_code,
    couponCodes: JSON.parse(o.coupon_codes) as string[],
    billingAddress: o.billing_address === null ? null : (JSON.parse(o.billing_address) as Record<string, string>),
    shippingAddress: o.shipping_address === null ? null : (JSON.parse(o.shipping_address) as Record<string, string>),
    items: items.map((it) => ({
      platformOrderItemId: String(it.id),
      sku: it.sku,
      name: it.name,
      description: it.description,
      quantity: it.quantity,
      requiresShipping: it.requires_shipping === 1,
      unitPrice: m(it.unit_price),
      shippingTotal: m(it.shipping_total),
      taxTotal: m(it.tax_total),
      lineTotal: m(it.line_total),
      subscriptionId: it.subscription_id,
      properties: it.properties === null ? [] : (JSON.parse(it.properties) as { name: string; value: string }[]),
    })),
    details: o.details === null ? null : (JSON.parse(o.details) as Record<string, unknown>),
  };
}

async function withItems(db: Tx, orders: LocalOrder[]): Promise<OrderView[]> {
  if (orders.length === 0) return [];
  const items = await itemsOfOrders(
    db,
    orders.map((o) => o.id),
  );
  const byOrder = new Map<number, LocalOrderItem[]>();
  for (const it of items) byOrder.set(it.order_id, [...(byOrder.get(it.order_id) ?? []), it]);
  return orders.map((o) => view(o, byOrder.get(o.id) ?? []));
}

/** Newest first; `before` is the platformOrderId to continue after (keyset pagination). */
export async function listOrders(
  db: Tx,
  q: { salesOrderToken?: string; source?: string; sourceOrderId?: string; limit: number; before?: number },
): Promise<{ orders: OrderView[]; nextBefore: string | null }> {
  // One more than a page: whether there is a next one.
  const rows = await listLocalOrders(db, q);
  const page = rows.slice(0, q.limit);
  return {
    orders: await withItems(db, page),
    nextBefore: rows.length > q.limit ? String(page[page.length - 1]?.id) : null,
  };
}

export async function getOrder(db: Tx, orderNumber: string): Promise<OrderView | undefined> {
  const row = await localOrderByNumber(db, orderNumber);
  if (row === undefined) return undefined;
  const [v] = await withItems(db, [row]);
  return v;
}
