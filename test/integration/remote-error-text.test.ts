import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { PlatformAdapter } from "../../src/orders/types.js";
import { OMS_REQUEST_ID, startOmsStandIn, type OmsStandIn } from "../helpers/oms-stand-in.js";
import { RC_TOKEN, rcFixture, startRechargeService, type Json, type RechargeTestService } from "../helpers/recharge.js";
import { minimalOrder, startService, type TestService } from "../helpers/service.js";
import { startShopifyStandIn, type ShopifyStandIn } from "../helpers/shopify-stand-in.js";

// What a remote platform writes in an error may quote what it was sent: the payment token, the
// customer's email, our credentials. The caller (Subscribe Pro, the admin API's reader) is answered
// in our words only; the log keeps the platform's words with those values scrubbed. Remote
// platforms keep no state of their own in our database, so SQLite suffices.
const kind = "sqlite" as const;
const OMS_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SHOP_TOKEN = "shpat_test_token_0123456789";
const TOKEN = "pm_1QxYz9SecretToken";
const PROFILE = "881234";
const NESTED = "cc_tok_nested_77";
const EMAIL = "jane.doe@example.com";
const SECRETS = [TOKEN, PROFILE, NESTED, EMAIL, RC_TOKEN, SHOP_TOKEN, OMS_SECRET];

const paidOrder = (token: string): Json =>
  minimalOrder(token, [{ productSku: "RUBY-RED", qty: 1, subscription: { id: "s-1" } }], {
    customerEmail: EMAIL,
    payment: { paymentToken: TOKEN, paymentProfileId: PROFILE, creditcard: { token: NESTED, last4: "42" } },
  });

/** Asserts no log line written since `from` holds a secret, and returns the lines that mention `marker`. */
function logsSince(t: TestService, from: number, marker: RegExp, also: string[] = []): string[] {
  const lines = t.logs.slice(from);
  for (const secret of [...SECRETS, ...also]) {
    const leaking = lines.find((l) => l.toLowerCase().includes(secret.toLowerCase()));
    assert.equal(leaking, undefined, `a log line holds ${secret}`);
  }
  return lines.filter((l) => marker.test(l));
}

function assertAnswerClean(message: string): void {
  for (const secret of SECRETS) assert.equal(message.includes(secret), false, `the answer holds ${secret}: ${message}`);
  assert.doesNotMatch(message, /payment declined|call the bank|redacted/, `the answer quotes the platform: ${message}`);
}

