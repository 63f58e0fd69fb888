import { sql } from "kysely";
import { dialectOf, kx, type Tx } from "./handle.js";
import { param, prepare, preparedInsert, type Prepared } from "./prepared.js";
import type { LocalOrderItemRow, LocalOrderRow } from "./schema.js";

/**
 * The local platform's tables: `local_orders` and `local_order_items` (ids from counter rows on
 * SQLite, from sequences on PostgreSQL, which take no row lock), `local_stock`, `counters` and
 * `local_cleared_carts`. Rows are as stored: amounts in minor units, JSON columns as text.
 */
export type LocalOrder = LocalOrderRow;
export type LocalOrderItem = LocalOrderItemRow;
/** An order and its items before the database gave them ids (and the order its number). */
export type NewLocalOrder = Omit<LocalOrderRow, "id" | "order_number">;
export type NewLocalOrderItem = Omit<LocalOrderItemRow, "id" | "order_id">;

const ORDER_COUNTER = "local_order";
const ITEM_COUNTER = "local_order_item";

export interface LocalOrders {
  /** The order placed under an idempotency key, if any. */
  orderByKey(tx: Tx, key: string): Promise<LocalOrder | undefined>;
  itemsOf(tx: Tx, orderId: number): Promise<LocalOrderItem[]>;
  /** Takes `quantity` of a tracked SKU's stock; false when there is not that much (nothing taken). */
  takeStock(tx: Tx, sku: string, quantity: number): Promise<boolean>;
  /** Inserts a new order and its items with their ids; undefined when its key is taken (nothing inserted). */
  insert(tx: Tx, order: NewLocalOrder, items: NewLocalOrderItem[]): Promise<{ row: LocalOrder; items: LocalOrderItem[] } | undefined>;
  /** Creates stock rows for tracked products and the order-number counters, once. */
  init(tx: Tx, stock: { sku: string; available: number }[]): Promise<void>;
  /** Records a cleared cart (once). */
  recordClearedCart(tx: Tx, cart: { cartId: string; source: string; customerEmail: string | null; clearedAt: number }): Promise<void>;
}

/**
 * The local platform's statements, compiled once for the database `root` is a handle of
 * (src/store/prepared.ts). Order numbers are `orderNumberPrefix` + the order's id; the first id
 * is `orderNumberStart`.
 */
