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
const result = (o: PlatformOrderResult["order"], lines: LineResult[]): PlatformOrderResult => ({ order: o, lines, replayed: false, ranAtomically: false });

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
      assert.throws(() => checkResult(order, r), (e: unknown) => e instanceof PlatformError && e.httpStatus === 503 && message.test(e.message), name);
    }
  });

  it("an adapter's own exception (a failed fetch, a bug) is a retryable platform error, not a 500", async () => {
    const adapter: PlatformAdapter = {
      name: "my-module",
      createOrder: () => Promise.reject(new TypeError("fetch failed")),
    };
    await assert.rejects(
      placeWithDeadline(adapter, order, { idempotencyKey: "sp:t-1", deadlineMs: 1000, log }),
      (e: unknown) => e instanceof PlatformError && e.retryable && e.httpStatus === 503 && /my-module platform failed: fetch failed/.test(e.message),
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
