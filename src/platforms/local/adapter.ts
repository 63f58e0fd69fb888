import { sql, type Kysely } from "kysely";
import { currencyExponent, formatMinor, roundAmount } from "../../money.js";
import { differencesAsText } from "../../orders/amounts.js";
import { isUniqueViolation, retryOnConflict } from "../../store/db.js";
import { param, prepare, preparedInsert, type Executor, type Prepared } from "../../store/prepared.js";
import type { Database, LocalOrderItemRow, LocalOrderRow } from "../../store/schema.js";
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
  db: Kysely<Database>;
  catalog: Catalog;
  orderNumberPrefix: string;
  orderNumberStart: number;
  /** Where order and item ids come from: counter rows (SQLite) or sequences (PostgreSQL, no row lock). */
  ids: "counters" | "sequences";
  clock?: () => number;
}

const ORDER_COUNTER = "local_order";
const ITEM_COUNTER = "local_order_item";

/** Thrown inside the transaction to roll it back while still returning a result. */
class Rollback {
  constructor(readonly result: PlatformOrderResult) {}
}

/** Thrown inside the transaction when an order exists under the key already: roll back, then read it. */
class KeyTaken {}

/** An order and its items before the database gave them ids (and the order its number). */
type NewOrderRow = Omit<LocalOrderRow, "id" | "order_number">;
type NewItemRow = Omit<LocalOrderItemRow, "id" | "order_id">;

export interface LocalPlatform extends PlatformAdapter {
  clearCart(cart: CartToClear): Promise<void>;
  /** Creates stock rows for tracked products and the order-number counters, once. */
  init(): Promise<void>;
}

/**
 * The built-in platform: orders live in orderbridge's own database, so placing an order, taking its
 * stock and storing the callback response commit in one transaction.
 */
