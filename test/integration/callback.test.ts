import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { DEMO_CATALOG, type CatalogFile } from "../../src/platforms/local/catalog.js";
import { ERROR_CLASS_PLATFORM } from "../../src/orders/types.js";
import { canonicalJson } from "../../src/orders/canonical-json.js";
import { signSpHmac } from "../../src/security/sp-hmac.js";
import { spSample } from "../../src/cli/samples.js";
import { SECRET, fixture, fixtureBytes, startService, type TestService } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test bodies are free-form JSON

const SPEC_TIME = Date.parse("2024-05-01T14:05:09Z");
const SPEC_ENV = { ORDER_NUMBER_PREFIX: "ABC-", ORDER_NUMBER_START: "100271" };
// The spec's example request (§7): samples/subscribe-pro/example-request.json.
const exampleRequest = (): Json => spSample("full-order");

/** The demo catalog with some products changed. */
function catalogWith(changes: Record<string, Partial<CatalogFile["products"][number]>>): CatalogFile {
  return { ...DEMO_CATALOG, products: DEMO_CATALOG.products.map((p) => ({ ...p, ...changes[p.sku] })) };
}

/** A small valid order; `n` makes the token unique. */
function order(n: string | number, items: Json[] = [{ productSku: "RUBY-RED", qty: "1", subscription: { id: `sub-${n}` } }]): Json {
  return {
    customerId: "356001",
    customerEmail: "jane.doe@example.com",
    platformCustomerId: "C-000042",
    salesOrderToken: `tok-${n}`,
    shippingMethodCode: "ups_ground",
    currency: "USD",
    payment: { paymentToken: "pm_secret_token_123", paymentProfileId: "416001" },
    billingAddress: { firstName: "Jane", lastName: "Doe", city: "Springfield", country: "US" },
    shippingAddress: { firstName: "Jane", lastName: "Doe", city: "Springfield", country: "US" },
    items,
  };
}

/** Our answer next to a spec example: item ids are ours to choose; addresses are compared separately. */
function comparable(body: Json): Json {
  const copy = structuredClone(body);
  if (copy["orderDetails"] !== null) {
    const d = copy["orderDetails"];
    for (const it of d.items) it.platformOrderItemId = "<ours>";
    delete d.billingAddress;
    delete d.shippingAddress;
  }
  for (const e of copy["errorItems"]) delete e.errorClass;
  return copy;
}

function assertAddressesEcho(ours: Json, spec: Json): void {
  for (const kind of ["billingAddress", "shippingAddress"]) {
    for (const [k, v] of Object.entries(spec["orderDetails"][kind] as Json)) {
      assert.equal(ours["orderDetails"][kind][k], v, `${kind}.${k}`);
    }
  }
}

async function stock(t: TestService, sku: string): Promise<number | undefined> {
  const row = await t.store.db.selectFrom("local_stock").select("available").where("sku", "=", sku).executeTakeFirst();
  return row === undefined ? undefined : Number(row.available);
}