describe("PLATFORM=http: the OMS's error text never reaches the caller, and reaches the log scrubbed", () => {
  let oms: OmsStandIn;
  let t: RechargeTestService;
  before(async () => {
    oms = await startOmsStandIn({ secret: OMS_SECRET, skus: ["RUBY-RED", "EARL-GREY"] });
    t = await startRechargeService(kind, {
      env: {
        PLATFORM: "http",
        PLATFORM_HTTP_URL: `${oms.url}/orders`,
        PLATFORM_HTTP_SECRET: OMS_SECRET,
        PLATFORM_TIMEOUT_MS: "500",
        PLATFORM_DEADLINE_MS: "1200",
        LOG_REDACT_EMAIL: "true",
      },
    });
  });
  after(async () => {
    await t.stop();
    await oms.close();
  });

  const signatures = (key: string): string[] => oms.calls.filter((c) => c.body["idempotencyKey"] === key).map((c) => String(c.headers["webhook-signature"]).replace(/^v1,/, ""));

  it("a 422 naming the payment token, the profile id, a nested token and the email: 503 in our words; the log has the excerpt scrubbed", async () => {
    const from = t.logs.length;
    oms.queue("echo-422");
    const res = await t.callback(paidOrder("echo-422"));
    assert.equal(res.status, 503);
    assertAnswerClean(res.text);
    assert.match(res.body.errorMessage, new RegExp(`refused POST order → HTTP 422 \\(request id ${OMS_REQUEST_ID}\\); it was not placed`));
    const row = await t.store.db.selectFrom("sp_callbacks").select("response_body").where("idempotency_key", "=", "sp:echo-422").executeTakeFirstOrThrow();
    assertAnswerClean(row.response_body ?? "");

    const said = logsSince(t, from, /payment declined/, signatures("sp:echo-422"));
    assert.ok(said.length > 0, "the OMS's words are logged");
    const line = JSON.parse(said[0] as string) as Json;
    assert.equal(line["level"], "warn");
    assert.match(line["detail"], /payment declined: \[redacted\] \/ \[redacted\] \/ \[redacted\] \/ \[redacted\] \/ \[redacted\].*call the bank/);
  });

  it("500s naming them until the deadline: 503 in our words; each retry's log line has the excerpt scrubbed", async () => {
    const from = t.logs.length;
    oms.queue(...Array<"echo-500">(30).fill("echo-500"));
    const res = await t.callback(paidOrder("echo-500"));
    oms.clear();
    assert.equal(res.status, 503);
    assertAnswerClean(res.text);
    const said = logsSince(t, from, /payment declined/, signatures("sp:echo-500"));
    assert.ok(said.length > 0, "the OMS's words are logged");
    for (const l of said) assert.match(l, /\[redacted\]/);
    assert.ok(said.some((l) => (JSON.parse(l) as Json)["failure"] === `POST order → HTTP 500 (request id ${OMS_REQUEST_ID})`));
  });

  it("a Recharge order the OMS refuses quoting the email and the signature: the job's last error and the admin API have them scrubbed", async () => {
    const from = t.logs.length;
    oms.queue("echo-422");
    const res = await t.webhook("order/created", rcFixture("2021-11", "order-created"));
    await t.settle();
    const job = await t.job(res.body.eventId);
    assert.equal(job.state, "dead");
    const sigs = signatures("recharge:order:512340001");
    assert.ok(sigs.length > 0);
    const lastError = job.last_error ?? "";
    assert.match(lastError, new RegExp(`refused POST order → HTTP 422 \\(request id ${OMS_REQUEST_ID}\\); it was not placed`));
    assert.match(lastError, /The platform said: .*payment declined: \[redacted\] \/ \[redacted\]/);
    assert.match(lastError, /Fix the cause, then replay this event\.$/);
    for (const secret of [EMAIL, OMS_SECRET, ...sigs]) assert.equal(lastError.includes(secret), false, `last_error holds ${secret}`);
    const shown = await t.admin(`/admin/events/${res.body.eventId as string}`);
    assert.equal(shown.status, 200);
    assert.equal(shown.body.lastError, lastError);
    const said = logsSince(t, from, /payment declined/, sigs);
    assert.ok(
      said.some((l) => /job is dead/.test(l)),
      "the dead job's log line carries the scrubbed words",
    );
  });

  it("a Recharge write-back whose error body echoes the access token: last error and log have it scrubbed", async () => {
    const from = t.logs.length;
    t.recharge.queue({
      status: 422,
      body: { errors: { external_order_id: `token ${RC_TOKEN} may not set this` } },
      headers: { "x-request-id": "rc-req-7" },
    });
    const body = rcFixture("2021-11", "order-created");
    body["order"]["id"] = 512340077;
    await t.webhook("order/created", body);
    await t.settle();
    const [wb] = await t.jobs({ kind: "recharge.order_writeback", state: "dead" });
    assert.ok(wb, "the write-back is dead (422)");
    assert.equal(wb.last_error, 'PUT /orders/512340077 → 422 (request id rc-req-7): {"external_order_id":"token [redacted] may not set this"}');
    const said = logsSince(t, from, /may not set this/);
    assert.ok(said.length > 0 && said.every((l) => l.includes("token [redacted]")));
  });
});

