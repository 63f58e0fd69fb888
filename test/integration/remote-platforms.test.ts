import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Webhook } from "standardwebhooks";
import { deliveryId } from "../../src/platforms/http/adapter.js";
import { idempotencyTag } from "../../src/platforms/shopify/adapter.js";
import fs from "node:fs";
import { startOmsStandIn, type OmsStandIn } from "../helpers/oms-stand-in.js";
import { rcFixture, rcFixtureText, startRechargeService, type Json, type RechargeTestService } from "../helpers/recharge.js";
import { minimalOrder } from "../helpers/service.js";
import { startShopifyStandIn, type ShopifyStandIn } from "../helpers/shopify-stand-in.js";

// Remote platforms keep no state in our database beyond the usual, so SQLite suffices here; the
// store-dependent paths (claims, inbox, outbox) are covered on both stores elsewhere.
const kind = "sqlite" as const;
const OMS_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SHOP_TOKEN = "shpat_test_token";

/** The reference's Update an order example as a successful order not yet synced (test/fixtures/recharge/reference). */
function referenceUpdateOrder(): string {
  const body = JSON.parse(fs.readFileSync(new URL("../fixtures/recharge/reference/order-update.json", import.meta.url), "utf8")) as Json;
  Object.assign(body["order"], { external_order_id: { ecommerce: null }, external_order_number: { ecommerce: null } });
  return JSON.stringify(body);
}

const spItems = (...skus: string[]): Json[] => skus.map((sku, i) => ({ productSku: sku, qty: String(i + 2), subscription: { id: `sub-${i}` } }));

