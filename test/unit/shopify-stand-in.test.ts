import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { startShopifyStandIn } from "../helpers/shopify-stand-in.js";
import type { ShopifyStandIn } from "../helpers/shopify-stand-in.js";

const TOKEN = "shpat_test";
const VERSION = "2025-01";

const VARIANTS_QUERY = `query OrderbridgeVariants($q0: String!, $q1: String!) {
  v0: productVariants(first: 5, query: $q0) { nodes { id sku title price inventoryQuantity product { title } } }
  v1: productVariants(first: 5, query: $q1) { nodes { id sku title price inventoryQuantity product { title } } }
}`;
const FIND_QUERY = `query OrderbridgeFindOrder($query: String!) { orders(first: 1, query: $query) { nodes { id name tags } } }`;
const CREATE_MUTATION = `mutation OrderbridgeOrderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) { order { id name } userErrors { field message code } }
}`;

let current: ShopifyStandIn | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function start(): Promise<ShopifyStandIn> {
  current = await startShopifyStandIn({
    token: TOKEN,
    apiVersion: VERSION,
    variants: [
      { sku: "RUBY-RED", price: "12.5", inventoryQuantity: 5, productTitle: "Ruby tea" },
      { sku: "JADE", price: "4.00", inventoryQuantity: 1 },
    ],
  });
  return current;
}

interface PostOptions {
  token?: string;
  version?: string;
  signal?: AbortSignal;
  raw?: string;
}

function post(api: ShopifyStandIn, query: string, variables: Record<string, unknown>, o: PostOptions = {}): Promise<Response> {
  const init: RequestInit = {
    method: "POST",
    headers: { "X-Shopify-Access-Token": o.token ?? TOKEN, "Content-Type": "application/json" },
    body: o.raw ?? JSON.stringify({ query, variables }),
  };
  if (o.signal !== undefined) init.signal = o.signal;
  return fetch(`${api.url}/admin/api/${o.version ?? VERSION}/graphql.json`, init);
}

async function json(res: Response): Promise<Record<string, unknown>> {
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  return (await res.json()) as Record<string, unknown>;
}

function orderInput(api: ShopifyStandIn, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    currency: "EUR",
    tags: ["orderbridge-abc123", "subscription"],
    financialStatus: "PAID",
    lineItems: [
      {
        variantId: api.variants.get("RUBY-RED")?.id,
        quantity: 2,
        priceSet: { shopMoney: { amount: "10.00", currencyCode: "EUR" } },
        properties: [{ name: "_orderbridge_ref", value: "line-1" }],
        taxLines: [{ title: "VAT", rate: 0.2, priceSet: { shopMoney: { amount: "4.00", currencyCode: "EUR" } } }],
      },
      { variantId: api.variants.get("JADE")?.id, quantity: 1 },
    ],
    shippingLines: [{ title: "Standard", priceSet: { shopMoney: { amount: "5.95", currencyCode: "EUR" } } }],
    taxLines: [{ title: "Shipping VAT", rate: "0.2", priceSet: { shopMoney: { amount: "1.19", currencyCode: "EUR" } } }],
    discountCode: { itemFixedDiscountCode: { code: "SUB10", amountSet: { shopMoney: { amount: "3.00", currencyCode: "EUR" } } } },
    ...overrides,
  };
}

const money = (amount: string): unknown => ({ shopMoney: { amount, currencyCode: "EUR" } });

test("variants lookup answers each alias; an unknown SKU gives empty nodes", async () => {
  const api = await start();
  const res = await post(api, VARIANTS_QUERY, { q0: 'sku:"RUBY-RED"', q1: 'sku:"NOPE \\"x\\""' });
  assert.equal(res.status, 200);
  const body = await json(res);
  assert.deepEqual(body["data"], {
    v0: {
      nodes: [
        {
          id: "gid://shopify/ProductVariant/4000000001",
          sku: "RUBY-RED",
          title: "Default Title",
          price: "12.50",
          inventoryQuantity: 5,
          product: { title: "Ruby tea" },
        },
      ],
    },
    v1: { nodes: [] },
  });
  assert.deepEqual(body["extensions"], {
    cost: { requestedQueryCost: 10, actualQueryCost: 10, throttleStatus: { maximumAvailable: 2000, currentlyAvailable: 1990, restoreRate: 100 } },
  });
  assert.equal(api.variants.get("JADE")?.id, "gid://shopify/ProductVariant/4000000002");
  assert.equal(api.callsOf("OrderbridgeVariants").length, 1);
  assert.equal(api.calls[0]?.status, 200);
});

