import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PlatformError } from "../../src/errors.js";
import { createLogger } from "../../src/logger.js";
import { checkResult, placeWithDeadline } from "../../src/orders/place.js";
import type { LineResult, NormalizedOrder, PlatformAdapter, PlatformOrderResult } from "../../src/orders/types.js";
import { mapSpRequest } from "../../src/subscribe-pro/map-request.js";
import type { SpCallbackRequest } from "../../src/subscribe-pro/types.js";

const log = createLogger({ level: "error", format: "json", silent: true });

const order: NormalizedOrder = {
  source: "subscribe-pro",
  sourceOrderId: "t-1",
  allowPartial: false,
  currency: "USD",
  customer: { email: "a@example.com" },
  couponCodes: [],
  lines: ["0", "1"].map((ref) => ({ ref, sku: `SKU-${ref}`, quantity: 1 })) as NormalizedOrder["lines"],
};
const placed = { platformOrderId: "9", orderNumber: "X-9", createdAt: "2026-01-01T00:00:00Z" } as unknown as NonNullable<PlatformOrderResult["order"]>;
const ok = (ref: string): LineResult => ({ ok: true, ref, sku: `SKU-${ref}`, platformOrderItemId: `i${ref}` }) as unknown as LineResult;
const failed = (ref: string): LineResult => ({ ok: false, ref, sku: `SKU-${ref}`, message: "nope", errorClass: "Platform" }) as LineResult;
const result = (o: PlatformOrderResult["order"], lines: LineResult[]): PlatformOrderResult => ({ order: o, lines, replayed: false });

describe("a platform's answer is checked before it becomes the callback's answer", () => {
  it("accepts an order with its lines, a partial order, and nothing ordered with a reason", () => {
    checkResult(order, result(placed, [ok("0"), ok("1")]));
    checkResult(order, result(placed, [ok("0"), failed("1")]));
    checkResult(order, result(null, [ok("0"), failed("1")]));
    checkResult(order, result(null, [failed("0"), failed("1")]));
  });

  it("refuses contradictions as a platform error (503), never as an order or a made-up reason", () => {
    const cases: [string, PlatformOrderResult, RegExp][] = [
      ["an order with every line failed", result(placed, [failed("0"), failed("1")]), /returned an order but reported every line failed/],
      ["every line ordered but no order", result(null, [ok("0"), ok("1")]), /every line ordered but returned no order/],
      ["a line twice", result(placed, [ok("0"), ok("0"), ok("1")]), /line "0" more than once/],
      ["a line not sent", result(placed, [ok("0"), ok("1"), ok("9")]), /line "9", which was not sent/],
      ["a line missing", result(placed, [ok("0")]), /no result for 1 line/],
    ];
    for (const [name, r, message] of cases) {
      assert.throws(
        () => checkResult(order, r),
        (e: unknown) => e instanceof PlatformError && e.httpStatus === 503 && message.test(e.message),
        name,
      );
    }
  });

  it("an adapter's own exception (a failed fetch, a bug) is a retryable platform error, not a 500", async () => {
    const adapter: PlatformAdapter = {
      name: "my-module",
      createOrder: () => Promise.reject(new TypeError("fetch failed")),
    };
    await assert.rejects(
      placeWithDeadline(adapter, order, { idempotencyKey: "sp:t-1", deadlineMs: 1000, log }),
      (e: unknown) =>
        e instanceof PlatformError &&
        e.retryable &&
        e.httpStatus === 503 &&
        /my-module platform failed \(its adapter threw TypeError\)/.test(e.message) &&
        e.detail === "fetch failed",
    );
  });

  it("an adapter's exception text is log-only and scrubbed of the order's payment values (and the email when asked), never its message", async () => {
    const paid: NormalizedOrder = { ...order, payment: { paymentToken: "pm_live_5xY7", creditcard: '{"token":"cc_9f8e7d"}' } };
    const adapter: PlatformAdapter = {
      name: "my-module",
      createOrder: (o) => Promise.reject(new Error(`card ${o.payment?.["paymentToken"]} (cc_9f8e7d) of ${o.customer.email} was declined`)),
    };
    await assert.rejects(placeWithDeadline(adapter, paid, { idempotencyKey: "sp:t-2", deadlineMs: 1000, log, redactEmail: true }), (e: unknown) => {
      assert.ok(e instanceof PlatformError);
      assert.doesNotMatch(e.message, /pm_live|cc_9f8e7d|a@example\.com|declined/);
      assert.equal(e.detail, "card [redacted] ([redacted]) of [redacted] was declined");
      assert.equal(e.cause, undefined, "no unscrubbed cause for a log line to print");
      return true;
    });
    // A PlatformError the module built itself is scrubbed too, message and detail.
    const own: PlatformAdapter = {
      name: "my-module",
      createOrder: (o) => Promise.reject(new PlatformError(`token ${o.payment?.["paymentToken"]} refused`, false, { detail: `said pm_live_5xY7` })),
    };
    await assert.rejects(placeWithDeadline(own, paid, { idempotencyKey: "sp:t-3", deadlineMs: 1000, log }), (e: unknown) => {
      assert.ok(e instanceof PlatformError && !e.retryable);
      assert.equal(e.message, "token [redacted] refused");
      assert.equal(e.detail, "said [redacted]");
      return true;
    });
  });

  it("a failed line's reason from a remote platform is scrubbed before it is answered", async () => {
    const paid: NormalizedOrder = { ...order, payment: { paymentToken: "pm_live_5xY7" } };
    const adapter: PlatformAdapter = {
      name: "remote",
      createOrder: async () => result(null, [ok("0"), { ...(failed("1") as Extract<LineResult, { ok: false }>), message: "pm_live_5xY7 declined" }]),
    };
    const r = await placeWithDeadline(adapter, paid, { idempotencyKey: "sp:t-4", deadlineMs: 1000, log });
    assert.deepEqual(
      r.lines.map((l) => (l.ok ? "ok" : l.message)),
      ["ok", "[redacted] declined"],
    );
  });
});

describe("Subscribe Pro payment fields", () => {
  it("keep unknown nested values as JSON text, never [object Object]", () => {
    const req = {
      customerEmail: "a@example.com",
      currency: "USD",
      payment: { paymentToken: "tok", paymentProfileId: 12, billingAddress: { city: "X" }, empty: null },
      items: [{ productSku: "A", qty: 1, subscription: { id: "s" } }],
    } as unknown as SpCallbackRequest;
    const { order: mapped } = mapSpRequest(req);
    assert.deepEqual(mapped.payment, { paymentToken: "tok", paymentProfileId: "12", billingAddress: '{"city":"X"}' });
  });
});
