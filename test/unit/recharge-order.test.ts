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
      assert.deepEqual(
        m.order.lines.map((l) => [l.sku, l.quantity, l.fixedUnitPrice, l.fixedTaxTotal]),
        [
          ["RUBY-RED", 4, "10.00", "3.80"],
          ["EARL-GREY", 1, "12.00", "1.14"],
        ],
      );
      assert.deepEqual(
        m.order.shippingLines?.map((s) => [s.code, s.price]),
        [["Standard", "4.90"]],
      );
      assert.deepEqual(m.order.charged, { subtotal: "52.00", taxTotal: "4.94", discountTotal: "0.00", total: "61.84" });
      assert.equal(m.order.shippingAddress?.city, "Springfield");
      assert.equal(m.order.shippingAddress?.country, m === a ? "US" : undefined);
    }
    assert.equal(b.order.shippingAddress?.countryName, "United States");
    assert.deepEqual(a.order.lines[0]?.properties, [{ name: "grind", value: "loose" }]);
    assert.equal(a.order.customer.platformCustomerId, "C-000042");
  });

  describe("amounts", () => {
    const base = (extra: Record<string, unknown>, line: Record<string, unknown> = {}): Record<string, unknown> => ({
      id: 1,
      status: "success",
      currency: "usd",
      line_items: [{ sku: "TOM0001", quantity: 1, unit_price: "10.00", ...line }],
      ...extra,
    });

    it("line tax: tax lines summed exactly (no tax_due, as in 2021-01), else tax_due, which wins over its breakdown", () => {
      const lines = [
        { price: "0.725", rate: "0.0725", title: "CA State Tax" },
        { price: "0.225", rate: "0.0225", title: "LA County Tax" },
      ];
      const only = mapRechargeOrder(base({}, { tax_lines: lines })).order.lines[0];
      assert.equal(only?.fixedTaxTotal, "0.950", "0.95 once rounded; 0.73 + 0.23 = 0.96 was recorded before");
      assert.deepEqual(only?.taxLines, lines);
      // The reference's own example: four units, tax_due 3.80, tax lines of one unit.
      const due = mapRechargeOrder(base({}, { quantity: 4, tax_due: "3.80", tax_lines: [{ price: "0.993" }, { price: "0.308" }] })).order.lines[0];
      assert.equal(due?.fixedTaxTotal, "3.80");
      assert.equal(mapRechargeOrder(base({}, { tax_lines: [] })).order.lines[0]?.fixedTaxTotal, "0");
      assert.equal(mapRechargeOrder(base({})).order.lines[0]?.fixedTaxTotal, undefined, "no tax given: the platform's");
    });

    it("shipping lines carry their tax (shipping_lines[].tax_lines), which was dropped", () => {
      const m = mapRechargeOrder(
        base({
          shipping_lines: [
            {
              code: "Standard",
              price: "4.90",
              tax_lines: [
                { price: "0.355", rate: "0.0725", title: "CA" },
                { price: "0.110", title: "LA" },
              ],
            },
          ],
        }),
      );
      assert.deepEqual(m.order.shippingLines, [
        {
          code: "Standard",
          price: "4.90",
          taxTotal: "0.465",
          taxLines: [
            { title: "CA", rate: "0.0725", price: "0.355" },
            { title: "LA", price: "0.110" },
          ],
        },
      ]);
    });

    it("a percentage discount is the amount taken off (total_discounts), never its value", () => {
      const m = mapRechargeOrder(base({ discounts: [{ code: "SAVE10", value: "10.00", value_type: "percentage" }], total_discounts: "4.00" }));
      assert.deepEqual(m.order.discounts, [{ code: "SAVE10", amount: "4.00" }]);
      assert.deepEqual(m.order.couponCodes, ["SAVE10"]);
      assert.equal(m.order.charged?.discountTotal, "4.00");
      // No total_discounts: a percentage has no amount of its own.
      assert.equal(mapRechargeOrder(base({ discounts: [{ code: "SAVE10", value: "10.00", value_type: "percentage" }] })).order.discounts, undefined);
    });

    it("several discounts: fixed ones keep their value, the first without one takes what total_discounts leaves", () => {
      const m = mapRechargeOrder(
        base({
          discounts: [
            { code: "PCT", value: "15", value_type: "percentage" },
            { code: "FIVE", value: "5.00", value_type: "fixed_amount" },
          ],
          total_discounts: "8.00",
        }),
      );
      assert.deepEqual(m.order.discounts, [
        { code: "PCT", amount: "3.00" },
        { code: "FIVE", amount: "5.00" },
      ]);
      // 2021-01 discount_codes carry amounts; a listed discount that took nothing off is not a discount.
      const old = mapRechargeOrder(base({ discount_codes: [{ code: "A", amount: "2.50" }], total_discounts: "2.50" }));
      assert.deepEqual(old.order.discounts, [{ code: "A", amount: "2.50" }]);
      const none = mapRechargeOrder(base({ discounts: [{ code: "10DOLLAROFF", value: 10, value_type: "fixed_amount" }], total_discounts: "0.00" }));
      assert.equal(none.order.discounts, undefined);
      assert.deepEqual(none.order.couponCodes, ["10DOLLAROFF"]);
    });

    it("the order's totals are Recharge's: subtotal before discounts, total tax, total discounts, total price", () => {
      const m = mapRechargeOrder(base({ subtotal_price: "40.00", total_line_items_price: "40.00", total_tax: "3.32", total_discounts: "10.00", total_price: "38.22" }));
      assert.deepEqual(m.order.charged, { subtotal: "40.00", taxTotal: "3.32", discountTotal: "10.00", total: "38.22" });
      // subtotal_price as described ("less discounts"): the line items' price is the subtotal.
      const less = mapRechargeOrder(base({ subtotal_price: "30.00", total_line_items_price: "40.00", total_discounts: "10.00" }));
      assert.equal(less.order.charged?.subtotal, "40.00");
      assert.equal(mapRechargeOrder(base({})).order.charged, undefined);
    });

    it("an unknown currency is a problem (an event stored before currencies were checked at receipt)", () => {
      assert.match(mapRechargeOrder(base({ currency: "XYZ" })).problems.join(), /currency XYZ is not an ISO 4217 currency code with a minor unit/);
    });
  });

  it("reports lines it cannot order: no SKU, bad quantity", () => {
    const m = mapRechargeOrder({
      id: 1,
      status: "success",
      line_items: [
        { quantity: 1, title: "Mystery" },
        { sku: "X", quantity: 0 },
      ],
    });
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
