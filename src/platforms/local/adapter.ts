import { currencyExponent, formatMinor, roundAmount } from "../../money.js";
import { differencesAsText } from "../../orders/amounts.js";
import { isUniqueViolation, retryOnConflict } from "../../store/db.js";
import { transactionOrRollback, type Tx } from "../../store/handle.js";
import type { InStorePlatform, Recorded } from "../../orders/placement.js";
import type { Logger } from "../../logger.js";
import { createLocalOrders, type LocalOrder, type LocalOrderItem, type NewLocalOrder, type NewLocalOrderItem } from "../../store/local-orders.js";
import {
  ERROR_CLASS_PLATFORM,
  type CartToClear,
  type CreateOrderContext,
  type LineResult,
  type NormalizedOrder,
  type PlacedOrder,
  type PlatformAdapter,
  type PlatformOrderResult,
} from "../../orders/types.js";
import type { Catalog } from "./catalog.js";
import { checkLine, priceOrder, type AcceptedLine, type PricedOrder } from "./pricing.js";

export interface LocalPlatformOptions {
  db: Tx;
  catalog: Catalog;
  orderNumberPrefix: string;
  orderNumberStart: number;
  clock?: () => number;
}

/**
 * What one pass of placing an order did in its transaction. Only `recorded` with a kept record
 * commits; the others roll it back (the stock taken goes back).
 */
type Pass<T> =
  | { kind: "recorded"; result: PlatformOrderResult; recorded: Recorded<T> }
  /** Nothing can be placed: recorded afterwards, in a transaction of its own. */
  | { kind: "notPlaced"; result: PlatformOrderResult }
  /** An order exists under the key already: the next pass reads it. */
  | { kind: "keyTaken" };

export interface LocalPlatform extends PlatformAdapter, InStorePlatform {
  clearCart(cart: CartToClear): Promise<void>;
  /** Creates stock rows for tracked products and the order-number counters, once. */
  init(): Promise<void>;
}

/**
 * The built-in platform: orders live in orderbridge's own database, so placing an order, taking its
 * stock and the source's record of it (the callback's answer, the Recharge sync row) commit in one
 * transaction (placeAndRecord, used by the in-store placement). As a PlatformAdapter
 * (createOrder) it records nothing else.
 */
