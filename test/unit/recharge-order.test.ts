import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide, detectVersion, mapRechargeOrder, orderWriteBackBody, readOrderView, chargeWriteBackBody } from "../../src/recharge/order.js";
import { normalizeTopic } from "../../src/recharge/receive.js";
import { rcFixture } from "../helpers/recharge.js";

describe("Recharge orders (pure)", () => {
  it("detects each fixture's version from its shape", () => {
    for (const v of ["2021-01", "2021-11"] as const) {
      for (const name of ["order-created", "order-created-prepaid-2", "order-processed-prepaid-2", "order-updated", "order-queued"]) {
        assert.equal(detectVersion(rcFixture(v, name)["order"]), v, `${v}/${name}`);
      }
      assert.equal(detectVersion(rcFixture(v, "checkout-processed")["checkout"]) ?? v, v);
    }
    assert.equal(detectVersion({ id: 1, status: "Success" }), undefined);
  });

  it("reads both versions into the same view: status casing, 0/1 vs boolean, flat vs nested ids", () => {
    for (const v of ["2021-01", "2021-11"] as const) {
      const prepaid = readOrderView(rcFixture(v, "order-created-prepaid-2")["order"]);
      assert.equal(prepaid.status, "queued");
      assert.equal(prepaid.isPrepaid, true);
      assert.equal(prepaid.chargeId, "377750000");
      const updated = readOrderView(rcFixture(v, "order-updated")["order"]);
      assert.equal(updated.externalOrderId, "100271");
      assert.equal(updated.externalOrderNumber, "ABC-100271");
      const created = readOrderView(rcFixture(v, "order-created")["order"]);
      assert.equal(created.externalOrderId, undefined, "null and {ecommerce: null} both mean not synced");
      assert.equal(created.isPrepaid, false);
    }
  });

  it("decides: place successful unsynced orders once; skip the rest with a reason; the write-back echo is a no-op", () => {
    const view = readOrderView(rcFixture("2021-11", "order-created")["order"]);
    assert.deepEqual(decide(view, undefined), { action: "place" });
    assert.equal(decide({ ...view, status: "queued" }, undefined).action, "skip");
    assert.match((decide({ ...view, externalOrderId: "999" }, undefined) as { reason: string }).reason, /another system/);
    const known = { platformOrderId: "100271", orderNumber: "ABC-100271" };
    assert.match((decide({ ...view, externalOrderId: "100271" }, known) as { reason: string }).reason, /echo of our write-back/);
    assert.equal(decide(view, known).action, "noop");
    assert.equal(decide({ ...view, status: "cancelled" }, known).action, "noop");
  });

  it("maps both versions to the same normalised order, with Recharge's charged amounts", () => {
    const a = mapRechargeOrder(rcFixture("2021-11", "order-created")["order"]);
    const b = mapRechargeOrder(rcFixture("2021-01", "order-created")["order"]);
    assert.deepEqual(a.problems, []);
    assert.deepEqual(b.problems, []);
    for (const m of [a, b]) {
      assert.equal(m.order.source, "recharge");
      assert.equal(m.order.sourceOrderId, "512340001");
      assert.equal(m.order.allowPartial, false);
      assert.equal(m.order.currency, "USD");
      assert.equal(m.order.customer.email, "jane.doe@example.com");
      assert.deepEqual(m.order.lines.map((l) => [l.sku, l.quantity, l.fixedUnitPrice, l.fixedTaxTotal]), [
        ["RUBY-RED", 4, 1000, 380],
        ["EARL-GREY", 1, 1200, 114],
      ]);
      assert.deepEqual(m.order.shippingLines?.map((s) => [s.code, s.price]), [["Standard", 490]]);
      assert.equal(m.order.shippingAddress?.city, "Springfield");
      assert.equal(m.order.shippingAddress?.country, m === a ? "US" : undefined);
    }
    assert.equal(b.order.shippingAddress?.countryName, "United States");
    assert.deepEqual(a.order.lines[0]?.properties, [{ name: "grind", value: "loose" }]);
    assert.equal(a.order.customer.platformCustomerId, "C-000042");
  });

  it("reports lines it cannot order: no SKU, bad quantity", () => {
    const m = mapRechargeOrder({ id: 1, status: "success", line_items: [{ quantity: 1, title: "Mystery" }, { sku: "X", quantity: 0 }] });
    assert.equal(m.problems.length, 2);
    assert.match(m.problems[0] ?? "", /no SKU/);
    assert.match(m.problems[1] ?? "", /quantity 0/);
  });

  it("write-back bodies per version", () => {
    const ids = { externalOrderId: "100271", externalOrderNumber: "ABC-100271" };
    assert.deepEqual(orderWriteBackBody("2021-11", ids), { external_order_id: { ecommerce: "100271" }, external_order_number: { ecommerce: "ABC-100271" } });
    assert.deepEqual(orderWriteBackBody("2021-01", ids), { external_order_id: "100271", external_order_number: "ABC-100271" });
    assert.deepEqual(orderWriteBackBody("2021-11", ids, false), { external_order_id: { ecommerce: "100271" } });
    assert.deepEqual(chargeWriteBackBody("2021-11", ids), { external_order_id: { ecommerce: "100271" } });
    assert.deepEqual(chargeWriteBackBody("2021-01", ids), { external_order_id: "100271" });
  });

  it("normalises topics from URLs and headers", () => {
    assert.equal(normalizeTopic("order/created"), "order/created");
    assert.equal(normalizeTopic("order-created"), "order/created");
    assert.equal(normalizeTopic("ORDER_PROCESSED"), "order/processed");
    assert.equal(normalizeTopic("checkout-processed"), "checkout/processed");
    assert.equal(normalizeTopic(" "), undefined);
  });
});
