import assert from "node:assert/strict";
import fs from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { formatMinor } from "../../src/money.js";
import { differencesAsText } from "../../src/orders/amounts.js";
import { compileCatalog } from "../../src/platforms/local/catalog.js";
import { checkLine, priceOrder, type AcceptedLine } from "../../src/platforms/local/pricing.js";
import { mapRechargeOrder } from "../../src/recharge/order.js";
import { createSchemaRegistry } from "../../src/validation/schemas.js";

// The reference's example orders and charges (test/fixtures/recharge/reference/manifest.json),
// mapped and priced without I/O; the integration suite delivers the orders through HTTP.
const DIR = fileURLToPath(new URL("../fixtures/recharge/reference/", import.meta.url));
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- fixtures are free-form JSON
const manifest = JSON.parse(fs.readFileSync(`${DIR}manifest.json`, "utf8")) as { examples: Json[] };
const schemas = createSchemaRegistry();
const catalog = compileCatalog(JSON.parse(fs.readFileSync(`${DIR}catalog.json`, "utf8")), schemas, "the reference catalog");
const m = (n: number): string => formatMinor(n, 2);

describe("Recharge API reference examples (pure)", () => {
  it("has a fixture for every example and an entry for every fixture", () => {
    const files = fs
      .readdirSync(DIR)
      .filter((f) => f !== "manifest.json" && f !== "catalog.json")
      .sort();
    assert.deepEqual(manifest.examples.map((e) => e["file"]).sort(), files);
    assert.equal(files.filter((f) => f.startsWith("order-")).length, 6);
    assert.equal(files.filter((f) => f.startsWith("checkout-")).length, 4);
    assert.equal(files.filter((f) => f.startsWith("charge-")).length, 11);
  });

  it("every order and checkout fixture passes its webhook schema as it stands", () => {
    const order = schemas.validator<unknown>("recharge/order-webhook");
    const checkout = schemas.validator<unknown>("recharge/checkout-webhook");
    for (const ex of manifest.examples.filter((e) => e["kind"] !== "charge")) {
      const body = JSON.parse(fs.readFileSync(`${DIR}${ex["file"]}`, "utf8"));
      (ex["kind"] === "order" ? order : checkout)(body);
    }
  });

  for (const ex of manifest.examples.filter((e) => e["kind"] !== "checkout")) {
    it(`${ex["file"]} (${ex["section"]}): Recharge's amounts to the cent, the differences kept`, () => {
      const body = JSON.parse(fs.readFileSync(`${DIR}${ex["file"]}`, "utf8"));
      const resource = (body["order"] ?? body["charge"]) as Json;
      if (ex["forced"]?.["shippingAddressFrom"] !== undefined) {
        resource["shipping_address"] = JSON.parse(fs.readFileSync(`${DIR}${ex["forced"]["shippingAddressFrom"]}`, "utf8"))["order"]["shipping_address"];
      }
      const mapped = mapRechargeOrder(resource);
      assert.deepEqual(mapped.problems, []);
      const accepted = mapped.order.lines.map((l) => {
        const c = checkLine(mapped.order, l, catalog);
        assert.ok(c.ok, c.ok ? "" : c.failure.message);
        return c.accepted;
      }) as AcceptedLine[];
      const priced = priceOrder(mapped.order, accepted, catalog);
      const want = ex["expected"] as Json;
      assert.deepEqual(
        { subtotal: m(priced.subtotal), shippingTotal: m(priced.shippingTotal), taxTotal: m(priced.taxTotal), discountTotal: m(priced.discountTotal), total: m(priced.total) },
        want["amounts"],
      );
      const items = priced.lines.map((l) => ({
        sku: l.line.sku,
        quantity: l.line.quantity,
        unitPrice: m(l.unitPriceMinor),
        shippingTotal: m(l.shippingTotal),
        taxTotal: m(l.taxTotal),
        lineTotal: m(l.lineTotal),
      }));
      // Charges' expectations name the line's price and tax only.
      const wantItems = want["items"] as Json[];
      assert.deepEqual(
        items.map((it, i) => Object.fromEntries(Object.keys(wantItems[i] ?? {}).map((k) => [k, (it as Json)[k]]))),
        wantItems,
      );
      assert.deepEqual(
        priced.shippingLines?.map((s) => ({ ...s, price: m(s.price), taxTotal: m(s.taxTotal) })),
        want["shippingLines"],
      );
      assert.deepEqual(
        priced.discounts.map((d) => ({ ...d, amount: m(d.amount) })),
        want["discounts"],
      );
      assert.deepEqual(differencesAsText(priced.differences, 2), want["amountDifferences"]);
    });
  }
});
