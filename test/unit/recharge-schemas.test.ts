import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";
import path from "node:path";
import { SAMPLES_DIR } from "../../src/cli/samples.js";
import { PayloadError } from "../../src/errors.js";
import { createSchemaRegistry } from "../../src/validation/schemas.js";

// Fixtures: samples/recharge/<version>/*.json (shared/spec/recharge-webhooks.md §7), which `orderbridge send` sends too.
const FIXTURE_DIR = path.join(SAMPLES_DIR, "recharge/");
const VERSIONS = ["2021-01", "2021-11"] as const;
const FIXTURES = [
  "checkout-processed.json",
  "order-created.json",
  "order-created-prepaid-1.json",
  "order-created-prepaid-2.json",
  "order-created-prepaid-3.json",
  "order-processed-prepaid-2.json",
  "order-queued.json",
  "order-updated.json",
  "order-updated-not-synced.json",
];

const registry = createSchemaRegistry();
const orderWebhook = registry.validator<unknown>("recharge/order-webhook");
const checkoutWebhook = registry.validator<unknown>("recharge/checkout-webhook");

function readFixture(version: string, name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(`${FIXTURE_DIR}${version}/${name}`, "utf8")) as Record<string, unknown>;
}

/** A fresh copy of a fixture's order object, to break on purpose. */
function orderOf(version: string, name = "order-created.json"): Record<string, unknown> {
  return structuredClone(readFixture(version, name)["order"]) as Record<string, unknown>;
}

/** Asserts that validate() refuses value with a PayloadError naming pointer. */
function assertRefused(validate: (value: unknown) => unknown, value: unknown, pointer: string): void {
  assert.throws(
    () => validate(value),
    (e: unknown) => {
      assert.ok(e instanceof PayloadError, `expected a PayloadError, got ${String(e)}`);
      assert.equal(e.code, "schema_violation");
      const pointers = e.fields.map((f) => f.pointer);
      assert.ok(pointers.includes(pointer), `expected ${pointer} among ${JSON.stringify(e.fields)}`);
      return true;
    },
  );
}

describe("Recharge webhook schemas", () => {
  for (const version of VERSIONS) {
    it(`${version}: has exactly the expected fixtures`, () => {
      assert.deepEqual(fs.readdirSync(`${FIXTURE_DIR}${version}`).sort(), [...FIXTURES].sort());
    });

    for (const name of FIXTURES) {
      it(`${version}/${name} validates`, () => {
        const body = readFixture(version, name);
        const validate = name.startsWith("checkout-") ? checkoutWebhook : orderWebhook;
        assert.deepEqual(validate(body), body);
      });
    }

    it(`${version}: refuses an order without id`, () => {
      const order = orderOf(version);
      delete order["id"];
      assertRefused(orderWebhook, { order }, "/order/id");
    });

    it(`${version}: refuses a non-numeric order id`, () => {
      assertRefused(orderWebhook, { order: { ...orderOf(version), id: "abc" } }, "/order/id");
      assertRefused(orderWebhook, { order: { ...orderOf(version), id: 0 } }, "/order/id");
    });

    it(`${version}: accepts the order id as a string of digits`, () => {
      const body = { order: { ...orderOf(version), id: "512340001" } };
      assert.deepEqual(orderWebhook(body), body);
    });

    it(`${version}: refuses a line item without quantity`, () => {
      const order = orderOf(version);
      const items = order["line_items"] as Record<string, unknown>[];
      delete items[0]!["quantity"];
      assertRefused(orderWebhook, { order }, "/order/line_items/0/quantity");
    });

    it(`${version}: refuses is_prepaid "yes"`, () => {
      assertRefused(orderWebhook, { order: { ...orderOf(version), is_prepaid: "yes" } }, "/order/is_prepaid");
    });
  }

  it("accepts is_prepaid as boolean, 0/1 or null, and both external id shapes", () => {
    const order = orderOf("2021-11");
    for (const is_prepaid of [true, false, 0, 1, null]) orderWebhook({ order: { ...order, is_prepaid } });
    for (const external_order_id of [null, "100271", 100271, { ecommerce: null }, { ecommerce: "100271" }, { ecommerce: 100271 }]) {
      orderWebhook({ order: { ...order, external_order_id } });
    }
    assertRefused(orderWebhook, { order: { ...order, external_order_id: { ecommerce: { nested: true } } } }, "/order/external_order_id/ecommerce");
  });

  it("accepts order/checkout attributes as a list or an object", () => {
    orderWebhook({ order: { ...orderOf("2021-11"), order_attributes: { customer_niceness: "very" } } });
    checkoutWebhook({ checkout: { note_attributes: [{ name: "gift", value: "yes" }], order_attributes: { customer_niceness: "very" } } });
  });

  it("refuses a body without order, and a checkout that is not an object", () => {
    assertRefused(orderWebhook, {}, "/order");
    assertRefused(checkoutWebhook, { checkout: 5 }, "/checkout");
    assertRefused(checkoutWebhook, {}, "/checkout");
  });
});