describe("PLATFORM=http: orders go to the merchant's own system", () => {
  let oms: OmsStandIn;
  let t: RechargeTestService;
  before(async () => {
    oms = await startOmsStandIn({ secret: OMS_SECRET, skus: ["RUBY-RED", "EARL-GREY", "TOM0001"] });
    t = await startRechargeService(kind, {
      env: {
        PLATFORM: "http",
        PLATFORM_HTTP_URL: `${oms.url}/orders`,
        PLATFORM_HTTP_CART_URL: `${oms.url}/carts`,
        PLATFORM_HTTP_SECRET: OMS_SECRET,
        PLATFORM_TIMEOUT_MS: "1000",
        PLATFORM_DEADLINE_MS: "3000",
      },
    });
  });
  after(async () => {
    await t.stop();
    await oms.close();
  });

  it("Subscribe Pro: 201 with the OMS's order number and item ids; the request is signed and matches the published schema", async () => {
    const res = await t.callback(minimalOrder("http-201", spItems("RUBY-RED", "EARL-GREY")));
    assert.equal(res.status, 201);
    assert.match(res.body.orderNumber, /^OMS-\d+$/);
    assert.deepEqual(
      res.body.orderDetails.items.map((i: Json) => i["productSku"]),
      ["RUBY-RED", "EARL-GREY"],
    );
    const call = oms.calls.at(-1);
    assert.ok(call);
    assert.equal(call.verified, true, "Standard Webhooks signature verified by the receiver");
    assert.equal(call.headers["webhook-id"], deliveryId("sp:http-201"));
    const h = (n: string): string => String(call.headers[n]);
    const headers = { "webhook-id": h("webhook-id"), "webhook-timestamp": h("webhook-timestamp"), "webhook-signature": h("webhook-signature") };
    assert.doesNotThrow(() => new Webhook(OMS_SECRET).verify(JSON.stringify(call.body), headers), "the official library verifies it");
    assert.equal(call.body["type"], "order.create");
    assert.equal(call.body["idempotencyKey"], "sp:http-201");
    const again = await t.callback(minimalOrder("http-201", spItems("RUBY-RED", "EARL-GREY")));
    assert.equal(again.text, res.text, "a retry is answered from our store");
  });

  it("Subscribe Pro: 202 when allowed to place in part, 409 with every item when not", async () => {
    const partial = await t.callback(minimalOrder("http-202", spItems("RUBY-RED", "NOPE"), { allowSomeFailedItems: true }));
    assert.equal(partial.status, 202);
    assert.equal(partial.body.errorItems.length, 1);
    assert.match(partial.body.errorItems[0].errorMessage, /NOPE is unknown to the OMS/);
    const none = await t.callback(minimalOrder("http-409", spItems("RUBY-RED", "NOPE")));
    assert.equal(none.status, 409);
    assert.equal(none.body.orderNumber, null);
    assert.equal(none.body.errorItems.length, 2);
    assert.equal(oms.orders.has(deliveryId("sp:http-409")), false);
  });

  it("Subscribe Pro: a 5xx is retried with the same delivery id; a 400 is not retried and answers 503", async () => {
    oms.queue("500");
    const ok = await t.callback(minimalOrder("http-retry", spItems("RUBY-RED")));
    assert.equal(ok.status, 201);
    const ids = oms.calls.filter((c) => c.body["idempotencyKey"] === "sp:http-retry").map((c) => c.headers["webhook-id"]);
    assert.deepEqual(ids, [deliveryId("sp:http-retry"), deliveryId("sp:http-retry")]);

    oms.queue("400");
    const refused = await t.callback(minimalOrder("http-400", spItems("RUBY-RED")));
    assert.equal(refused.status, 503);
    assert.match(refused.body.errorMessage, /refused POST order → HTTP 400/);
    assert.equal(oms.calls.filter((c) => c.body["idempotencyKey"] === "sp:http-400").length, 1);
  });

  it("Subscribe Pro: an OMS that hangs past the deadline gets 503 and no partial state; the retry places one order", async () => {
    oms.queue("hang", "hang", "hang", "hang", "hang");
    const res = await t.callback(minimalOrder("http-hang", spItems("EARL-GREY")));
    assert.equal(res.status, 503);
    const row = await t.store.db.selectFrom("sp_callbacks").select("state").where("idempotency_key", "=", "sp:http-hang").executeTakeFirstOrThrow();
    assert.equal(row.state, "uncertain", "the OMS was asked and may have placed it");
    // The OMS may have placed the first body's order: another body under the token is refused,
    // never answered with that order as if it held the new items.
    const sent = oms.calls.filter((c) => c.body["idempotencyKey"] === "sp:http-hang").length;
    const corrected = await t.callback(minimalOrder("http-hang", spItems("RUBY-RED")));
    assert.equal(corrected.status, 409);
    assert.equal(corrected.body.errorCode, "idempotency_key_reused");
    assert.match(corrected.body.errorMessage, /did not confirm whether it placed that order: resend that body/);
    assert.equal(oms.calls.filter((c) => c.body["idempotencyKey"] === "sp:http-hang").length, sent, "the corrected body never reached the OMS");
    oms.queue(); // nothing scripted: healthy again
    const retry = await t.callback(minimalOrder("http-hang", spItems("EARL-GREY")));
    assert.equal(retry.status, 201);
    assert.deepEqual(
      retry.body.orderDetails.items.map((i: Json) => i["productSku"]),
      ["EARL-GREY"],
    );
  });

  it("Subscribe Pro: after the OMS plainly refused (a 4xx), a corrected body may reuse the token", async () => {
    oms.queue("400");
    const refused = await t.callback(minimalOrder("http-fix", spItems("RUBY-RED")));
    assert.equal(refused.status, 503);
    const row = await t.store.db.selectFrom("sp_callbacks").select("state").where("idempotency_key", "=", "sp:http-fix").executeTakeFirstOrThrow();
    assert.equal(row.state, "retryable");
    const corrected = await t.callback(minimalOrder("http-fix", spItems("EARL-GREY")));
    assert.equal(corrected.status, 201);
    assert.deepEqual(
      corrected.body.orderDetails.items.map((i: Json) => i["productSku"]),
      ["EARL-GREY"],
    );
  });

  it("Recharge: order/created → OMS order → write-back of the OMS's ids; checkout/processed → cart URL", async () => {
    const res = await t.webhook("order/created", rcFixtureText("2021-11", "order-created"));
    await t.settle();
    assert.equal((await t.job(res.body.eventId)).state, "done");
    const placed = oms.orders.get(deliveryId("recharge:order:512340001"));
    assert.ok(placed);
    const sent = placed.request["order"] as Json;
    assert.equal(sent["source"], "recharge");
    assert.deepEqual(sent["shippingLines"], [{ code: "Standard", title: "Standard", price: "4.90" }]);
    assert.equal(sent["lines"][0]["unitPrice"], "10.00");
    assert.equal(sent["lines"][0]["taxTotal"], "3.80");
    const put = t.recharge.succeeded().find((c) => c.path === "/orders/512340001");
    assert.deepEqual(put?.body, {
      external_order_id: { ecommerce: placed.orderNumber.slice(4) },
      external_order_number: { ecommerce: placed.orderNumber },
    });

    await t.webhook("checkout/processed", rcFixtureText("2021-11", "checkout-processed"));
    await t.settle();
    assert.deepEqual(oms.clearedCarts, ["cart_7f3c9a21"]);
  });

  it("Recharge: the OMS gets Recharge's amounts, each rounded once, its totals, and where its lines disagree, the differences", async () => {
    const res = await t.webhook("order/created", referenceUpdateOrder());
    await t.settle();
    assert.equal((await t.job(res.body.eventId)).state, "done");
    const placed = oms.orders.get(deliveryId("recharge:order:210987092"));
    assert.ok(placed);
    const sent = placed.request["order"] as Json;
    assert.deepEqual(
      sent["lines"].map((l: Json) => [l["sku"], l["unitPrice"], l["subtotal"], l["taxTotal"]]),
      [["TOM0001", "10.00", "10.00", "0.95"]],
      "tax lines 0.725 + 0.225 are 0.95 (0.96 was sent)",
    );
    assert.deepEqual(sent["shippingLines"], [{ code: "Standard", title: "Standard", price: "4.90", taxTotal: "0.47" }]);
    assert.deepEqual(sent["discounts"], [{ code: "TESTCODE10", amount: "10.00" }]);
    assert.deepEqual(sent["totals"], { subtotal: "10.00", shippingTotal: "4.90", taxTotal: "0.47", discountTotal: "10.00", total: "5.37" });
    assert.deepEqual(sent["amountDifferences"], [{ field: "taxTotal", computed: "1.42", recorded: "0.47", difference: "-0.95" }]);
  });
});

