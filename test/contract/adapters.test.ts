import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { PlatformError } from "../../src/errors.js";
import type { NormalizedOrder, PlatformAdapter } from "../../src/orders/types.js";
import { createHttpPlatform, deliveryId, type HttpOrderResponse } from "../../src/platforms/http/adapter.js";
import { loadPlatformModule } from "../../src/platforms/index.js";
import { createLocalPlatform } from "../../src/platforms/local/adapter.js";
import { loadCatalog } from "../../src/platforms/local/catalog.js";
import { createShopifyPlatform, idempotencyTag } from "../../src/platforms/shopify/adapter.js";
import { noScrub } from "../../src/security/scrub.js";
import { openStore } from "../../src/store/db.js";
import { createSchemaRegistry } from "../../src/validation/schemas.js";
import { startOmsStandIn } from "../helpers/oms-stand-in.js";
import { startShopifyStandIn } from "../helpers/shopify-stand-in.js";
import { freshDatabase, storeKinds } from "../helpers/stores.js";
import { runPlatformContract } from "./platform-contract.js";

const log = createLogger({ level: "error", format: "json", silent: true });
const schemas = createSchemaRegistry();

for (const { kind, skip } of await storeKinds()) {
  runPlatformContract(
    `local [${kind}]`,
    async () => {
      const db = freshDatabase(kind);
      const store = await openStore(loadConfig(db.env).database, log);
      const platform = createLocalPlatform({ db: store.handle, catalog: loadCatalog(undefined, schemas), orderNumberPrefix: "OB-", orderNumberStart: 100_000 });
      await platform.init();
      return {
        platform,
        skus: { known: ["RUBY-RED", "EARL-GREY"], unknown: "NOT-A-SKU" },
        async ordersFor(key) {
          const rows = await store.db.selectFrom("local_orders").select("id").where("idempotency_key", "=", key).execute();
          return rows.length;
        },
        async close() {
          await store.close();
          await db.cleanup();
        },
      };
    },
    { faults: false, skip },
  );
}

runPlatformContract(
  "http",
  async () => {
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const oms = await startOmsStandIn({ secret, skus: ["RUBY-RED", "EARL-GREY"] });
    const platform = createHttpPlatform({
      url: `${oms.url}/orders`,
      secret,
      timeoutMs: 2_000,
      validateResponse: schemas.validator<HttpOrderResponse>("platform-http/order-response"),
      backoff: { baseMs: 20, maxMs: 100 },
    });
    return {
      platform,
      skus: { known: ["RUBY-RED", "EARL-GREY"], unknown: "NOT-A-SKU" },
      ordersFor: async (key) => (oms.orders.has(deliveryId(key)) ? 1 : 0),
      faults: {
        hangNext: () => oms.queue("hang"),
        malformNext: () => oms.queue("not-json"),
        serverErrorNext: () => oms.queue("500"),
        createThenHangNext: () => oms.queue("create-then-hang"),
      },
      close: () => oms.close(),
    };
  },
  { faults: true },
);

runPlatformContract(
  "shopify",
  async () => {
    const shopify = await startShopifyStandIn({
      token: "shpat_test_token",
      apiVersion: "2025-10",
      variants: [
        { sku: "RUBY-RED", price: "10.00", productTitle: "Ruby Red Black Tea" },
        { sku: "EARL-GREY", price: "12.00", productTitle: "Earl Grey Tea" },
      ],
    });
    const platform: PlatformAdapter = createShopifyPlatform({
      shop: "orderbridge-test",
      accessToken: "shpat_test_token",
      apiVersion: "2025-10",
      apiUrl: shopify.url,
      timeoutMs: 2_000,
    });
    return {
      platform,
      skus: { known: ["RUBY-RED", "EARL-GREY"], unknown: "NOT-A-SKU" },
      ordersFor: async (key) => shopify.orders.filter((o) => (o.node["tags"] as string[]).includes(idempotencyTag(key))).length,
      faults: {
        hangNext: () => shopify.queue("hang"),
        malformNext: () => shopify.queue({ kind: "malformed" }),
        serverErrorNext: () => shopify.queue({ kind: "status", status: 503 }),
        createThenHangNext: () => shopify.queueFor("OrderbridgeOrderCreate", { kind: "after", run: "create-then-hang" }),
      },
      close: () => shopify.close(),
    };
  },
  { faults: true },
);

runPlatformContract(
  "module (PLATFORM=./in-memory-adapter.mjs)",
  async () => {
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/adapters/in-memory-adapter.mjs");
    const platform = await loadPlatformModule(file, { env: {}, log, timeoutMs: 1000 });
    const placed = (platform as unknown as { placed: Map<string, unknown> }).placed;
    return {
      platform,
      skus: { known: ["RUBY-RED", "EARL-GREY"], unknown: "NOT-A-SKU" },
      ordersFor: async (key) => (placed.has(key) ? 1 : 0),
      close: async () => undefined,
    };
  },
  { faults: false },
);

describe("PLATFORM=http: whether a failed call may have placed the order", () => {
  const order = {
    source: "subscribe-pro" as const,
    sourceOrderId: "t",
    allowPartial: false,
    currency: "USD",
    customer: { email: "a@example.com" },
    couponCodes: [],
    lines: [{ ref: "0", sku: "RUBY-RED", quantity: 1 }],
  } as unknown as NormalizedOrder;
  const call = (platform: PlatformAdapter, deadlineMs: number) =>
    platform.createOrder(order, { idempotencyKey: "sp:np", signal: AbortSignal.timeout(deadlineMs), log, scrub: noScrub });
  const make = (url: string, backoff = { baseMs: 20, maxMs: 50 }) =>
    createHttpPlatform({
      url,
      secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      timeoutMs: 200,
      validateResponse: schemas.validator<HttpOrderResponse>("platform-http/order-response"),
      backoff,
    });

  it("refused at connect on every attempt: not placed; a 4xx: not placed; a timeout or a 5xx: may have been", async () => {
    // The deadline falls in the pause after the refused attempt (an attempt cut off by the deadline
    // may have reached the platform, so it would count as uncertain).
    await assert.rejects(call(make("http://127.0.0.1:9/orders", { baseMs: 5000, maxMs: 5000 }), 1000), (e: unknown) => e instanceof PlatformError && e.notPlaced);
    const oms = await startOmsStandIn({ secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", skus: ["RUBY-RED"] });
    try {
      oms.queue("400");
      await assert.rejects(call(make(`${oms.url}/orders`), 1000), (e: unknown) => e instanceof PlatformError && e.notPlaced);
      oms.queue("hang", "hang", "hang", "hang", "hang", "hang");
      await assert.rejects(call(make(`${oms.url}/orders`), 500), (e: unknown) => e instanceof PlatformError && !e.notPlaced);
      oms.queue("500", "500", "500", "500", "500", "500", "500", "500", "500", "500", "500", "500");
      await assert.rejects(call(make(`${oms.url}/orders`), 300), (e: unknown) => e instanceof PlatformError && !e.notPlaced);
    } finally {
      await oms.close();
    }
  });
});
