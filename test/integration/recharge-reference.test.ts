import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { CatalogFile } from "../../src/platforms/local/catalog.js";
import { rcFixture, startRechargeService, type Json, type RechargeTestService } from "../helpers/recharge.js";
import { minimalOrder } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

// Every example order and checkout of Recharge's API reference (test/fixtures/recharge/reference,
// manifest.json says what each becomes), delivered signed through HTTP: the order placed must carry
// Recharge's amounts to the cent, and where an example disagrees with itself, the difference.
const DIR = fileURLToPath(new URL("../fixtures/recharge/reference/", import.meta.url));
const MONEY = fileURLToPath(new URL("../fixtures/recharge/money/", import.meta.url));
const manifest = JSON.parse(fs.readFileSync(`${DIR}manifest.json`, "utf8")) as { examples: Json[] };
// Prices and taxes unlike Recharge's: every amount recorded must come from the payload.
const catalog = JSON.parse(fs.readFileSync(`${DIR}catalog.json`, "utf8")) as CatalogFile;
const text = (file: string): string => fs.readFileSync(`${DIR}${file}`, "utf8");

async function deliver(t: RechargeTestService, topic: string, raw: string): Promise<Json> {
  const res = await t.webhook(topic, raw);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.status, "accepted");
  await t.settle();
  return t.job(res.body.eventId);
}

/** The order as the admin API shows it, reduced to what the manifest names. */
async function placedOrder(t: RechargeTestService, rechargeId: string | number): Promise<Json> {
  const res = await t.admin(`/admin/orders?source=recharge&sourceOrderId=${rechargeId}`);
  assert.equal(res.status, 200);
  const orders = res.body.orders as Json[];
  assert.equal(orders.length, 1, "exactly one order");
  return orders[0] as Json;
}

function assertAmounts(order: Json, want: Json): void {
  const pick = (o: Json, keys: string[]): Json => Object.fromEntries(keys.map((k) => [k, o[k]]));
  assert.deepEqual(pick(order, ["subtotal", "shippingTotal", "taxTotal", "discountTotal", "total"]), want["amounts"]);
  const itemKeys = Object.keys((want["items"] as Json[])[0] ?? {});
  assert.deepEqual(
    (order["items"] as Json[]).map((it) => pick(it, itemKeys)),
    want["items"],
  );
  const details = (order["details"] ?? {}) as Json;
  assert.deepEqual(details["shippingLines"], want["shippingLines"]);
  assert.deepEqual(details["discounts"] ?? [], want["discounts"]);
  assert.deepEqual(details["amountDifferences"] ?? [], want["amountDifferences"]);
}

