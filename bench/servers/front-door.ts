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
import { JOB_KINDS } from "../../src/recharge/handlers.js";
import { tuneRuntime } from "../../src/runtime.js";
import { openStore } from "../../src/store/db.js";
import { FIXED_ANSWER as ANSWER } from "./fixed-answer.js";

tuneRuntime();
const config = loadConfig(process.env);
const log = createLogger(config.log).child({ pid: process.pid });
// A real store for the metrics' queue figures and /readyz; the order path never touches it.
const store = await openStore(config.database, log);

const notHere = (): Promise<never> => Promise.reject(new Error("the front-door yardstick has no admin API"));
const app = createApp({
  config,
  metrics: createMetrics(store.handle, { jobKinds: JOB_KINDS, build: { version: "bench", commit: undefined } }),
  log,
  spAuth: { mode: config.subscribePro.auth, secrets: config.subscribePro.hmacSecrets, allowlist: config.subscribePro.allowlist },
  handleCallback: () => Promise.resolve({ status: 201, body: ANSWER, headers: {}, replayed: false, orderNumber: "OB-100000" }),
  receiveRecharge: undefined,
  ping: () => store.ping(),
  admin: {
    callbacks: { list: notHere, get: notHere, ofToken: notHere },
    orders: { list: notHere, get: notHere },
    events: { list: notHere, get: notHere, attempts: notHere, replay: notHere, matching: notHere, count: notHere, resolve: notHere },
  },
});

const server = app.listen(config.port, config.host ?? "127.0.0.1", () => {
  const address = server.address();
  const actual = typeof address === "object" && address !== null ? address.port : config.port;
  console.log(`listening on port ${actual}`);
});
server.keepAliveTimeout = 65_000;
process.on("SIGTERM", () => server.close(() => void store.close().then(() => process.exit(0))));
