import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig } from "../../src/config.js";
import { ConfigError } from "../../src/errors.js";
import { createLogger } from "../../src/logger.js";
import type { CreateOrderContext, NormalizedOrder, PlatformOrderResult } from "../../src/orders/types.js";
import { createLocalPlatform, type LocalPlatform } from "../../src/platforms/local/adapter.js";
import { compileCatalog } from "../../src/platforms/local/catalog.js";
import { noScrub } from "../../src/security/scrub.js";
import { openStore, type Store } from "../../src/store/db.js";
import { createSchemaRegistry } from "../../src/validation/schemas.js";
import { freshDatabase, storeKinds } from "../helpers/stores.js";

// The local platform's promise for a key (src/platforms/local/adapter.ts): a new key is placed
// without looking it up first; a key that is taken is answered with its order, whatever the stock
// says now, and the stock a refused pass took goes back.

const log = createLogger({ level: "error", format: "json", silent: true });
const schemas = createSchemaRegistry();
const catalogDoc = {
  currency: "USD",
  products: [
    { sku: "SCARCE", name: "Scarce Tea", price: "5.00", stock: 3 },
    { sku: "RARE", name: "Rare Tea", price: "9.00", stock: 2 },
    { sku: "PLENTY", name: "Plenty Tea", price: "4.00" },
  ],
  shippingMethods: { ups_ground: { perOrder: "3.00" } },
};

describe("the local platform's catalog", () => {
  it("refuses a price finer than its currency's smallest unit (it would be rounded silently)", () => {
    const doc = (currency: string, price: string) => ({ currency, products: [{ sku: "A", name: "A", price }], shippingMethods: { ups_ground: { perOrder: "0" } } });
    assert.throws(() => compileCatalog(doc("USD", "1.001"), schemas, "test"), /test: \/products\/0\/price \(1\.001\) has more decimals than USD has \(2\)/);
    assert.throws(() => compileCatalog(doc("JPY", "1.50"), schemas, "test"), /has more decimals than JPY has \(0\)/);
    assert.doesNotThrow(() => compileCatalog(doc("USD", "9.9900"), schemas, "test"), "trailing zeros are exact");
    assert.doesNotThrow(() => compileCatalog(doc("JPY", "150"), schemas, "test"));
  });

  it("takes its currency's unit from ISO 4217 (IQD 3, LBP 2) and refuses a currency ISO 4217 does not price in (ConfigError)", () => {
    const doc = (currency: string, price: string) => ({ currency, products: [{ sku: "A", name: "A", price }] });
    assert.equal(compileCatalog(doc("IQD", "12.345"), schemas, "test").products.get("A")?.price, 12345);
    assert.equal(compileCatalog(doc("LBP", "1500.50"), schemas, "test").products.get("A")?.price, 150050);
    for (const code of ["XYZ", "XAU"]) {
      assert.throws(
        () => compileCatalog(doc(code, "1"), schemas, "test"),
        (e: unknown) => e instanceof ConfigError && /test is not a valid catalog: \/currency is not an ISO 4217 currency code with a minor unit/.test(e.message),
      );
    }
  });
});

function order(lines: [string, number][], allowPartial = false): NormalizedOrder {
  return {
    source: "subscribe-pro",
    sourceOrderId: "t",
    allowPartial,
    currency: "USD",
    customer: { email: "jane.doe@example.com" },
    shippingAddress: { firstName: "Jane", lastName: "Doe", city: "Springfield", country: "US" },
    shippingMethodCode: "ups_ground",
    couponCodes: [],
    lines: lines.map(([sku, quantity], i) => ({ ref: String(i), sku, quantity })),
  };
}

const ctx = (key: string, extra: Partial<CreateOrderContext> = {}): CreateOrderContext => ({
  idempotencyKey: key,
  signal: new AbortController().signal,
  log,
  scrub: noScrub,
  ...extra,
});

/** Runs `fn` with a fresh store and local platform, closed and removed afterwards. */
async function withLocal(kind: "sqlite" | "postgres", fn: (t: { store: Store; local: LocalPlatform }) => Promise<void>): Promise<void> {
  const d = freshDatabase(kind);
  const store = await openStore(loadConfig(d.env).database, log);
  try {
    const local = createLocalPlatform({
      db: store.handle,
      catalog: compileCatalog(catalogDoc, schemas, "test"),
      orderNumberPrefix: "OB-",
      orderNumberStart: 1000,
    });
    await local.init();
    await fn({ store, local });
  } finally {
    await store.close();
    await d.cleanup();
  }
}

async function stock(store: Store, sku: string): Promise<number> {
  const row = await store.db.selectFrom("local_stock").select("available").where("sku", "=", sku).executeTakeFirstOrThrow();
  return Number(row.available);
}
const count = async (store: Store, key: string): Promise<number> => (await store.db.selectFrom("local_orders").select("id").where("idempotency_key", "=", key).execute()).length;

