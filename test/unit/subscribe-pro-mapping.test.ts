import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { spSample } from "../../src/cli/samples.js";
import { ERROR_CLASS_PLATFORM } from "../../src/orders/types.js";
import { canonicalJson } from "../../src/orders/canonical-json.js";
import { mapSpRequest, parseQuantity, salesOrderToken } from "../../src/subscribe-pro/map-request.js";
import { buildSpResponse, decideStatus, NOT_ORDERED_WITHOUT_PARTIAL } from "../../src/subscribe-pro/response.js";
import type { SpCallbackRequest } from "../../src/subscribe-pro/types.js";

// The spec's example request (§7): samples/subscribe-pro/example-request.json.
const example = (): SpCallbackRequest => spSample("full-order") as unknown as SpCallbackRequest;

describe("Subscribe Pro mapping", () => {
  it("decides 201/202/409 by the spec's rule", () => {
    assert.equal(decideStatus(true, 0), 201);
    assert.equal(decideStatus(true, 1), 202);
    assert.equal(decideStatus(false, 0), 409);
    assert.equal(decideStatus(false, 2), 409);
  });

  it("accepts quantities as numbers or numeric strings, and nothing else", () => {
    assert.equal(parseQuantity("4"), 4);
    assert.equal(parseQuantity(4), 4);
    assert.equal(parseQuantity("4.0000"), 4);
    assert.equal(parseQuantity(" 2 "), 2);
    for (const bad of ["0", 0, -1, "-1", 1.5, "1.5", "abc", "", "1e3", Number.POSITIVE_INFINITY, "100001"]) {
      assert.equal(parseQuantity(bad), undefined, `qty ${String(bad)}`);
    }
  });

  it("normalises the spec example", () => {
    const { order, invalid } = mapSpRequest(example());
    assert.equal(invalid.size, 0);
    assert.equal(order.currency, "USD");
    assert.equal(order.allowPartial, true);
    assert.equal(order.sourceOrderId, "5f1c2a9e7b3d4c6a8e0f1a2b3c4d5e6f");
    assert.equal(order.shippingMethodCode, "ups_ground");
    assert.deepEqual(order.couponCodes, ["SUB10"]);
    assert.deepEqual(
      order.lines.map((l) => [l.ref, l.sku, l.quantity, l.subscriptionId]),
      [
        ["0", "RUBY-RED", 4, "413245234"],
        ["1", "EARL-GREY", 1, "413245235"],
      ],
    );
    assert.equal(order.shippingAddress?.city, "Springfield");
  });

  it("reads the legacy shippingMethodCodes, drops empty coupons, and refuses bad lines before the platform", () => {
    const req = example();
    delete req.shippingMethodCode;
    req.shippingMethodCodes = [{ method_code: "subscribepro_recurring" }];
    req.couponCodes = [""];
    req.items[0]!.qty = "0";
    req.items[1]!.useFixedPrice = true;
    req.items[1]!.fixedPrice = "9.9900";
    const { order, invalid } = mapSpRequest(req);
    assert.equal(order.shippingMethodCode, "subscribepro_recurring");
    assert.deepEqual(order.couponCodes, []);
    assert.equal(invalid.get("0")?.errorClass, ERROR_CLASS_PLATFORM);
    assert.match(invalid.get("0")?.message ?? "", /Quantity "0" of product RUBY-RED is not a whole number/);
    assert.equal(order.lines.length, 1);
    assert.equal(order.lines[0]?.fixedUnitPrice, "9.9900", "exact, as sent");

    req.items[1]!.fixedPrice = "free";
    assert.match(mapSpRequest(req).invalid.get("1")?.message ?? "", /Fixed price "free"/);
  });

  it("an item's subscription is optional, and an empty salesOrderToken is none", () => {
    const req = example();
    delete req.items[0]!.subscription;
    req.items[1]!.subscription = null;
    req.salesOrderToken = "";
    const { order } = mapSpRequest(req);
    assert.deepEqual(
      order.lines.map((l) => "subscriptionId" in l),
      [false, false],
    );
    assert.equal(order.sourceOrderId, undefined);
    for (const none of [undefined, null, ""]) assert.equal(salesOrderToken({ salesOrderToken: none }), undefined);
    assert.equal(salesOrderToken({ salesOrderToken: " " }), " ");
  });

  it("lists every item as an error when nothing is placed, including those that could have been ordered", () => {
    const req = example();
    const lines = new Map([
      ["0", { ok: false as const, ref: "0", sku: "RUBY-RED", message: "Product RUBY-RED is out of stock", errorClass: ERROR_CLASS_PLATFORM }],
      [
        "1",
        {
          ok: true as const,
          ref: "1",
          platformItemId: "",
          sku: "EARL-GREY",
          name: "Earl Grey Tea",
          quantity: 1,
          requiresShipping: true,
          unitPrice: 1200,
          shippingTotal: 0,
          taxTotal: 0,
          discountTotal: 0,
          lineTotal: 0,
        },
      ],
    ]);
    const r = buildSpResponse(req, lines, { order: null });
    assert.equal(r.status, 409);
    assert.deepEqual(r.body, {
      orderNumber: null,
      orderDetails: null,
      errorItems: [
        { subscriptionId: "413245234", errorMessage: "Product RUBY-RED is out of stock", errorClass: ERROR_CLASS_PLATFORM },
        { subscriptionId: "413245235", errorMessage: NOT_ORDERED_WITHOUT_PARTIAL, errorClass: ERROR_CLASS_PLATFORM },
      ],
    });
  });

  it("canonical JSON ignores formatting and key order, and treats __proto__ as data", () => {
    assert.equal(canonicalJson(JSON.parse('{"b":1,"a":[1,{"d":2,"c":null}]}')), '{"a":[1,{"c":null,"d":2}],"b":1}');
    assert.equal(canonicalJson(JSON.parse('{"__proto__":{"x":1}}')), '{"__proto__":{"x":1}}');
  });
});