test("orderCreate stores the order, computes totals, decrements inventory; find by tag", async () => {
  const api = await start();
  const res = await post(api, CREATE_MUTATION, { order: orderInput(api), options: { inventoryBehaviour: "DECREMENT_OBEYING_POLICY" } });
  const body = await json(res);
  const data = body["data"] as { orderCreate: { order: Record<string, unknown>; userErrors: unknown[] } };
  assert.deepEqual(data.orderCreate.userErrors, []);
  const order = data.orderCreate.order;
  assert.equal(order["id"], "gid://shopify/Order/5000000001");
  assert.equal(order["legacyResourceId"], "5000000001");
  assert.equal(order["name"], "#1001");
  assert.equal(order["currencyCode"], "EUR");
  assert.equal(order["displayFinancialStatus"], "PAID");
  assert.deepEqual(order["tags"], ["orderbridge-abc123", "subscription"]);
  assert.ok(!Number.isNaN(Date.parse(String(order["createdAt"]))));
  // subtotal 2×10.00 + 1×4.00 = 24.00; shipping 5.95; tax 4.00 + 1.19; discount 3.00.
  assert.deepEqual(order["subtotalPriceSet"], money("24.00"));
  assert.deepEqual(order["totalShippingPriceSet"], money("5.95"));
  assert.deepEqual(order["totalTaxSet"], money("5.19"));
  assert.deepEqual(order["totalDiscountsSet"], money("3.00"));
  assert.deepEqual(order["totalPriceSet"], money("32.14"));
  assert.deepEqual(order["lineItems"], {
    nodes: [
      {
        id: "gid://shopify/LineItem/7000000001",
        sku: "RUBY-RED",
        quantity: 2,
        customAttributes: [{ key: "_orderbridge_ref", value: "line-1" }],
        originalUnitPriceSet: money("10.00"),
      },
      { id: "gid://shopify/LineItem/7000000002", sku: "JADE", quantity: 1, customAttributes: [], originalUnitPriceSet: money("4.00") },
    ],
  });
  assert.equal(api.variants.get("RUBY-RED")?.inventoryQuantity, 3);
  assert.equal(api.variants.get("JADE")?.inventoryQuantity, 0);
  assert.equal(api.orders.length, 1);
  assert.deepEqual(api.orders[0]?.options, { inventoryBehaviour: "DECREMENT_OBEYING_POLICY" });
  assert.equal((api.orders[0]?.input["lineItems"] as unknown[]).length, 2);

  const found = await json(await post(api, FIND_QUERY, { query: 'tag:"orderbridge-abc123"' }));
  assert.deepEqual(found["data"], { orders: { nodes: [order] } });
  const missing = await json(await post(api, FIND_QUERY, { query: 'tag:"orderbridge-ffff"' }));
  assert.deepEqual(missing["data"], { orders: { nodes: [] } });

  const second = await json(await post(api, CREATE_MUTATION, { order: { tags: ["t2"], lineItems: [{ variantId: api.variants.get("RUBY-RED")?.id, quantity: 1 }] } }));
  const order2 = (second["data"] as { orderCreate: { order: Record<string, unknown> } }).orderCreate.order;
  assert.equal(order2["name"], "#1002");
  assert.equal(order2["currencyCode"], "USD");
  assert.equal(order2["displayFinancialStatus"], "PENDING");
  assert.deepEqual(order2["totalPriceSet"], { shopMoney: { amount: "12.50", currencyCode: "USD" } });
});

test("unknown variant and out-of-stock give userErrors and store nothing", async () => {
  const api = await start();
  const unknown = await json(
    await post(api, CREATE_MUTATION, {
      order: orderInput(api, {
        lineItems: [
          { variantId: api.variants.get("RUBY-RED")?.id, quantity: 1 },
          { variantId: "gid://shopify/ProductVariant/1", quantity: 1 },
        ],
      }),
    }),
  );
  assert.deepEqual(unknown["data"], {
    orderCreate: {
      order: null,
      userErrors: [{ field: ["order", "lineItems", "1", "variantId"], message: "Variant gid://shopify/ProductVariant/1 does not exist", code: "INVALID" }],
    },
  });

  const oos = await json(await post(api, CREATE_MUTATION, { order: orderInput(api, { lineItems: [{ variantId: api.variants.get("RUBY-RED")?.id, quantity: 6 }] }) }));
  assert.deepEqual(oos["data"], {
    orderCreate: {
      order: null,
      userErrors: [{ field: ["order", "lineItems", "0", "quantity"], message: "RUBY-RED is out of stock", code: "INVENTORY_NOT_AVAILABLE" }],
    },
  });

  const empty = await json(await post(api, CREATE_MUTATION, { order: orderInput(api, { lineItems: [] }) }));
  assert.deepEqual(empty["data"], {
    orderCreate: { order: null, userErrors: [{ field: ["order", "lineItems"], message: "Line items can't be empty", code: "INVALID" }] },
  });

  assert.equal(api.orders.length, 0);
  assert.equal(api.variants.get("RUBY-RED")?.inventoryQuantity, 5);
});

