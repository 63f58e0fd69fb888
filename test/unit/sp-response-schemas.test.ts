import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";
import { PayloadError } from "../../src/errors.js";
import { createSchemaRegistry } from "../../src/validation/schemas.js";

// Two response schemas: the strict one orderbridge's own answers follow (every callback answer in the
// integration tests is validated against it, test/helpers/service.ts), and the lenient one
// `orderbridge check` judges other handlers by: what Subscribe Pro's documented example and its
// Magento 2 extension (Service/OrderCallback/ResponseProcessor.php) send.

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form answers

const registry = createSchemaRegistry();
const strict = registry.validator("subscribe-pro/order-callback-response");
const lenient = registry.validator("subscribe-pro/order-callback-response.lenient");
const strictPlaced = registry.validator("subscribe-pro/order-callback-response#/$defs/placed");
const lenientPlaced = registry.validator("subscribe-pro/order-callback-response.lenient#/$defs/placed");

const documented = (): Json => JSON.parse(fs.readFileSync(new URL("../fixtures/subscribe-pro/documented-example-response.json", import.meta.url), "utf8")) as Json;

/** Invalid fields as "pointer message", or [] when valid. */
function problems(validate: (v: unknown) => unknown, value: unknown): string[] {
  try {
    validate(value);
    return [];
  } catch (e) {
    if (!(e instanceof PayloadError)) throw e;
    return e.fields.map((f) => `${f.pointer} ${f.message}`);
  }
}

/** A 201 as the Magento 2 extension builds it: PHP's string casts of Magento's decimals, nulls, no errorItems. */
function magento201(): Json {
  const address = {
    firstName: "Jane",
    lastName: "Doe",
    company: null,
    street1: "100 Main St",
    street2: "",
    street3: "",
    city: "Springfield",
    region: "IL",
    postcode: "62701",
    country: "US",
    phone: null,
  };
  return {
    orderNumber: "000000123",
    orderDetails: {
      customerId: "356001",
      customerEmail: "jane.doe@example.com",
      platformCustomerId: "42",
      platformOrderId: "123",
      orderNumber: "000000123",
      salesOrderToken: "5f1c2a9e7b3d4c6a8e0f1a2b3c4d5e6f",
      orderStatus: "placed",
      orderState: "open",
      orderDateTime: "2024-05-01T14:05:09+00:00",
      currency: "USD",
      discountTotal: "0",
      shippingTotal: "5.4000",
      taxTotal: "3.6000",
      total: "49.0000",
      billingAddress: address,
      shippingAddress: address,
      items: [
        {
          platformOrderItemId: "735",
          productSku: "RUBY-RED",
          productName: "Ruby Red Black Tea",
          shortDescription: "",
          qty: "4.0000",
          requiresShipping: true,
          unitPrice: "10.0000",
          discountTotal: "0.0000",
          taxTotal: "3.6000",
          lineTotal: "40.0000",
          subscriptionId: "413245234",
        },
      ],
    },
  };
}

describe("Subscribe Pro response schemas: strict for orderbridge, lenient for check", () => {
  it("Subscribe Pro's documented example answer (no errorItems) is accepted by the lenient schema only", () => {
    assert.deepEqual(problems(lenient, documented()), []);
    assert.deepEqual(problems(lenientPlaced, documented()), []);
    assert.ok(problems(strict, documented()).length > 0);
    assert.deepEqual(problems(strictPlaced, documented()), ["/errorItems is required"]);
  });

  it("the Magento 2 extension's answers are accepted by the lenient schema", () => {
    const placed = magento201();
    assert.deepEqual(problems(lenientPlaced, placed), []);
    const strictly = problems(strictPlaced, placed);
    for (const p of ["/errorItems is required", '/orderDetails/items/0/qty must match pattern "^[0-9]+$"', "/orderDetails/billingAddress/company must be string"]) {
      assert.ok(strictly.includes(p), `${p} in\n${strictly.join("\n")}`);
    }

    // 202: errorItems only now, "" as the subscriptionId of an item without a subscription.
    const partial = magento201();
    partial["errorItems"] = [{ subscriptionId: "413245235", errorMessage: "Product is not salable" }];
    partial["orderDetails"].items.push({ ...partial["orderDetails"].items[0], platformOrderItemId: "736", qty: 2, unitPrice: 10, lineTotal: 20, subscriptionId: "" });
    assert.deepEqual(problems(lenientPlaced, partial), []);

    // 409: nothing placed; and a whole-request failure (a bad secret, an exception).
    assert.deepEqual(problems(lenient, { orderNumber: null, orderDetails: null, errorItems: [{ subscriptionId: "413245234", errorMessage: "" }] }), []);
    assert.deepEqual(problems(lenient, { errorMessage: "Invalid order callback configuration. Invalid callback shared secret.", errorClass: "Technology" }), []);
    // PHP may send ids as numbers.
    const numeric = magento201();
    Object.assign(numeric, { orderNumber: 123 });
    Object.assign(numeric["orderDetails"], { orderNumber: 123, platformOrderId: 123, platformCustomerId: 42 });
    numeric["orderDetails"].items[0].platformOrderItemId = 735;
    assert.deepEqual(problems(lenientPlaced, numeric), []);
  });

  it("the lenient schema still refuses what no Subscribe Pro reader can use", () => {
    const bad = magento201();
    bad["orderDetails"].items[0].qty = "four";
    bad["orderDetails"].items[0].unitPrice = "10,00";
    bad["orderDetails"].orderDateTime = "yesterday";
    delete bad["orderDetails"].items[0].platformOrderItemId;
    bad["errorItems"] = [{ subscriptionId: "1" }];
    const found = problems(lenientPlaced, bad);
    for (const pointer of [
      "/orderDetails/items/0/qty",
      "/orderDetails/items/0/unitPrice",
      "/orderDetails/orderDateTime",
      "/orderDetails/items/0/platformOrderItemId",
      "/errorItems/0/errorMessage",
    ]) {
      assert.ok(
        found.some((f) => f.startsWith(`${pointer} `)),
        `${pointer} in\n${found.join("\n")}`,
      );
    }
    assert.deepEqual(problems(lenientPlaced, { ...magento201(), orderDetails: { ...magento201()["orderDetails"], items: [] } }), [
      "/orderDetails/items must NOT have fewer than 1 items",
    ]);
  });

  it("orderbridge's strict schema: subscriptionId is optional (items may come without a subscription), never empty", () => {
    const ours: Json = { ...documented(), errorItems: [{ errorMessage: "Product GHOST was not found in the catalog", errorClass: "e-commerce platform" }] };
    delete ours["orderDetails"].items[0].subscriptionId;
    assert.deepEqual(problems(strict, ours), []);
    ours["orderDetails"].items[0].subscriptionId = "";
    assert.ok(problems(strict, ours).includes("/orderDetails/items/0/subscriptionId must NOT have fewer than 1 characters"));
  });
});