for (const { kind, skip } of await storeKinds()) {
  describe(`Subscribe Pro order callback [${kind}]`, { skip }, () => {
    describe("reproduces the response examples of the spec (§7) with our own catalog", () => {
      it("201: both lines ordered", async () => {
        const t = await startService(kind, { env: SPEC_ENV, clock: () => SPEC_TIME });
        try {
          const res = await t.callback(exampleRequest());
          assert.equal(res.status, 201);
          // The answer's headers: JSON with its exact length, the request id, helmet's headers.
          assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
          assert.equal(Number(res.headers["content-length"]), Buffer.byteLength(res.text, "utf8"));
          assert.match(String(res.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
          assert.equal(res.headers["x-content-type-options"], "nosniff");
          assert.ok(res.headers["content-security-policy"] !== undefined);
          const spec = fixture("subscribe-pro/example-response-201.json");
          assert.deepEqual(comparable(res.body as Json), comparable(spec));
          assertAddressesEcho(res.body as Json, spec);
          const ids = (res.body as Json)["orderDetails"].items.map((i: Json) => i["platformOrderItemId"]);
          assert.equal(new Set(ids).size, 2, "a distinct platformOrderItemId per line");
          assert.equal(await t.count("local_orders"), 1);
          assert.equal(await t.count("local_order_items"), 2);
          const stored = await t.admin("/admin/orders/ABC-100271");
          assert.equal(stored.status, 200);
          assert.equal(stored.body.total, "63.80");
          assert.equal(stored.body.salesOrderToken, "5f1c2a9e7b3d4c6a8e0f1a2b3c4d5e6f");
          assert.deepEqual(stored.body.couponCodes, ["SUB10"]);
          assert.deepEqual(
            stored.body.items.map((i: Json) => [i["sku"], i["quantity"], i["lineTotal"], i["subscriptionId"]]),
            [
              ["RUBY-RED", 4, "49.00", "413245234"],
              ["EARL-GREY", 1, "14.80", "413245235"],
            ],
          );
        } finally {
          await t.stop();
        }
      });

      it("202: EARL-GREY out of stock, the order placed with RUBY-RED only", async () => {
        const t = await startService(kind, { env: SPEC_ENV, clock: () => SPEC_TIME, catalog: catalogWith({ "EARL-GREY": { stock: 0 } }) });
        try {
          const res = await t.callback(exampleRequest());
          assert.equal(res.status, 202);
          const spec = fixture("subscribe-pro/example-response-202.json");
          assert.deepEqual(comparable(res.body as Json), comparable(spec));
          assert.equal((res.body as Json)["errorItems"][0].errorClass, ERROR_CLASS_PLATFORM);
          assert.equal(await t.count("local_order_items"), 1);
          assert.equal(await stock(t, "EARL-GREY"), 0);
        } finally {
          await t.stop();
        }
      });

      it("409: nothing orderable, no order and no stock taken", async () => {
        const t = await startService(kind, {
          env: SPEC_ENV,
          clock: () => SPEC_TIME,
          catalog: catalogWith({ "RUBY-RED": { salable: false }, "EARL-GREY": { stock: 0 } }),
        });
        try {
          const res = await t.callback(exampleRequest());
          assert.equal(res.status, 409);
          assert.deepEqual(comparable(res.body as Json), comparable(fixture("subscribe-pro/example-response-409.json")));
          assert.equal(await t.count("local_orders"), 0);
        } finally {
          await t.stop();
        }
      });
    });

    describe("requests from reality: Subscribe Pro's documented example, a PHP-encoded body", () => {
      it("Subscribe Pro's documented example request → 201, answered as its documented example response", async () => {
        // test/fixtures/subscribe-pro/documented-example.json: the example of Subscribe Pro's order
        // callback page (shared/seeds/003_…), its elisions ("...") left out and its e-mail (obfuscated
        // on the page) replaced. It names no shipping method and has minimal addresses. A catalog priced
        // like the documented answer: 4 × 10.00, tax 10 %, shipping 1.80 a unit by the default method.
        const t = await startService(kind, {
          env: { ORDER_NUMBER_PREFIX: "ABC-", ORDER_NUMBER_START: "91293923" },
          clock: () => Date.parse("2021-04-01T17:43:00Z"),
          catalog: {
            currency: "USD",
            products: [{ sku: "RUBY-RED", name: "Ruby Red Black Tea", price: "10.00", taxRate: "0.1" }],
            shippingMethods: { default: { perUnit: "1.80" } },
          },
        });
        try {
          const res = await t.callback(fixtureBytes("subscribe-pro/documented-example.json"));
          assert.equal(res.status, 201, res.text);
          const ours = structuredClone(res.body as Json);
          // errorItems: [] is ours (the documented answer leaves it out); ids are ours to choose.
          assert.deepEqual(ours["errorItems"], []);
          delete ours["errorItems"];
          const spec = fixture("subscribe-pro/documented-example-response.json") as Json;
          for (const [o, s] of [
            [ours, spec],
            [ours["orderDetails"], spec["orderDetails"]],
          ] as const)
            o["orderNumber"] = s["orderNumber"];
          assert.match(ours["orderDetails"]["platformOrderId"], /^\S+$/);
          ours["orderDetails"]["platformOrderId"] = spec["orderDetails"]["platformOrderId"];
          assert.match(ours["orderDetails"]["items"][0]["platformOrderItemId"], /^\S+$/);
          ours["orderDetails"]["items"][0]["platformOrderItemId"] = spec["orderDetails"]["items"][0]["platformOrderItemId"];
          assert.deepEqual(ours, spec);
        } finally {
          await t.stop();
        }
      });

      it("a PHP-style pretty-printed body (4-space indent, \\/ and \\u00e9 escapes) is verified over its raw bytes and answered 201", async () => {
        const t = await startService(kind);
        try {
          // test/fixtures/subscribe-pro/php-pretty-printed.json: what PHP's json_encode(…, JSON_PRETTY_PRINT)
          // writes: 4-space indent, "/" as "\/", every non-ASCII character as \uXXXX (a surrogate pair beyond U+FFFF).
          const raw = fixtureBytes("subscribe-pro/php-pretty-printed.json");
          const text = raw.toString("utf8");
          assert.match(text, /^ {4}"billingAddress": \{$/m);
          assert.ok(text.includes("Montr\\u00e9al") && text.includes("https:\\/\\/shop.example.com") && text.includes("\\ud83c\\udf75"));
          assert.match(text, /^[\x20-\x7e\n]*$/, "ASCII only");

          const res = await t.callback(raw);
          assert.equal(res.status, 201, res.text);
          const d = (res.body as Json)["orderDetails"];
          assert.equal(d.billingAddress.city, "Montréal");
          assert.equal(d.billingAddress.company, "Café Crème / Thés & Co.");
          assert.equal(d.shippingAddress.street2, "app. 5/B");
          assert.equal(d.items[0].shortDescription, "Thé noir Ruby Red — 2 oz. 🍵");
          assert.deepEqual(
            d.items.map((i: Json) => [i["productSku"], i["qty"], i["subscriptionId"]]),
            [
              ["RUBY-RED", "2", "413245300"],
              ["EARL-GREY", "1", "413245301"],
            ],
          );

          // The same bytes again, and the same order re-encoded compactly (other bytes, correctly signed): one order.
          assert.equal((await t.callback(raw)).text, res.text);
          const compact = JSON.stringify(JSON.parse(text));
          assert.equal((await t.callback(compact)).text, res.text);
          assert.equal(await t.count("local_orders"), 1);
          // A signature made over that re-encoding does not verify the bytes that were sent.
          const resigned = await t.callback(raw, { secret: null, headers: { "Sp-Hmac": signSpHmac(SECRET, compact) } });
          assert.equal(resigned.status, 401);
        } finally {
          await t.stop();
        }
      });
    });

    describe("orders", () => {
      let t: TestService;
      before(async () => {
        t = await startService(kind, {
          catalog: {
            ...DEMO_CATALOG,
            products: [
              ...DEMO_CATALOG.products,
              { sku: "LIMITED", name: "Limited Tea", price: "3.00", stock: 5 },
              { sku: "TEN", name: "Ten Left", price: "1.00", stock: 10 },
              { sku: "EBOOK", name: "Tea e-book", price: "4.99", requiresShipping: false, taxRate: "0.2" },
            ],
          },
        });
      });
      after(() => t.stop());

      it("without allowSomeFailedItems, one failed item fails the whole order and takes no stock", async () => {
        const body = order("strict", [
          { productSku: "TEN", qty: 3, subscription: { id: "s1" } },
          { productSku: "NO-SUCH-SKU", qty: 1, subscription: { id: "s2" } },
        ]);
        const res = await t.callback(body);
        assert.equal(res.status, 409);
        assert.deepEqual(res.body.errorItems, [
          { subscriptionId: "s1", errorMessage: "Not ordered: another item of this order failed and allowSomeFailedItems is false", errorClass: ERROR_CLASS_PLATFORM },
          { subscriptionId: "s2", errorMessage: "Product NO-SUCH-SKU was not found in the catalog", errorClass: ERROR_CLASS_PLATFORM },
        ]);
        assert.equal(await stock(t, "TEN"), 10);
        const list = await t.admin("/admin/orders?salesOrderToken=tok-strict");
        assert.equal(list.body.orders.length, 0);
      });

      it("fails bad quantities, unknown SKUs and unknown shipping methods per item", async () => {
        const body = {
          ...order("items", [
            { productSku: "RUBY-RED", qty: "2", subscription: { id: "ok" } },
            { productSku: "RUBY-RED", qty: "1.5", subscription: { id: "half" } },
            { productSku: "RUBY-RED", qty: -1, subscription: { id: "neg" } },
            { productSku: "GHOST", qty: "1", subscription: { id: "ghost" } },
          ]),
          allowSomeFailedItems: true,
        };
        const res = await t.callback(body);
        assert.equal(res.status, 202);
        assert.deepEqual(
          res.body.errorItems.map((e: Json) => [e["subscriptionId"], e["errorClass"]]),
          [
            ["half", ERROR_CLASS_PLATFORM],
            ["neg", ERROR_CLASS_PLATFORM],
            ["ghost", ERROR_CLASS_PLATFORM],
          ],
        );
        assert.match(res.body.errorItems[0].errorMessage, /Quantity "1.5" of product RUBY-RED is not a whole number/);
        assert.equal(res.body.orderDetails.items.length, 1);
        assert.equal(res.body.orderDetails.items[0].qty, "2");

        const noShip = await t.callback({ ...order("ship"), shippingMethodCode: "carrier_pigeon" });
        assert.equal(noShip.status, 409);
        assert.equal(noShip.body.errorItems[0].errorMessage, "Shipping method carrier_pigeon is not available");
      });

      it("prices each total rounded once: a fixed price exactly × qty, tax, shipping only for shippable lines", async () => {
        const body = order("price", [
          { productSku: "RUBY-RED", qty: "3", useFixedPrice: true, fixedPrice: "8.3350", subscription: { id: "fixed" } },
          { productSku: "EBOOK", qty: 1, subscription: { id: "ebook" } },
        ]);
        const res = await t.callback(body);
        assert.equal(res.status, 201);
        const [ruby, ebook] = res.body.orderDetails.items as Json[];
        // 3 × 8.3350 = 25.005 → 25.01, rounded once (not 3 × 8.34 = 25.02); tax 9 % of 25.005 = 2.25045 → 2.25;
        // shipping 0.60 + 3 × 1.20 = 4.20. The fixed price is answered as sent.
        assert.deepEqual([ruby?.["unitPrice"], ruby?.["taxTotal"], ruby?.["shippingTotal"], ruby?.["lineTotal"]], ["8.3350", "2.2500", "4.2000", "31.4600"]);
        // 4.99, tax 20 % = 0.998 → 1.00, no shipping
        assert.deepEqual([ebook?.["requiresShipping"], ebook?.["taxTotal"], ebook?.["shippingTotal"], ebook?.["lineTotal"]], [false, "1.0000", "0.0000", "5.9900"]);
        assert.equal(res.body.orderDetails.total, "37.4500");
      });

      it("items without a subscription (optional, as for the Magento 2 extension) are answered without subscriptionId", async () => {
        const res = await t.callback({
          ...order("nosub", [
            { productSku: "RUBY-RED", qty: "1" },
            { productSku: "EARL-GREY", qty: "2", subscription: null },
            { productSku: "RUBY-RED", qty: "1", subscription: { id: "with" } },
            { productSku: "GHOST", qty: "1" },
          ]),
          allowSomeFailedItems: true,
        });
        assert.equal(res.status, 202, res.text);
        assert.deepEqual(
          res.body.orderDetails.items.map((i: Json) => [i["productSku"], i["qty"], "subscriptionId" in i ? i["subscriptionId"] : "(none)"]),
          [
            ["RUBY-RED", "1", "(none)"],
            ["EARL-GREY", "2", "(none)"],
            ["RUBY-RED", "1", "with"],
          ],
        );
        assert.deepEqual(res.body.errorItems, [{ errorMessage: "Product GHOST was not found in the catalog", errorClass: ERROR_CLASS_PLATFORM }]);
        const stored = await t.admin(`/admin/orders/${encodeURIComponent(res.body.orderNumber)}`);
        assert.deepEqual(
          stored.body.items.map((i: Json) => i["subscriptionId"]),
          [null, null, "with"],
        );

        const none = await t.callback(order("nosub-409", [{ productSku: "GHOST", qty: "1" }]));
        assert.equal(none.status, 409);
        assert.deepEqual(none.body.errorItems, [{ errorMessage: "Product GHOST was not found in the catalog", errorClass: ERROR_CLASS_PLATFORM }]);
      });

      it("refuses an order in another currency than the catalog's", async () => {
        const res = await t.callback({ ...order("eur"), currency: "eur" });
        assert.equal(res.status, 409);
        assert.equal(res.body.errorItems[0].errorMessage, "Currency EUR is not accepted: the catalog is priced in USD");
      });

      it("never oversells: concurrent orders for the last units", async () => {
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => t.callback(order(`limited-${i}`, [{ productSku: "LIMITED", qty: 1, subscription: { id: `l${i}` } }]))),
        );
        const statuses = results.map((r) => r.status).sort();
        assert.deepEqual(statuses, [201, 201, 201, 201, 201, 409, 409, 409]);
        for (const r of results.filter((x) => x.status === 409)) {
          assert.equal(r.body.errorItems[0].errorMessage, "Product LIMITED is out of stock");
        }
        assert.equal(await stock(t, "LIMITED"), 0);
      });

      it("accepts pretty-printed bodies, non-ASCII text and escaped slashes exactly as signed", async () => {
        const pretty = JSON.stringify(
          { ...order("pretty"), items: [{ productSku: "RUBY-RED", qty: "1", shortDescription: "Thé noir — 紅茶 🍵", subscription: { id: "p1" } }] },
          null,
          2,
        );
        const res = await t.callback(pretty);
        assert.equal(res.status, 201);
        assert.equal(res.body.orderDetails.items[0].shortDescription, "Thé noir — 紅茶 🍵");

        const escaped = JSON.stringify(order("escaped")).replace('"Springfield"', '"Spring\\/field \\u00e9"');
        const res2 = await t.callback(escaped);
        assert.equal(res2.status, 201);
        assert.equal(res2.body.orderDetails.billingAddress.city, "Spring/field é");
      });
    });

    describe("exactly once", () => {
      let t: TestService;
      before(async () => {
        t = await startService(kind, { catalog: { ...DEMO_CATALOG, products: [...DEMO_CATALOG.products, { sku: "SCARCE", name: "Scarce", price: "1.00", stock: 0 }] } });
      });
      after(() => t.stop());

      it("a retry of a placed order returns the stored status and body byte for byte", async () => {
        const body = order("replay");
        const first = await t.callback(body);
        assert.equal(first.status, 201);
        const again = await t.callback(body);
        assert.equal(again.status, 201);
        assert.equal(again.text, first.text);
        // The same order re-sent with other formatting and key order is still the same order.
        const reformatted = JSON.stringify(Object.fromEntries(Object.entries(body).reverse()), null, 4);
        const third = await t.callback(reformatted);
        assert.equal(third.status, 201);
        assert.equal(third.text, first.text);
        const list = await t.admin("/admin/orders?salesOrderToken=tok-replay");
        assert.equal(list.body.orders.length, 1);
      });

      it("the same token with a different order body is refused with 409 and an explanation", async () => {
        const body = order("reuse");
        assert.equal((await t.callback(body)).status, 201);
        const changed = { ...body, items: [{ productSku: "EARL-GREY", qty: "2", subscription: { id: "other" } }] };
        const res = await t.callback(changed);
        assert.equal(res.status, 409);
        assert.equal(res.body.errorCode, "idempotency_key_reused");
        assert.equal(res.body.errorClass, "Technology");
        assert.match(res.body.errorMessage, /salesOrderToken tok-reuse was already placed with a different order body/);
        assert.equal((await t.admin("/admin/orders?salesOrderToken=tok-reuse")).body.orders.length, 1);
      });

      it("a retry after a 409 is processed afresh", async () => {
        const body = order("afresh", [{ productSku: "SCARCE", qty: 2, subscription: { id: "sc" } }]);
        const first = await t.callback(body);
        assert.equal(first.status, 409);
        await t.store.db.updateTable("local_stock").set({ available: 5 }).where("sku", "=", "SCARCE").execute();
        const second = await t.callback(body);
        assert.equal(second.status, 201);
        assert.equal(await stock(t, "SCARCE"), 3);
      });

      it("20 concurrent duplicates create one order and all get the same answer", async () => {
        const body = JSON.stringify(order("concurrent", [{ productSku: "EARL-GREY", qty: 2, subscription: { id: "c1" } }]));
        const results = await Promise.all(Array.from({ length: 20 }, () => t.callback(body)));
        assert.deepEqual(new Set(results.map((r) => r.status)), new Set([201]));
        assert.equal(new Set(results.map((r) => r.text)).size, 1);
        assert.equal((await t.admin("/admin/orders?salesOrderToken=tok-concurrent")).body.orders.length, 1);
      });

      it("concurrent requests with one token but different bodies: one order, the others refused with 409", async () => {
        const bodies = Array.from({ length: 10 }, (_, i) =>
          JSON.stringify(order("race", [{ productSku: i % 2 === 0 ? "RUBY-RED" : "EARL-GREY", qty: i + 1, subscription: { id: `r${i}` } }])),
        );
        const results = await Promise.all(bodies.map((b) => t.callback(b)));
        const placed = results.filter((r) => r.status === 201);
        const refused = results.filter((r) => r.status === 409);
        assert.equal(placed.length + refused.length, 10, results.map((r) => r.status).join());
        assert.ok(placed.length >= 1);
        assert.equal(new Set(placed.map((r) => r.text)).size, 1, "every 201 is the one order's answer");
        for (const r of refused) assert.equal(r.body.errorCode, "idempotency_key_reused");
        const orders = (await t.admin("/admin/orders?salesOrderToken=tok-race")).body.orders;
        assert.equal(orders.length, 1);
        assert.equal(orders[0].orderNumber, placed[0]?.body.orderNumber);
      });

      it("without a salesOrderToken the raw body is the key", async () => {
        const body = order("x");
        delete body["salesOrderToken"];
        const raw = JSON.stringify(body);
        const a = await t.callback(raw);
        const b = await t.callback(raw);
        assert.equal(a.status, 201);
        assert.equal(b.text, a.text);
        const c = await t.callback(raw + "\n");
        assert.equal(c.status, 201);
        assert.notEqual(c.body.orderNumber, a.body.orderNumber);
      });

      it('an empty salesOrderToken counts as none: the raw body is the key, not the token ""', async () => {
        const raw = JSON.stringify({ ...order("x"), salesOrderToken: "" });
        const a = await t.callback(raw);
        assert.equal(a.status, 201, a.text);
        assert.equal(a.body.orderDetails.salesOrderToken, "", "echoed as sent");
        // A byte-identical retry is the same order.
        const b = await t.callback(raw);
        assert.equal(b.text, a.text);
        // Another order with an empty token is another order (not a reuse of a token "").
        const other = await t.callback({ ...order("y", [{ productSku: "EARL-GREY", qty: "1", subscription: { id: "e2" } }]), salesOrderToken: "" });
        assert.equal(other.status, 201, other.text);
        assert.notEqual(other.body.orderNumber, a.body.orderNumber);
        for (const n of [a.body.orderNumber, other.body.orderNumber]) {
          assert.equal((await t.admin(`/admin/orders/${encodeURIComponent(n)}`)).body.salesOrderToken, null);
        }
        const keys = await t.store.db.selectFrom("sp_callbacks").select("idempotency_key").where("idempotency_key", "like", "sp:%").execute();
        assert.ok(!keys.some((k) => k.idempotency_key === "sp:"), "no key for the empty token");
      });

      it("takes over a key whose owner died (expired lease)", async () => {
        const body = order("orphan");
        const now = Date.now();
        await t.store.db
          .insertInto("sp_callbacks")
          .values({
            idempotency_key: "sp:tok-orphan",
            body_hash: "whatever",
            state: "processing",
            attempt_id: "dead-process",
            lease_until: now - 1,
            status: null,
            response_body: null,
            order_number: null,
            request_id: null,
            created_at: now,
            updated_at: now,
          })
          .execute();
        const res = await t.callback(body);
        assert.equal(res.status, 201);
        const row = await t.store.db.selectFrom("sp_callbacks").selectAll().where("idempotency_key", "=", "sp:tok-orphan").executeTakeFirstOrThrow();
        assert.equal(row.state, "done");
        assert.notEqual(row.attempt_id, "dead-process");
      });

      it("waits for a live claim held by another request and answers its result, placing nothing itself", async () => {
        // Another instance (say, one still configured with a remote platform) holds the key.
        const body = JSON.stringify(order("held"));
        const now = Date.now();
        const bodyHash = createHash("sha256")
          .update(canonicalJson(JSON.parse(body)))
          .digest("hex");
        await t.store.db
          .insertInto("sp_callbacks")
          .values({
            idempotency_key: "sp:tok-held",
            body_hash: bodyHash,
            state: "processing",
            attempt_id: "other-instance",
            lease_until: now + 60_000,
            status: null,
            response_body: null,
            order_number: null,
            request_id: null,
            created_at: now,
            updated_at: now,
          })
          .execute();
        const pending = t.callback(body);
        await new Promise((r) => setTimeout(r, 300));
        // Their answer (any valid 201 will do: here one of ours for another token).
        const theirs = (await t.callback(order("held-elsewhere"))).text;
        await t.store.db
          .updateTable("sp_callbacks")
          .set({ state: "done", status: 201, response_body: theirs, order_number: JSON.parse(theirs).orderNumber, updated_at: Date.now() })
          .where("idempotency_key", "=", "sp:tok-held")
          .execute();
        const res = await pending;
        assert.equal(res.status, 201);
        assert.equal(res.text, theirs);
        assert.equal((await t.admin("/admin/orders?salesOrderToken=tok-held")).body.orders.length, 0);
      });
    });

    describe("rejections answer with errorMessage and errorClass, and create nothing", () => {
      let t: TestService;
      before(async () => {
        t = await startService(kind, { env: { BODY_LIMIT: "2kb" } });
      });
      after(() => t.stop());

      const expectRejected = async (res: { status: number; body: Json }, status: number, code: string): Promise<void> => {
        assert.equal(res.status, status, JSON.stringify(res.body));
        assert.equal(res.body["errorClass"], "Technology");
        assert.equal(res.body["errorCode"], code);
        assert.equal(typeof res.body["errorMessage"], "string");
        assert.equal(await t.count("sp_callbacks"), 0);
        assert.equal(await t.count("local_orders"), 0);
      };

      it("401 without, with a malformed, or with a wrong signature", async () => {
        await expectRejected(await t.callback(order(1), { secret: null }), 401, "signature_missing");
        await expectRejected(await t.callback(order(1), { secret: null, headers: { "Sp-Hmac": "xyz" } }), 401, "signature_malformed");
        await expectRejected(await t.callback(order(1), { secret: "wrong secret" }), 401, "signature_mismatch");
        const raw = JSON.stringify(order(1));
        const tampered = raw.replace('"qty":"1"', '"qty":"9"');
        await expectRejected(await t.callback(tampered, { secret: null, headers: { "Sp-Hmac": signSpHmac(SECRET, raw) } }), 401, "signature_mismatch");
      });

      it("415 when the body is not declared JSON", async () => {
        const raw = JSON.stringify(order(1));
        await expectRejected(await t.callback(raw, { headers: { "Content-Type": "text/plain" } }), 415, "unsupported_media_type");
        await expectRejected(await t.callback(raw, { headers: { "Content-Type": "application/json; charset=latin1" } }), 415, "unsupported_media_type");
      });

      it("400 for malformed JSON, invalid UTF-8 and an empty body", async () => {
        const res = await t.callback('{"customerId": "1",');
        await expectRejected(res, 400, "json_malformed");
        assert.match(res.body["errorMessage"], /not valid JSON/);
        const bad = await t.callback(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]));
        await expectRejected(bad, 400, "json_malformed");
        assert.match(bad.body["errorMessage"], /UTF-8/);
        await expectRejected(await t.callback(""), 400, "json_malformed");
      });

      it("400 for schema violations, with the JSON pointer of each invalid field", async () => {
        const body = order(1);
        delete body["customerEmail"];
        body["currency"] = "dollars";
        body["items"][0].qty = { amount: 1 };
        body["items"].push({ productSku: "X", qty: 1, subscription: {} });
        body["salesOrderToken"] = 42;
        const res = await t.callback(body);
        await expectRejected(res, 400, "schema_violation");
        const pointers = (res.body["errors"] as Json[]).map((e) => e["pointer"]).sort();
        assert.deepEqual(pointers, ["/currency", "/customerEmail", "/items/0/qty", "/items/1/subscription/id", "/salesOrderToken"]);
        const byPointer = Object.fromEntries((res.body["errors"] as Json[]).map((e) => [e["pointer"], e["message"]]));
        assert.equal(byPointer["/customerEmail"], "is required");
        assert.equal(byPointer["/items/0/qty"], "must be string or number");
        assert.equal(byPointer["/salesOrderToken"], "must be string or null");
        assert.match(res.body["errorMessage"], /does not match the schema/);

        await expectRejected(await t.callback([1, 2]), 400, "schema_violation");
        await expectRejected(await t.callback({ ...order(1), items: [] }), 400, "schema_violation");
        const long = await t.callback({ ...order(1), salesOrderToken: "t".repeat(256) });
        await expectRejected(long, 400, "schema_violation");
        assert.deepEqual(
          (long.body["errors"] as Json[]).map((e) => e["pointer"]),
          ["/salesOrderToken"],
        );
      });

      it("413 for a body over BODY_LIMIT", async () => {
        const big = { ...order(1), padding: "x".repeat(4096) };
        await expectRejected(await t.callback(big), 413, "payload_too_large");
      });

      it("405 for other methods", async () => {
        const { default: request } = await import("supertest");
        const res = await request(t.app).get("/callbacks/subscribe-pro/order");
        assert.equal(res.status, 405);
        assert.equal(res.headers["allow"], "POST");
        assert.equal(res.body.errorClass, "Technology");
      });
    });
  });
}