describe("PLATFORM=shopify: Shopify's error text never reaches the caller, and reaches the log scrubbed", () => {
  let shop: ShopifyStandIn;
  let t: TestService;
  before(async () => {
    shop = await startShopifyStandIn({ token: SHOP_TOKEN, apiVersion: "2025-10", variants: [{ sku: "RUBY-RED", price: "10.00" }] });
    t = await startService(kind, {
      env: {
        PLATFORM: "shopify",
        SHOPIFY_SHOP: "orderbridge-test",
        SHOPIFY_ACCESS_TOKEN: SHOP_TOKEN,
        SHOPIFY_API_URL: shop.url,
        PLATFORM_TIMEOUT_MS: "1000",
        PLATFORM_DEADLINE_MS: "3000",
        LOG_REDACT_EMAIL: "true",
      },
    });
  });
  after(async () => {
    await t.stop();
    await shop.close();
  });

  it("an HTTP refusal quoting the payment token, the email and the access token: 503 with the status and request id only", async () => {
    const from = t.logs.length;
    shop.queueFor("OrderbridgeOrderCreate", {
      kind: "status",
      status: 422,
      body: { errors: `payment declined: ${TOKEN} for ${EMAIL} (X-Shopify-Access-Token ${SHOP_TOKEN})` },
      headers: { "x-request-id": "shop-req-9" },
    });
    const res = await t.callback(paidOrder("shop-422"));
    assert.equal(res.status, 503);
    assertAnswerClean(res.text);
    assert.match(res.body.errorMessage, /Shopify refused OrderbridgeOrderCreate with HTTP 422 \(request id shop-req-9\)/);
    const said = logsSince(t, from, /payment declined/);
    assert.ok(said.length > 0);
    assert.match((JSON.parse(said[0] as string) as Json)["detail"], /payment declined: \[redacted\] for \[redacted\] \(X-Shopify-Access-Token \[redacted\]\)/);
  });

  it("GraphQL errors that quote a variable's value: 503 in our words; the log has them scrubbed", async () => {
    const from = t.logs.length;
    shop.queueFor("OrderbridgeOrderCreate", {
      kind: "status",
      status: 200,
      body: { errors: [{ message: `Variable $order was provided invalid value for email (${EMAIL}); payment declined ${TOKEN}` }] },
    });
    const res = await t.callback(paidOrder("shop-graphql"));
    assert.equal(res.status, 503);
    assertAnswerClean(res.text);
    assert.match(res.body.errorMessage, /Shopify refused OrderbridgeOrderCreate with GraphQL errors/);
    const said = logsSince(t, from, /payment declined/);
    assert.ok(said.length > 0 && said.every((l) => /invalid value for email \(\[redacted\]\); payment declined \[redacted\]/.test(l)));
  });
});

describe("a plug-in adapter's exception naming the payment token", () => {
  let t: TestService;
  const platform: PlatformAdapter = {
    name: "my-oms",
    createOrder: (order) => Promise.reject(new Error(`the card ${order.payment?.["paymentToken"] ?? ""} of ${order.customer.email} was declined`)),
  };
  before(async () => {
    t = await startService(kind, { platform });
  });
  after(async () => {
    await t.stop();
  });

  it("is answered 503 in our words; the log has its text with the token scrubbed (the email kept: LOG_REDACT_EMAIL is off)", async () => {
    const from = t.logs.length;
    const res = await t.callback(paidOrder("plugin-throws"));
    assert.equal(res.status, 503);
    assertAnswerClean(res.text);
    assert.match(res.body.errorMessage, /the my-oms platform failed \(its adapter threw Error\)/);
    const lines = t.logs.slice(from);
    assert.equal(
      lines.find((l) => l.includes(TOKEN)),
      undefined,
      "no log line holds the token",
    );
    assert.ok(lines.some((l) => l.includes(`the card [redacted] of ${EMAIL} was declined`)));
  });
});
