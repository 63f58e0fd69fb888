// A yardstick, not a product: orderbridge's own HTTP front door — the same Express application
// (helmet, request id, access log, metrics, the address and Content-Type checks, the body limit and
// the Sp-Hmac check), built by the same createApp with the same configuration as `dist/main.js` —
// with the order pipeline replaced by a fixed 201. What it costs per request is what orderbridge
// spends before any order work; the gap to the orderbridge targets is the order itself.
//
// Compiled by bench/run.ts together with the src/ files it imports (same compiler, same target).

import { createApp } from "../../src/http/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { tuneRuntime } from "../../src/runtime.js";
import { openStore } from "../../src/store/db.js";

tuneRuntime();
const config = loadConfig(process.env);
const log = createLogger(config.log).child({ pid: process.pid });
// A real store for the metrics' queue figures and /readyz; the order path never touches it.
const store = await openStore(config.database, log);

// orderbridge's 201 for the benchmark's order, the size and shape of the real one.
const ANSWER = JSON.stringify({
  orderNumber: "OB-100000",
  orderDetails: {
    customerId: "1", customerEmail: "a@example.com", platformCustomerId: "P1", platformOrderId: "100000",
    orderNumber: "OB-100000", salesOrderToken: "bench", orderStatus: "placed", orderState: "open",
    orderDateTime: "2026-01-01T00:00:00Z", currency: "USD", shippingTotal: "3.0000", taxTotal: "1.8000", total: "24.8000",
    shippingAddress: { city: "X", country: "US" },
    items: [
      {
        platformOrderItemId: "1", productSku: "RUBY-RED", productName: "Ruby Red Black Tea", qty: "2", requiresShipping: true,
        unitPrice: "10.0000", shippingTotal: "3.0000", taxTotal: "1.8000", lineTotal: "24.8000", subscriptionId: "s1",
      },
    ],
  },
  errorItems: [],
});

const notHere = (): Promise<never> => Promise.reject(new Error("the front-door yardstick has no admin API"));
const app = createApp({
  config,
  metrics: createMetrics(store.db),
  log,
  spAuth: { mode: config.subscribePro.auth, secrets: config.subscribePro.hmacSecrets, allowlist: config.subscribePro.allowlist },
  handleCallback: () => Promise.resolve({ status: 201, body: ANSWER, headers: {}, replayed: false, orderNumber: "OB-100000" }),
  receiveRecharge: undefined,
  ping: () => store.ping(),
  admin: { orders: { list: notHere, get: notHere }, events: { list: notHere, get: notHere, replay: notHere } },
});

const server = app.listen(config.port, config.host ?? "127.0.0.1", () => {
  const address = server.address();
  const actual = typeof address === "object" && address !== null ? address.port : config.port;
  console.log(`listening on port ${actual}`);
});
server.keepAliveTimeout = 65_000;
process.on("SIGTERM", () => server.close(() => void store.close().then(() => process.exit(0))));