test("wrong token 401, wrong version 404, missing query 400, unknown operation", async () => {
  const api = await start();
  const bad = await post(api, VARIANTS_QUERY, {}, { token: "nope" });
  assert.equal(bad.status, 401);
  assert.deepEqual(await json(bad), { errors: "[API] Invalid API key or access token (unrecognized login or wrong password)" });

  const version = await post(api, VARIANTS_QUERY, {}, { version: "2019-04" });
  assert.equal(version.status, 404);
  assert.deepEqual(await json(version), { errors: "Not Found" });

  const noQuery = await post(api, "", {}, { raw: "{not json" });
  assert.equal(noQuery.status, 400);
  assert.deepEqual(await json(noQuery), { errors: { query: "Required parameter missing or invalid" } });

  const other = await post(api, "query Something { shop { name } }", {});
  assert.equal(other.status, 200);
  const otherBody = await json(other);
  assert.deepEqual(otherBody["errors"], [{ message: "unknown operation" }]);
  assert.ok(otherBody["extensions"] !== undefined);

  assert.deepEqual(
    api.calls.map((c) => c.status),
    [401, 404, 400, 200],
  );
});

test("scripted throttled, 429 with Retry-After, malformed and wrong-shape replies, then normal again", async () => {
  const api = await start();
  api.queue({ kind: "throttled", currentlyAvailable: 12 }, { kind: "status", status: 429, retryAfter: 2 }, { kind: "malformed" }, { kind: "wrong-shape" });

  const throttled = await post(api, VARIANTS_QUERY, { q0: 'sku:"JADE"' });
  assert.equal(throttled.status, 200);
  assert.deepEqual(await json(throttled), {
    errors: [{ message: "Throttled", extensions: { code: "THROTTLED", documentation: "https://shopify.dev/api/usage/rate-limits" } }],
    extensions: {
      cost: { requestedQueryCost: 50, actualQueryCost: null, throttleStatus: { maximumAvailable: 2000, currentlyAvailable: 12, restoreRate: 100 } },
    },
  });

  const limited = await post(api, VARIANTS_QUERY, { q0: 'sku:"JADE"' });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get("retry-after"), "2");
  assert.deepEqual(await json(limited), { errors: "Too Many Requests" });

  const malformed = await post(api, CREATE_MUTATION, { order: orderInput(api) });
  assert.equal(malformed.status, 200);
  await assert.rejects(malformed.json(), SyntaxError);

  const wrong = await post(api, CREATE_MUTATION, { order: orderInput(api) });
  assert.deepEqual(await json(wrong), { data: { unexpected: true } });
  assert.equal(api.orders.length, 0, "scripted replies do not run the operation");

  const normal = await json(await post(api, VARIANTS_QUERY, { q0: 'sku:"JADE"' }));
  assert.equal((normal["data"] as { v0: { nodes: unknown[] } }).v0.nodes.length, 1);
});

test('"hang" holds the answer until the client gives up; close() is prompt', async () => {
  const api = await start();
  api.queue("hang");
  await assert.rejects(post(api, VARIANTS_QUERY, { q0: 'sku:"JADE"' }, { signal: AbortSignal.timeout(200) }), { name: "TimeoutError" });
  assert.equal(api.calls[0]?.status, 0);
  const started = Date.now();
  await api.close();
  await api.close(); // idempotent
  assert.ok(Date.now() - started < 1000, "close() resolves promptly");
});

test("create-then-hang stores the order but never answers", async () => {
  const api = await start();
  api.queue({ kind: "after", run: "create-then-hang" });
  await assert.rejects(post(api, CREATE_MUTATION, { order: orderInput(api) }, { signal: AbortSignal.timeout(200) }), { name: "TimeoutError" });
  assert.equal(api.orders.length, 1);
  assert.equal(api.orders[0]?.node["name"], "#1001");
  assert.equal(api.variants.get("RUBY-RED")?.inventoryQuantity, 3);
  assert.equal(api.callsOf("OrderbridgeOrderCreate")[0]?.status, 0);

  // The retry finds it by tag.
  const found = await json(await post(api, FIND_QUERY, { query: 'tag:"orderbridge-abc123"' }));
  assert.equal((found["data"] as { orders: { nodes: unknown[] } }).orders.nodes.length, 1);
});