for (const { kind, skip } of await storeKinds()) {
  describe(`Recharge API reference examples, delivered [${kind}]`, { skip }, () => {
    for (const ex of manifest.examples.filter((e) => e["kind"] !== "charge")) {
      it(`${ex["file"]} (${ex["section"]}): ${ex["expected"] === undefined ? ex["asSent"]["outcome"] : "placed with Recharge's amounts"}`, async () => {
        // One store per example: several examples share an id (and a checkout token and updated_at).
        const t = await startRechargeService(kind, { catalog });
        try {
          const raw = text(ex["file"]);
          const asSent = await deliver(t, ex["topic"], raw);
          assert.equal(asSent["state"], ex["asSent"]["state"], asSent["last_error"] ?? asSent["outcome"]);
          if (ex["asSent"]["outcome"] === "placed") assert.match(asSent["outcome"], /^placed order ABC-100271/);
          else assert.equal(asSent["outcome"], ex["asSent"]["outcome"]);
          if (ex["kind"] === "checkout") return;

          const body = JSON.parse(raw) as Json;
          if (ex["forced"] !== undefined) {
            Object.assign(body["order"], ex["forced"]["set"]);
            const from = ex["forced"]["shippingAddressFrom"];
            if (from !== undefined) body["order"]["shipping_address"] = JSON.parse(text(from))["order"]["shipping_address"];
            const forced = await deliver(t, ex["forced"]["topic"], JSON.stringify(body, null, 2));
            assert.equal(forced["state"], "done", forced["last_error"] ?? "");
            assert.match(forced["outcome"], /^placed order ABC-100271/);
          }
          assertAmounts(await placedOrder(t, body["order"]["id"]), ex["expected"]);
        } finally {
          await t.stop();
        }
      });
    }
  });

  describe(`Recharge money cases [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    before(async () => {
      t = await startRechargeService(kind, { catalog });
    });
    after(() => t.stop());

    it("a percentage discount is the amount Recharge took off (total_discounts 4.00), never its value (10.00)", async () => {
      const raw = fs.readFileSync(`${MONEY}order-percentage-discount-2021-11.json`, "utf8");
      assert.equal((await deliver(t, "order/created", raw))["state"], "done");
      assertAmounts(await placedOrder(t, 512360001), {
        amounts: { subtotal: "40.00", shippingTotal: "4.90", taxTotal: "3.42", discountTotal: "4.00", total: "44.32" },
        items: [{ sku: "RUBY-RED", quantity: 4, unitPrice: "10.00", taxTotal: "3.42" }],
        shippingLines: [{ code: "Standard", title: "Standard", price: "4.90", taxTotal: "0.00" }],
        discounts: [{ code: "SAVE10", amount: "4.00" }],
        amountDifferences: [],
      });
    });

    it("tax lines without tax_due (2021-01) are summed exactly, then rounded: 0.725 + 0.225 is 0.95; shipping's tax lines count", async () => {
      const raw = fs.readFileSync(`${MONEY}order-tax-lines-only-2021-01.json`, "utf8");
      assert.equal((await deliver(t, "order/created", raw))["state"], "done");
      assertAmounts(await placedOrder(t, 512370001), {
        amounts: { subtotal: "10.00", shippingTotal: "4.90", taxTotal: "1.42", discountTotal: "0.00", total: "16.32" },
        items: [{ sku: "RUBY-RED", quantity: 1, unitPrice: "10.00", taxTotal: "0.95", lineTotal: "15.85" }],
        shippingLines: [{ code: "Standard", title: "Standard", price: "4.90", taxTotal: "0.47" }],
        discounts: [],
        amountDifferences: [],
      });
    });
  });

  describe(`Currencies from ISO 4217 [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    before(async () => {
      t = await startRechargeService(kind, { startWorker: false });
    });
    after(() => t.stop());

    it("Recharge: an unknown currency, or one without a minor unit, is a 400 naming /order/currency; nothing is stored", async () => {
      for (const currency of ["XYZ", "xau", "XDR"]) {
        const body = rcFixture("2021-11", "order-created");
        body["order"]["currency"] = currency;
        const res = await t.webhook("order/created", body);
        assert.equal(res.status, 400, currency);
        assert.equal(res.body.errorCode, "schema_violation");
        assert.deepEqual(res.body.errors, [{ pointer: "/order/currency", message: "is not an ISO 4217 currency code with a minor unit (e.g. USD, EUR, JPY)" }]);
      }
      const checkout = rcFixture("2021-11", "checkout-processed");
      checkout["checkout"]["currency"] = "XYZ";
      const res = await t.webhook("checkout/processed", checkout);
      assert.equal(res.status, 400);
      assert.equal(res.body.errors[0].pointer, "/checkout/currency");
      assert.equal((await t.jobs()).length, 0);
    });

    it("Subscribe Pro: the same for the callback's /currency", async () => {
      for (const currency of ["XYZ", "XAU"]) {
        const res = await t.callback(minimalOrder(`cur-${currency}`, undefined, { currency }));
        assert.equal(res.status, 400);
        assert.equal(res.body.errorCode, "schema_violation");
        assert.deepEqual(res.body.errors, [{ pointer: "/currency", message: "is not an ISO 4217 currency code with a minor unit (e.g. USD, EUR, JPY)" }]);
      }
      assert.equal(await t.count("sp_callbacks"), 0);
    });
  });

  describe(`A catalog in IQD, three decimals as ISO 4217 has it [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    before(async () => {
      t = await startRechargeService(kind, {
        catalog: { currency: "IQD", products: [{ sku: "DATES", name: "Dates", price: "1.250", taxRate: "0.1" }], shippingMethods: { default: { perOrder: "0.500" } } },
      });
    });
    after(() => t.stop());

    it("prices in fils: 3 × 1.250 + 10 % + 0.500 shipping", async () => {
      const res = await t.callback(minimalOrder("iqd-1", [{ productSku: "DATES", qty: 3, subscription: { id: "d" } }], { currency: "iqd" }));
      assert.equal(res.status, 201, res.text);
      const item = res.body.orderDetails.items[0] as Json;
      assert.deepEqual([item["unitPrice"], item["taxTotal"], item["shippingTotal"], item["lineTotal"]], ["1.2500", "0.3750", "0.5000", "4.6250"]);
      assert.equal(res.body.orderDetails.currency, "IQD");
      const [order] = (await t.admin("/admin/orders?source=subscribe-pro")).body.orders as Json[];
      assert.equal(order?.["total"], "4.625");
    });
  });
}