export function createLocalOrders(root: Tx, opts: { orderNumberPrefix: string; orderNumberStart: number }): LocalOrders {
  const db = kx(root);
  const sequences = dialectOf(root) === "postgres";
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

  type Inserted = { row: LocalOrder; items: LocalOrderItem[] } | undefined;

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
  async function insertCounted(tx: Tx, order: NewLocalOrder, items: NewLocalOrderItem[]): Promise<Inserted> {
    const counters = (await bumpBoth.run(kx(tx), { items: items.length })).rows;
    const value = (name: string): number => {
      const counter = counters.find((r) => r.name === name);
      if (counter === undefined) throw new Error(`counter ${name} is missing`);
      return Number(counter.value);
    };
    const orderId = value(ORDER_COUNTER);
    const firstItemId = value(ITEM_COUNTER) - items.length + 1;
    const row: LocalOrder = { id: orderId, order_number: `${opts.orderNumberPrefix}${orderId}`, ...order };
    const inserted = await q.insertOrderIfNew(kx(tx), [row]);
    if (Number(inserted.numAffectedRows) !== 1) return undefined;
    const itemRows = items.map((it, i) => ({ id: firstItemId + i, order_id: orderId, ...it }));
    await q.insertItems(kx(tx), itemRows);
    return { row, items: itemRows };
  }

  /**
   * PostgreSQL: the order and its items in one statement (one round trip instead of three): ids
   * from the sequences, the order inserted unless its key is taken, the items only with it. The row
   * values travel as JSON and are typed by the tables' own row types. Built once, on first use (the
   * rows always have the same columns).
   */
  let insertWithIds: Prepared<{ id: number | string; order_number: string; items: { id: number | string; ref: string }[] }> | undefined;
  async function insertSequenced(tx: Tx, order: NewLocalOrder, items: NewLocalOrderItem[]): Promise<Inserted> {
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
    const row = (await insertWithIds.run(kx(tx), { prefix: opts.orderNumberPrefix, order: JSON.stringify(order), items: JSON.stringify(items) })).rows[0];
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

  return {
    async orderByKey(tx, key) {
      return (await q.orderByKey.run(kx(tx), { key })).rows[0];
    },
    async itemsOf(tx, orderId) {
      return (await q.itemsOf.run(kx(tx), { orderId })).rows;
    },
    async takeStock(tx, sku, quantity) {
      const taken = await q.takeStock.run(kx(tx), { sku, quantity });
      return Number(taken.numAffectedRows) === 1;
    },
    insert: (tx, order, items) => (sequences ? insertSequenced(tx, order, items) : insertCounted(tx, order, items)),
    async init(tx, stock) {
      const k = kx(tx);
      if (stock.length > 0)
        await k
          .insertInto("local_stock")
          .values(stock)
          .onConflict((oc) => oc.column("sku").doNothing())
          .execute();
      await k
        .insertInto("counters")
        .values([
          { name: ORDER_COUNTER, value: opts.orderNumberStart - 1 },
          { name: ITEM_COUNTER, value: 0 },
        ])
        .onConflict((oc) => oc.column("name").doNothing())
        .execute();
      if (sequences) {
        // A new sequence starts where its counter is (the first start, or the first after an
        // upgrade); setval marks it called, so this happens once. Instances starting together set
        // the same value before any of them takes an id.
        for (const [seq, counter] of [
          ["local_order_ids", ORDER_COUNTER],
          ["local_order_item_ids", ITEM_COUNTER],
        ] as const) {
          await sql`select setval(${seq}::regclass, greatest(c.value, 1), c.value >= 1)
                    from counters c where c.name = ${counter} and not (select is_called from ${sql.table(seq)})`.execute(k);
        }
      }
    },
    async recordClearedCart(tx, cart) {
      await kx(tx)
        .insertInto("local_cleared_carts")
        .values({ cart_id: cart.cartId, source: cart.source, customer_email: cart.customerEmail, cleared_at: cart.clearedAt })
        .onConflict((oc) => oc.column("cart_id").doNothing())
        .execute();
    },
  };
}

/** The orders the admin API lists: newest first, `before` an id to continue after (keyset pagination), one more than `limit` to tell a next page. */
export async function listLocalOrders(tx: Tx, q: { salesOrderToken?: string; source?: string; sourceOrderId?: string; limit: number; before?: number }): Promise<LocalOrder[]> {
  let query = kx(tx)
    .selectFrom("local_orders")
    .selectAll()
    .orderBy("id", "desc")
    .limit(q.limit + 1);
  if (q.salesOrderToken !== undefined) {
    query = query.where("source", "=", "subscribe-pro").where("source_order_id", "=", q.salesOrderToken);
  }
  if (q.source !== undefined) query = query.where("source", "=", q.source);
  if (q.sourceOrderId !== undefined) query = query.where("source_order_id", "=", q.sourceOrderId);
  if (q.before !== undefined) query = query.where("id", "<", q.before);
  return query.execute();
}

export async function localOrderByNumber(tx: Tx, orderNumber: string): Promise<LocalOrder | undefined> {
  return kx(tx).selectFrom("local_orders").selectAll().where("order_number", "=", orderNumber).executeTakeFirst();
}

/** The items of these orders, by order and line. */
export async function itemsOfOrders(tx: Tx, orderIds: readonly number[]): Promise<LocalOrderItem[]> {
  if (orderIds.length === 0) return [];
  return kx(tx).selectFrom("local_order_items").selectAll().where("order_id", "in", orderIds).orderBy("order_id").orderBy("line_no").execute();
}