export function createLocalPlatform(opts: LocalPlatformOptions): LocalPlatform {
  const { db, catalog } = opts;
  const exponent = currencyExponent(catalog.currency);
  const clock = opts.clock ?? Date.now;
  const store = createLocalOrders(db, { orderNumberPrefix: opts.orderNumberPrefix, orderNumberStart: opts.orderNumberStart });

  /** The result of an order placed earlier under the same key; lines not in it are reported failed. */
  async function loadResult(tx: Tx, row: LocalOrder, order: NormalizedOrder): Promise<PlatformOrderResult> {
    const items = await store.itemsOf(tx, row.id);
    const byRef = new Map(items.map((it) => [it.line_ref, it]));
    return {
      order: toPlacedOrder(row),
      lines: order.lines.map((l): LineResult => {
        const it = byRef.get(l.ref);
        return it === undefined ? { ok: false, ref: l.ref, sku: l.sku, message: `Product ${l.sku} was not ordered`, errorClass: ERROR_CLASS_PLATFORM } : itemResult(it);
      }),
      replayed: true,
    };
  }

  async function init(): Promise<void> {
    const stock = [...catalog.products.values()].filter((p) => p.stock !== undefined).map((p) => ({ sku: p.sku, available: p.stock as number }));
    await store.init(db, stock);
  }

  async function placeAndRecord<T>(
    order: NormalizedOrder,
    key: string,
    record: (tx: Tx, result: PlatformOrderResult) => Promise<Recorded<T>>,
    o: { log: Logger; signal?: AbortSignal },
  ): Promise<{ result: PlatformOrderResult; recorded: Recorded<T> }> {
    // Most keys are new, so the first pass does not look for an order under the key: its insert
    // finds out (one statement, one PostgreSQL round trip, less per order). When the key is taken
    // (a retry, or another instance placing the same key at this moment, whose insert we waited
    // for), the pass rolls back and the second one reads that order.
    // A deadlock or serialization failure runs the pass again from BEGIN, `record` included
    // (retryOnConflict): nothing of the failed run was kept.
    for (let pass = 0; ; pass++) {
      let p: Pass<T>;
      try {
        const run = await retryOnConflict(
          () =>
            transactionOrRollback(db, async (tx) => {
              const r = await placeInTransaction(tx, order, key, pass > 0, record);
              return { value: r, rollBack: r.kind !== "recorded" || r.recorded.kind === "held" };
            }),
          o,
        );
        p = run.value;
      } catch (e) {
        if (pass === 0 && isUniqueViolation(e)) continue;
        throw e;
      }
      if (p.kind === "keyTaken") {
        if (pass === 0) continue;
        throw new Error(`an order under key ${key} exists but could not be read`);
      }
      if (p.kind === "recorded") return { result: p.result, recorded: p.recorded };
      const result = p.result;
      const alone = await transactionOrRollback(db, async (tx) => {
        const recorded = await record(tx, result);
        return { value: recorded, rollBack: recorded.kind === "held" };
      });
      return { result, recorded: alone.value };
    }
  }

  async function createOrder(order: NormalizedOrder, ctx: CreateOrderContext): Promise<PlatformOrderResult> {
    const nothing = async (): Promise<Recorded<undefined>> => ({ kind: "kept", value: undefined });
    return (await placeAndRecord(order, ctx.idempotencyKey, nothing, ctx)).result;
  }

  async function placeInTransaction<T>(
    tx: Tx,
    order: NormalizedOrder,
    key: string,
    lookFirst: boolean,
    record: (tx: Tx, result: PlatformOrderResult) => Promise<Recorded<T>>,
  ): Promise<Pass<T>> {
    const existing = lookFirst ? await store.orderByKey(tx, key) : undefined;
    if (existing !== undefined) {
      const result = await loadResult(tx, existing, order);
      return { kind: "recorded", result, recorded: await record(tx, result) };
    }

    const outcomes = new Map<string, LineResult | AcceptedLine>();
    for (const line of order.lines) {
      const check = checkLine(order, line, catalog);
      outcomes.set(line.ref, check.ok ? check.accepted : check.failure);
    }
    const failedSoFar = (): boolean => [...outcomes.values()].some((o) => "ok" in o && !o.ok);
    const notPlaced = (): PlatformOrderResult => ({
      order: null,
      lines: order.lines.map((l) => toLineResult(outcomes.get(l.ref) as LineResult | AcceptedLine, exponent)),
      replayed: false,
    });
    // Nothing can be placed now; but a retry of an order placed earlier (when there was stock) is
    // answered with that order, by the next pass.
    const keyTaken = async (): Promise<boolean> => !lookFirst && (await store.orderByKey(tx, key)) !== undefined;
    if (failedSoFar() && !order.allowPartial) {
      if (await keyTaken()) return { kind: "keyTaken" };
      return { kind: "notPlaced", result: notPlaced() };
    }

    // Take stock line by line; a line that cannot have it fails, the others keep theirs. The rows
    // are locked in one order whatever the order of the lines (by SKU; a SKU's lines in their own
    // order, which decides which of them gets the last stock), so two orders sharing SKUs never
    // wait for each other's rows in a cycle (on PostgreSQL a deadlock, which fails one of them).
    for (const line of [...order.lines].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0))) {
      const o = outcomes.get(line.ref);
      if (o === undefined || "ok" in o || o.product.stock === undefined) continue;
      if (!(await store.takeStock(tx, line.sku, line.quantity))) {
        outcomes.set(line.ref, { ok: false, ref: line.ref, sku: line.sku, message: `Product ${line.sku} is out of stock`, errorClass: ERROR_CLASS_PLATFORM });
      }
    }
    const accepted = order.lines.map((l) => outcomes.get(l.ref)).filter((o): o is AcceptedLine => o !== undefined && !("ok" in o));
    if (accepted.length === 0 || (failedSoFar() && !order.allowPartial)) {
      if (await keyTaken()) return { kind: "keyTaken" }; // the stock taken goes back either way
      return { kind: "notPlaced", result: notPlaced() };
    }

    const priced = priceOrder(order, accepted, catalog);
    const createdAt = Math.floor(clock() / 1000) * 1000;
    const orderRow: NewLocalOrder = {
      idempotency_key: key,
      source: order.source,
      source_order_id: order.sourceOrderId ?? null,
      customer_email: order.customer.email,
      source_customer_id: order.customer.sourceCustomerId ?? null,
      platform_customer_id: order.customer.platformCustomerId ?? null,
      currency: order.currency,
      status: "placed",
      state: "open",
      subtotal: priced.subtotal,
      shipping_total: priced.shippingTotal,
      tax_total: priced.taxTotal,
      discount_total: priced.discountTotal,
      total: priced.total,
      shipping_method_code: order.shippingMethodCode ?? null,
      coupon_codes: JSON.stringify(order.couponCodes),
      billing_address: order.billingAddress === undefined ? null : JSON.stringify(order.billingAddress),
      shipping_address: order.shippingAddress === undefined ? null : JSON.stringify(order.shippingAddress),
      created_at: createdAt,
      details: orderDetails(order, priced, exponent),
    };
    const itemRows: NewLocalOrderItem[] = priced.lines.map((l) => ({
      line_no: order.lines.indexOf(l.line),
      line_ref: l.line.ref,
      sku: l.line.sku,
      name: l.product.name,
      description: l.line.description ?? null,
      quantity: l.line.quantity,
      requires_shipping: l.requiresShipping ? 1 : 0,
      unit_price: l.unitPriceMinor,
      shipping_total: l.shippingTotal,
      tax_total: l.taxTotal,
      discount_total: 0,
      line_total: l.lineTotal,
      subscription_id: l.line.subscriptionId ?? null,
      properties: l.line.properties === undefined || l.line.properties.length === 0 ? null : JSON.stringify(l.line.properties),
    }));

    const inserted = await store.insert(tx, orderRow, itemRows);
    if (inserted === undefined) return { kind: "keyTaken" };
    const { row, items } = inserted;
    const itemByRef = new Map(items.map((it) => [it.line_ref, it]));
    const result: PlatformOrderResult = {
      order: toPlacedOrder(row),
      lines: order.lines.map((l) => {
        const it = itemByRef.get(l.ref);
        return it === undefined ? toLineResult(outcomes.get(l.ref) as LineResult, exponent) : itemResult(it);
      }),
      replayed: false,
    };
    return { kind: "recorded", result, recorded: await record(tx, result) };
  }

  /** The local storefront has no carts of its own: a cleared cart is recorded (once) for the merchant to see. */
  async function clearCart(cart: CartToClear): Promise<void> {
    await store.recordClearedCart(db, { cartId: cart.cartId, source: cart.source, customerEmail: cart.customerEmail ?? null, clearedAt: clock() });
  }

  return { name: "local", init, createOrder, placeAndRecord, clearCart };
}