for (const { kind, skip } of await storeKinds()) {
  describe(`local platform: one order per key [${kind}]`, { skip }, () => {
    it("a retry after the stock ran out is answered with the order placed, and takes nothing", () =>
      withLocal(kind, async (t) => {
        const first = await t.local.createOrder(order([["SCARCE", 3]]), ctx("k-sold-out"));
        assert.ok(first.order !== null);
        assert.equal(first.replayed, false);
        assert.equal(await stock(t.store, "SCARCE"), 0);
        const again = await t.local.createOrder(order([["SCARCE", 3]]), ctx("k-sold-out"));
        assert.equal(again.replayed, true);
        assert.equal(again.order?.orderNumber, first.order.orderNumber);
        assert.deepEqual(again.lines, first.lines);
        assert.equal(await stock(t.store, "SCARCE"), 0);
        assert.equal(await count(t.store, "k-sold-out"), 1);
      }));

    it("a retry that could take its first line's stock but not its second's gives the first back", () =>
      withLocal(kind, async (t) => {
        const first = await t.local.createOrder(
          order([
            ["SCARCE", 1],
            ["RARE", 2],
          ]),
          ctx("k-mixed"),
        );
        assert.ok(first.order !== null);
        assert.deepEqual([await stock(t.store, "SCARCE"), await stock(t.store, "RARE")], [2, 0]);
        // The retry takes one SCARCE, finds no RARE, finds the key taken: answered with the order, nothing taken.
        const again = await t.local.createOrder(
          order([
            ["SCARCE", 1],
            ["RARE", 2],
          ]),
          ctx("k-mixed"),
        );
        assert.equal(again.replayed, true);
        assert.equal(again.order?.orderNumber, first.order.orderNumber);
        assert.deepEqual([await stock(t.store, "SCARCE"), await stock(t.store, "RARE")], [2, 0]);
        // A new key in the same position is refused and takes nothing either.
        const refused = await t.local.createOrder(
          order([
            ["SCARCE", 1],
            ["RARE", 1],
          ]),
          ctx("k-refused"),
        );
        assert.equal(refused.order, null);
        assert.equal(refused.replayed, false);
        assert.deepEqual([await stock(t.store, "SCARCE"), await stock(t.store, "RARE")], [2, 0]);
        assert.equal(await count(t.store, "k-refused"), 0);
      }));

    it("the writes of the caller commit with a replay, once per call", () =>
      withLocal(kind, async (t) => {
        const seen: boolean[] = [];
        const record = async (_tx: unknown, result: PlatformOrderResult) => {
          seen.push(result.replayed);
          return { kind: "kept" as const, value: result.replayed };
        };
        const first = await t.local.placeAndRecord(order([["PLENTY", 1]]), "k-atomic", record, { log });
        const again = await t.local.placeAndRecord(order([["PLENTY", 1]]), "k-atomic", record, { log });
        assert.deepEqual(first.recorded, { kind: "kept", value: false });
        assert.deepEqual(again.recorded, { kind: "kept", value: true });
        assert.deepEqual(seen, [false, true]);
      }));

    it("stores every field of the order and its lines, with the ids it answered", () =>
      withLocal(kind, async (t) => {
        const o: NormalizedOrder = {
          ...order(
            [
              ["PLENTY", 2],
              ["NOT-SOLD", 1],
              ["SCARCE", 1],
            ],
            true,
          ),
          sourceOrderId: "src-9",
          customer: { email: "jane.doe@example.com", sourceCustomerId: "c-1", platformCustomerId: "p-1" },
          billingAddress: { firstName: "Jane", city: "Springfield", country: "US" },
          couponCodes: ["TEN", "ÉTÉ"],
          note: "ring twice — thanks",
          tags: "subscription",
          attributes: [{ name: "gift", value: "yes" }],
        };
        o.lines[0] = { ...o.lines[0]!, description: 'fine "leaf"', properties: [{ name: "grind", value: "coarse" }], subscriptionId: "s-1" };
        const r = await t.local.createOrder(o, ctx("k-fields"));
        assert.ok(r.order !== null);
        const row = await t.store.db.selectFrom("local_orders").selectAll().where("idempotency_key", "=", "k-fields").executeTakeFirstOrThrow();
        assert.equal(String(row.id), r.order.platformOrderId);
        assert.equal(row.order_number, r.order.orderNumber);
        assert.equal(row.order_number, `OB-${row.id}`);
        assert.equal(row.source_order_id, "src-9");
        assert.deepEqual([row.source_customer_id, row.platform_customer_id], ["c-1", "p-1"]);
        assert.deepEqual(JSON.parse(row.coupon_codes), ["TEN", "ÉTÉ"]);
        assert.deepEqual(JSON.parse(row.billing_address ?? "null"), { firstName: "Jane", city: "Springfield", country: "US" });
        assert.deepEqual(JSON.parse(row.details ?? "null"), { note: "ring twice — thanks", tags: "subscription", attributes: [{ name: "gift", value: "yes" }] });
        assert.equal(Number(row.total), r.order.total);
        const items = await t.store.db.selectFrom("local_order_items").selectAll().where("order_id", "=", row.id).orderBy("line_no").execute();
        assert.deepEqual(
          items.map((it) => [it.line_no, it.line_ref, it.sku, it.description, it.properties, it.subscription_id, Number(it.quantity), Number(it.requires_shipping)]),
          [
            [0, "0", "PLENTY", 'fine "leaf"', JSON.stringify([{ name: "grind", value: "coarse" }]), "s-1", 2, 1],
            [2, "2", "SCARCE", null, null, null, 1, 1],
          ],
        );
        // Every line placed answers the id of its own stored item; the unknown SKU failed.
        const answered = new Map(r.lines.filter((l) => l.ok).map((l) => [l.ref, (l as { platformItemId: string }).platformItemId]));
        assert.deepEqual(answered, new Map(items.map((it) => [it.line_ref, String(it.id)])));
        assert.equal(r.lines[1]?.ok, false);
      }));

    it("the same new key placed many times at once makes one order; every call gets it", () =>
      withLocal(kind, async (t) => {
        const results = await Promise.all(Array.from({ length: 10 }, () => t.local.createOrder(order([["SCARCE", 1]]), ctx("k-race"))));
        const numbers = new Set(results.map((r) => r.order?.orderNumber));
        assert.equal(numbers.size, 1);
        assert.ok(!numbers.has(undefined));
        assert.equal(results.filter((r) => !r.replayed).length, 1);
        assert.equal(await count(t.store, "k-race"), 1);
        assert.equal(await stock(t.store, "SCARCE"), 2);
      }));
  });
}