export function createLocalPlatform(opts: LocalPlatformOptions): LocalPlatform {
  const { db, catalog } = opts;
  const exponent = currencyExponent(catalog.currency);
  const clock = opts.clock ?? Date.now;
  // The statements of placing an order, compiled once (src/store/prepared.ts).
  const q = {
    orderByKey: prepare(db.selectFrom("local_orders").selectAll().where("idempotency_key", "=", param<string>("key"))),
    takeStock: prepare(
      db
        .updateTable("local_stock")
        .set((eb) => ({ available: eb("available", "-", param<number>("quantity")) }))
        .where("sku", "=", param<string>("sku"))
        .where("available", ">=", param<number>("quantity")),
    ),
    insertOrderIfNew: preparedInsert(db, "local_orders", { ifNoConflictOn: "idempotency_key" }),
    insertItems: preparedInsert(db, "local_order_items"),
    itemsOf: prepare(db.selectFrom("local_order_items").selectAll().where("order_id", "=", param<number>("orderId")).orderBy("line_no")),
  };

  /** The result of an order placed earlier under the same key; lines not in it are reported failed. */
  async function loadResult(tx: Executor, row: LocalOrderRow, order: NormalizedOrder): Promise<PlatformOrderResult> {
    const items = (await q.itemsOf.run(tx, { orderId: row.id })).rows;
    const byRef = new Map(items.map((it) => [it.line_ref, it]));
    return {
      order: toPlacedOrder(row),
      lines: order.lines.map((l): LineResult => {
        const it = byRef.get(l.ref);
        return it === undefined
          ? { ok: false, ref: l.ref, sku: l.sku, message: `Product ${l.sku} was not ordered`, errorClass: ERROR_CLASS_PLATFORM }
          : itemResult(it);
      }),
      replayed: true,
      ranAtomically: false,
    };
  }

  async function init(): Promise<void> {
    const stockRows = [...catalog.products.values()]
      .filter((p) => p.stock !== undefined)
      .map((p) => ({ sku: p.sku, available: p.stock as number }));
    if (stockRows.length > 0) {
      await db.insertInto("local_stock").values(stockRows).onConflict((oc) => oc.column("sku").doNothing()).execute();
    }
    await db
      .insertInto("counters")
      .values([
        { name: ORDER_COUNTER, value: opts.orderNumberStart - 1 },
        { name: ITEM_COUNTER, value: 0 },
      ])
      .onConflict((oc) => oc.column("name").doNothing())
      .execute();
    if (opts.ids === "sequences") {
      // A new sequence starts where its counter is (the first start, or the first after an
      // upgrade); setval marks it called, so this happens once. Instances starting together set
      // the same value before any of them takes an id.
      for (const [seq, counter] of [
        ["local_order_ids", ORDER_COUNTER],
        ["local_order_item_ids", ITEM_COUNTER],
      ] as const) {
        await sql`select setval(${seq}::regclass, greatest(c.value, 1), c.value >= 1)
                  from counters c where c.name = ${counter} and not (select is_called from ${sql.table(seq)})`.execute(db);
      }
    }
  }

  /** A new order and its items as stored, with their ids; undefined when the key was taken. */
  type Inserted = { row: LocalOrderRow; items: LocalOrderItemRow[] } | undefined;

  /**
   * SQLite: the ids from the two counter rows, moved on by one statement (the order's counter by 1,
   * the items' by their number); the order inserted unless its key is taken, then its items.
   */
  const bumpBoth = prepare(
    sql<{ name: string; value: number }>`update counters
      set value = value + (case name when ${ORDER_COUNTER} then 1 else ${param<number>("items")} end)
      where name in (${ORDER_COUNTER}, ${ITEM_COUNTER})
      returning name, value`.compile(db),
  );
  async function insertCounted(tx: Executor, order: NewOrderRow, items: NewItemRow[]): Promise<Inserted> {
    const counters = (await bumpBoth.run(tx, { items: items.length })).rows;
    const value = (name: string): number => {
      const counter = counters.find((r) => r.name === name);
      if (counter === undefined) throw new Error(`counter ${name} is missing`);
      return Number(counter.value);
    };
    const orderId = value(ORDER_COUNTER);
    const firstItemId = value(ITEM_COUNTER) - items.length + 1;
    const row: LocalOrderRow = { id: orderId, order_number: `${opts.orderNumberPrefix}${orderId}`, ...order };
    const inserted = await q.insertOrderIfNew(tx, [row]);
    if (Number(inserted.numAffectedRows) !== 1) return undefined;
    const itemRows = items.map((it, i) => ({ id: firstItemId + i, order_id: orderId, ...it }));
    await q.insertItems(tx, itemRows);
    return { row, items: itemRows };
  }

  /**
   * PostgreSQL: the order and its items in one statement (one round trip instead of three): ids
   * from the sequences, the order inserted unless its key is taken, the items only with it. The row
   * values travel as JSON and are typed by the tables' own row types. Built once, on first use (the
   * rows always have the same columns).
   */
  let insertWithIds: Prepared<{ id: number | string; order_number: string; items: { id: number | string; ref: string }[] }> | undefined;
  async function insertSequenced(tx: Executor, order: NewOrderRow, items: NewItemRow[]): Promise<Inserted> {
    if (insertWithIds === undefined) {
      const names = (row: object): string[] => Object.keys(row);
      const cols = (cs: string[]) => sql.join(cs.map((c) => sql.ref(c)));
      const fromR = (cs: string[]) => sql.join(cs.map((c) => sql.ref(`r.${c}`)));
      const orderCols = names(order);
      const itemCols = names(items[0] ?? {});
      insertWithIds = prepare(
        sql<{ id: number | string; order_number: string; items: { id: number | string; ref: string }[] }>`
          with ids as (select nextval('local_order_ids') as id),
          o as (
            insert into local_orders (id, order_number, ${cols(orderCols)})
            select ids.id, ${param<string>("prefix")}::text || ids.id, ${fromR(orderCols)}
            from ids, jsonb_populate_record(null::local_orders, ${param<string>("order")}::jsonb) r
            on conflict (idempotency_key) do nothing
            returning id, order_number
          ),
          i as (
            insert into local_order_items (id, order_id, ${cols(itemCols)})
            select nextval('local_order_item_ids'), o.id, ${fromR(itemCols)}
            from o, jsonb_populate_recordset(null::local_order_items, ${param<string>("items")}::jsonb) r
            returning id, line_ref
          )
          select o.id, o.order_number,
                 coalesce((select json_agg(json_build_object('id', i.id, 'ref', i.line_ref)) from i), '[]'::json) as items
          from o`.compile(db),
      );
    }
    const row = (
      await insertWithIds.run(tx, { prefix: opts.orderNumberPrefix, order: JSON.stringify(order), items: JSON.stringify(items) })
    ).rows[0];
    if (row === undefined) return undefined; // the key is taken: nothing was inserted
    const orderId = Number(row.id);
    const itemIds = new Map(row.items.map((it) => [it.ref, Number(it.id)]));
    return {
      row: { id: orderId, order_number: row.order_number, ...order },
      items: items.map((it) => {
        const id = itemIds.get(it.line_ref);
        if (id === undefined) throw new Error(`the database returned no id for line ${it.line_ref}`);
        return { id, order_id: orderId, ...it };
      }),
    };
  }

  async function createOrder(order: NormalizedOrder, ctx: CreateOrderContext): Promise<PlatformOrderResult> {
    // Most keys are new, so the first pass does not look for an order under the key: its insert
    // finds out (one statement, one PostgreSQL round trip, less per order). When the key is taken
    // (a retry, or another instance placing the same key at this moment, whose insert we waited
    // for), the pass rolls back and the second one reads that order.
    // A deadlock or serialization failure runs the pass again from BEGIN, ctx.atomically included
    // (retryOnConflict): nothing of the failed run was kept.
    for (let pass = 0; ; pass++) {
      try {
        return await retryOnConflict(() => db.transaction().execute((tx) => placeInTransaction(tx, order, ctx, pass > 0)), ctx);
      } catch (e) {
        if (e instanceof Rollback) return e.result;
        if (pass === 0 && (e instanceof KeyTaken || isUniqueViolation(e))) continue;
        if (e instanceof KeyTaken) throw new Error(`an order under key ${ctx.idempotencyKey} exists but could not be read`);
        throw e;
      }
    }
  }

  async function placeInTransaction(
    tx: Kysely<Database>,
    order: NormalizedOrder,
    ctx: CreateOrderContext,
    lookFirst: boolean,
  ): Promise<PlatformOrderResult> {
    const existing = lookFirst ? (await q.orderByKey.run(tx, { key: ctx.idempotencyKey })).rows[0] : undefined;
    if (existing !== undefined) {
      const result = await loadResult(tx, existing, order);
      if (ctx.atomically !== undefined) await ctx.atomically(tx, result);
      return { ...result, ranAtomically: ctx.atomically !== undefined };
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
      ranAtomically: false,
    });
    // Nothing can be placed now; but a retry of an order placed earlier (when there was stock) is
    // answered with that order, by the next pass.
    const keyTaken = async (): Promise<boolean> =>
      !lookFirst && (await q.orderByKey.run(tx, { key: ctx.idempotencyKey })).rows[0] !== undefined;
    if (failedSoFar() && !order.allowPartial) {
      if (await keyTaken()) throw new KeyTaken();
      return notPlaced();
    }

    // Take stock line by line; a line that cannot have it fails, the others keep theirs. The rows
    // are locked in one order whatever the order of the lines (by SKU; a SKU's lines in their own
    // order, which decides which of them gets the last stock), so two orders sharing SKUs never
    // wait for each other's rows in a cycle (on PostgreSQL a deadlock, which fails one of them).
    for (const line of [...order.lines].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0))) {
      const o = outcomes.get(line.ref);
      if (o === undefined || "ok" in o || o.product.stock === undefined) continue;
      const taken = await q.takeStock.run(tx, { sku: line.sku, quantity: line.quantity });
      if (Number(taken.numAffectedRows) !== 1) {
        outcomes.set(line.ref, { ok: false, ref: line.ref, sku: line.sku, message: `Product ${line.sku} is out of stock`, errorClass: ERROR_CLASS_PLATFORM });
      }
    }
    const accepted = order.lines.map((l) => outcomes.get(l.ref)).filter((o): o is AcceptedLine => o !== undefined && !("ok" in o));
    if (accepted.length === 0 || (failedSoFar() && !order.allowPartial)) {
      if (await keyTaken()) throw new KeyTaken(); // the stock taken goes back either way
      throw new Rollback(notPlaced());
    }

    const priced = priceOrder(order, accepted, catalog);
    const createdAt = Math.floor(clock() / 1000) * 1000;
    const orderRow: NewOrderRow = {
      idempotency_key: ctx.idempotencyKey,
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
    const itemRows: NewItemRow[] = priced.lines.map((l) => ({
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

    const inserted = opts.ids === "sequences" ? await insertSequenced(tx, orderRow, itemRows) : await insertCounted(tx, orderRow, itemRows);
    if (inserted === undefined) throw new KeyTaken();
    const { row, items } = inserted;
    const itemByRef = new Map(items.map((it) => [it.line_ref, it]));
    const result: PlatformOrderResult = {
      order: toPlacedOrder(row),
      lines: order.lines.map((l) => {
        const it = itemByRef.get(l.ref);
        return it === undefined ? toLineResult(outcomes.get(l.ref) as LineResult, exponent) : itemResult(it);
      }),
      replayed: false,
      ranAtomically: ctx.atomically !== undefined,
    };
    if (ctx.atomically !== undefined) await ctx.atomically(tx, result);
    return result;
  }

  /** The local storefront has no carts of its own: a cleared cart is recorded (once) for the merchant to see. */
  async function clearCart(cart: CartToClear): Promise<void> {
    await db
      .insertInto("local_cleared_carts")
      .values({ cart_id: cart.cartId, source: cart.source, customer_email: cart.customerEmail ?? null, cleared_at: clock() })
      .onConflict((oc) => oc.column("cart_id").doNothing())
      .execute();
  }

  return { name: "local", atomicWithStore: true, init, createOrder, clearCart };
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

function itemResult(it: LocalOrderItemRow): LineResult {
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

export function toPlacedOrder(row: LocalOrderRow): PlacedOrder {
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