/**
 * What the source sent beyond lines and prices, kept as JSON (null when there is nothing): the
 * charged shipping lines with their tax, the discounts, and where the source's totals and its lines
 * disagree, the differences (amounts as decimal text in the currency's unit).
 */
function orderDetails(order: NormalizedOrder, priced: PricedOrder, exponent: number): string | null {
  const m = (n: number): string => formatMinor(n, exponent);
  const d: Record<string, unknown> = {};
  if (priced.shippingLines !== undefined) d["shippingLines"] = priced.shippingLines.map((s) => ({ ...s, price: m(s.price), taxTotal: m(s.taxTotal) }));
  if (priced.discounts.length > 0) d["discounts"] = priced.discounts.map((x) => ({ ...x, amount: m(x.amount) }));
  if (priced.differences.length > 0) d["amountDifferences"] = differencesAsText(priced.differences, exponent);
  if (order.note !== undefined) d["note"] = order.note;
  if (order.tags !== undefined) d["tags"] = order.tags;
  if (order.attributes !== undefined && order.attributes.length > 0) d["attributes"] = order.attributes;
  return Object.keys(d).length === 0 ? null : JSON.stringify(d);
}

function toLineResult(o: LineResult | AcceptedLine, exponent: number): LineResult {
  if ("ok" in o) return o;
  // Accepted but not ordered (the order was not placed): reported as ok, without an item id.
  return {
    ok: true,
    ref: o.line.ref,
    platformItemId: "",
    sku: o.line.sku,
    name: o.product.name,
    quantity: o.line.quantity,
    requiresShipping: o.requiresShipping,
    unitPrice: roundAmount(o.unitPrice, exponent),
    shippingTotal: 0,
    taxTotal: 0,
    discountTotal: 0,
    lineTotal: 0,
  };
}

function itemResult(it: LocalOrderItem): LineResult {
  return {
    ok: true,
    ref: it.line_ref,
    platformItemId: String(it.id),
    sku: it.sku,
    name: it.name,
    quantity: it.quantity,
    requiresShipping: it.requires_shipping === 1,
    unitPrice: it.unit_price,
    shippingTotal: it.shipping_total,
    taxTotal: it.tax_total,
    discountTotal: it.discount_total,
    lineTotal: it.line_total,
  };
}

export function toPlacedOrder(row: LocalOrder): PlacedOrder {
  return {
    platformOrderId: String(row.id),
    orderNumber: row.order_number,
    createdAt: new Date(row.created_at).toISOString().replace(/\.\d{3}Z$/, "Z"),
    currency: row.currency,
    status: row.status,
    state: row.state,
    subtotal: row.subtotal,
    shippingTotal: row.shipping_total,
    taxTotal: row.tax_total,
    discountTotal: row.discount_total,
    total: row.total,
  };
}