describe("PLATFORM=shopify: orders go to Shopify through the Admin GraphQL API", () => {
  let shop: ShopifyStandIn;
  let t: RechargeTestService;
  before(async () => {
    shop = await startShopifyStandIn({
      token: SHOP_TOKEN,
      apiVersion: "2025-10",
      variants: [
        { sku: "RUBY-RED", price: "10.00", productTitle: "Ruby Red Black Tea", inventoryQuantity: 100 },
        { sku: "EARL-GREY", price: "12.00", productTitle: "Earl Grey Tea", inventoryQuantity: 1 },
        { sku: "TOM0001", price: "99.00", productTitle: "Shirt bundle", inventoryQuantity: 100 },
      ],
    });
    t = await startRechargeService(kind, {
      env: {
        PLATFORM: "shopify",
        SHOPIFY_SHOP: "orderbridge-test.myshopify.com",
        SHOPIFY_ACCESS_TOKEN: SHOP_TOKEN,
        SHOPIFY_API_VERSION: "2025-10",
        SHOPIFY_API_URL: shop.url,
        PLATFORM_TIMEOUT_MS: "1000",
        PLATFORM_DEADLINE_MS: "4000",
      },
    });
  });
  after(async () => {
    await t.stop();
    await shop.close();
  });

  it("Subscribe Pro: 201 with the Shopify order name and line item ids; the operations and variables are right", async () => {
    const res = await t.callback(minimalOrder("shop-201", spItems("RUBY-RED"), { couponCodes: ["SAVE5"], shippingMethodCode: "ups_ground" }));
    assert.equal(res.status, 201);
    assert.equal(res.body.orderNumber, "#1001");
    const itemId = res.body.orderDetails.items[0].platformOrderItemId as string;
    assert.match(itemId, /^\d+$/);

    const ops = shop.calls.map((c) => c.operation);
    assert.deepEqual(ops, ["OrderbridgeFindOrder", "OrderbridgeVariants", "OrderbridgeOrderCreate"]);
    for (const c of shop.calls) {
      assert.equal(c.headers["x-shopify-access-token"], SHOP_TOKEN);
      assert.equal(c.path, "/admin/api/2025-10/graphql.json");
    }
    const created = shop.orders[0];
    assert.ok(created);
    const input = created.input as Json;
    assert.equal(input["lineItems"][0]["variantId"], shop.variants.get("RUBY-RED")?.id);
    assert.equal(input["lineItems"][0]["quantity"], 2);
    assert.ok((input["tags"] as string[]).includes(idempotencyTag("sp:shop-201")), "the idempotency marker");
    assert.equal(input["sourceIdentifier"], "sp:shop-201");
    assert.equal(input["financialStatus"], "PENDING");
    assert.deepEqual(input["shippingLines"], [{ title: "ups_ground", code: "ups_ground", priceSet: { shopMoney: { amount: "0.00", currencyCode: "USD" } } }]);
    assert.deepEqual(created.options, { sendReceipt: false, sendFulfillmentReceipt: false, inventoryBehaviour: "DECREMENT_OBEYING_POLICY" });
  });

  it("resolves each SKU once (cached); an orderCreate whose answer is lost is never resent blindly: the order is found by its tag", async () => {
    const variantsBefore = shop.callsOf("OrderbridgeVariants").length;
    const createsBefore = shop.callsOf("OrderbridgeOrderCreate").length;
    shop.queueFor("OrderbridgeOrderCreate", { kind: "after", run: "create-then-hang" });
    const res = await t.callback(minimalOrder("shop-lost", spItems("RUBY-RED")));
    assert.equal(res.status, 201, "answered within the deadline, after the request timeout");
    assert.equal(res.body.orderNumber, "#1002");
    assert.equal(shop.orders.length, 2, "exactly one order for this key");
    assert.equal(shop.callsOf("OrderbridgeOrderCreate").length, createsBefore + 1, "orderCreate was sent once");
    assert.equal(shop.callsOf("OrderbridgeVariants").length, variantsBefore, "RUBY-RED came from the cache");
  });

  it("throttling: THROTTLED and 429 are waited out, then the order is placed", async () => {
    shop.queue({ kind: "throttled", currentlyAvailable: 40, requestedQueryCost: 50, restoreRate: 100 }, { kind: "status", status: 429, retryAfter: "0.2" });
    const res = await t.callback(minimalOrder("shop-throttled", spItems("RUBY-RED")));
    assert.equal(res.status, 201);
    const finds = shop.callsOf("OrderbridgeFindOrder").slice(-3);
    assert.deepEqual(
      finds.map((c) => c.status),
      [200, 429, 200],
    );
  });

  it("userErrors: an unknown SKU and an out-of-stock line become item errors: 202 when allowed (placed without them), 409 when not", async () => {
    const none = await t.callback(minimalOrder("shop-409", spItems("RUBY-RED", "NOT-IN-SHOP")));
    assert.equal(none.status, 409);
    assert.match(none.body.errorItems.find((e: Json) => e["subscriptionId"] === "sub-1").errorMessage, /NOT-IN-SHOP was not found in Shopify/);
    // EARL-GREY has 1 in stock and this asks for 3: Shopify refuses that line.
    const partial = await t.callback(minimalOrder("shop-202", spItems("RUBY-RED", "EARL-GREY"), { allowSomeFailedItems: true }));
    assert.equal(partial.status, 202);
    assert.match(partial.body.errorItems[0].errorMessage, /EARL-GREY is out of stock/);
    assert.deepEqual(
      partial.body.orderDetails.items.map((i: Json) => i["productSku"]),
      ["RUBY-RED"],
    );
    const last = shop.orders.at(-1);
    assert.equal((last?.input["lineItems"] as unknown[]).length, 1, "created again without the refused line");
  });

  it("Recharge: order/created → Shopify order (paid, at Recharge's prices) → write-back of the numeric id and the order name", async () => {
    const body = rcFixture("2021-01", "order-created");
    body["order"]["line_items"] = [body["order"]["line_items"][0]]; // RUBY-RED ×4
    const res = await t.webhook("order/created", body);
    await t.settle();
    assert.equal((await t.job(res.body.eventId)).state, "done");
    const created = shop.orders.at(-1);
    assert.ok(created);
    const input = created.input as Json;
    assert.equal(input["financialStatus"], "PAID");
    assert.equal(input["lineItems"][0]["priceSet"]["shopMoney"]["amount"], "10.00");
    assert.equal(input["lineItems"][0]["taxLines"][0]["priceSet"]["shopMoney"]["amount"], "3.80");
    assert.equal(input["shippingLines"][0]["priceSet"]["shopMoney"]["amount"], "4.90");
    const node = created.node as Json;
    const put = t.recharge.succeeded().find((c) => c.path === "/orders/512340001");
    assert.ok(put);
    assert.equal(put.headers["x-recharge-version"], "2021-01");
    assert.deepEqual(put.body, { external_order_id: node["legacyResourceId"], external_order_number: node["name"] });
  });

  it("Recharge: tax lines allocated so they add up to each tax rounded once, shipping taxed, the discount as an amount, the differences as an attribute", async () => {
    const res = await t.webhook("order/created", referenceUpdateOrder());
    await t.settle();
    assert.equal((await t.job(res.body.eventId)).state, "done");
    const created = shop.orders.at(-1);
    assert.ok(created);
    const input = created.input as Json;
    const money = (amount: string): Json => ({ shopMoney: { amount, currencyCode: "USD" } });
    assert.deepEqual(input["lineItems"][0]["priceSet"], money("10.00"));
    assert.deepEqual(input["lineItems"][0]["taxLines"], [
      { title: "CA State Tax", rate: "0.0725", priceSet: money("0.73") },
      { title: "LA County Tax", rate: "0.0225", priceSet: money("0.22") },
    ]);
    assert.deepEqual(input["shippingLines"][0]["taxLines"], [
      { title: "CA State Tax", rate: "0.0725", priceSet: money("0.36") },
      { title: "Los Angeles County Tax", rate: "0.0225", priceSet: money("0.11") },
    ]);
    assert.deepEqual(input["discountCode"], { itemFixedDiscountCode: { code: "TESTCODE10", amountSet: money("10.00") } });
    assert.ok(
      (input["customAttributes"] as Json[]).some((a) => a["key"] === "orderbridge_amount_differences" && a["value"] === "taxTotal: charged 0.47, lines 1.42, difference -0.95"),
      JSON.stringify(input["customAttributes"]),
    );
    const node = created.node as Json;
    assert.equal(node["totalTaxSet"]["shopMoney"]["amount"], "1.42", "Shopify adds up the lines: 0.95 + 0.47");
  });

  it("checkout/processed is skipped: Shopify has no carts for orderbridge to clear", async () => {
    const res = await t.webhook("checkout/processed", rcFixtureText("2021-11", "checkout-processed"));
    await t.settle();
    const job = await t.job(res.body.eventId);
    assert.equal(job.state, "skipped");
    assert.match(job.outcome ?? "", /shopify platform has no carts/);
  });
});
