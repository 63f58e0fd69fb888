import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PlatformError } from "../../src/errors.js";
import { createLogger } from "../../src/logger.js";
import { placeWithDeadline } from "../../src/orders/place.js";
import type { LineResult, NormalizedOrder, PlatformAdapter, PlatformOrderResult } from "../../src/orders/types.js";

/**
 * The contract every PlatformAdapter must keep (src/orders/types.ts), as tests. Run it against an
 * adapter with `runPlatformContract(name, makeHarness)`; see test/contract/adapters.test.ts and the
 * README ("Adding a platform").
 */
export interface ContractHarness {
  platform: PlatformAdapter;
  /** Two SKUs the platform sells (enough stock for a few orders), and one it does not know. */
  skus: { known: [string, string]; unknown: string };
  /** How many orders the platform really holds for this idempotency key (0 or 1 when it keeps its word). */
  ordersFor(idempotencyKey: string): Promise<number>;
  /** Fault injection, for remote adapters: the next call to the platform's server misbehaves. */
  faults?: {
    hangNext(): void;
    malformNext(): void;
    serverErrorNext(): void;
    /** The platform creates the order, then its answer is lost. */
    createThenHangNext(): void;
  };
  close(): Promise<void>;
}

const log = createLogger({ level: "error", format: "json", silent: true });
let counter = 0;

export function contractOrder(skus: string[], allowPartial = false): NormalizedOrder {
  counter++;
  return {
    source: "subscribe-pro",
    sourceOrderId: `contract-${counter}`,
    allowPartial,
    currency: "USD",
    customer: { email: "jane.doe@example.com", sourceCustomerId: "356001" },
    shippingAddress: { firstName: "Jane", lastName: "Doe", street1: "100 Main St", city: "Springfield", region: "IL", postcode: "62701", country: "US" },
    billingAddress: { firstName: "Jane", lastName: "Doe", city: "Springfield", country: "US" },
    shippingMethodCode: "ups_ground",
    couponCodes: [],
    lines: skus.map((sku, i) => ({ ref: String(i), sku, quantity: i + 1, fixedUnitPrice: `${10 + i}.00`, subscriptionId: `sub-${i}` })),
  };
}

const place = (p: PlatformAdapter, order: NormalizedOrder, key: string, deadlineMs = 5_000): Promise<PlatformOrderResult> =>
  placeWithDeadline(p, order, { idempotencyKey: key, deadlineMs, log });

const okLines = (r: PlatformOrderResult): Extract<LineResult, { ok: true }>[] => r.lines.filter((l): l is Extract<LineResult, { ok: true }> => l.ok);

/** `faults: true` when the harness injects faults (remote adapters); the fault cases are skipped otherwise. */
export function runPlatformContract(name: string, make: () => Promise<ContractHarness>, opts: { faults: boolean; skip?: string | false }): void {
  // Fault cases exist only for adapters with a server that can be made to misbehave.
  const faultCase = opts.faults ? it : (..._args: unknown[]): void => undefined;
  describe(`platform adapter contract: ${name}`, { skip: opts.skip ?? false }, () => {
    let h: ContractHarness;
    before(async () => {
      h = await make();
    });
    after(() => h.close());

    it("places an order: an order number, and every line ok with its own item id, in the order sent", async () => {
      const [a, b] = h.skus.known;
      const r = await place(h.platform, contractOrder([a, b]), `contract:${name}:place`);
      assert.ok(r.order !== null, "an order was placed");
      assert.ok(r.order.orderNumber.length > 0);
      assert.ok(r.order.platformOrderId.length > 0);
      assert.deepEqual(
        r.lines.map((l) => [l.ref, l.sku, l.ok]),
        [
          ["0", a, true],
          ["1", b, true],
        ],
      );
      const ids = okLines(r).map((l) => l.platformItemId);
      assert.ok(ids.every((id) => id !== ""));
      assert.equal(new Set(ids).size, 2);
      assert.equal(r.replayed, false);
      assert.equal(await h.ordersFor(`contract:${name}:place`), 1);
    });

    it("is idempotent: the same key again answers the first order and places nothing new", async () => {
      const order = contractOrder([h.skus.known[0]]);
      const key = `contract:${name}:again`;
      const first = await place(h.platform, order, key);
      const second = await place(h.platform, order, key);
      assert.equal(second.order?.orderNumber, first.order?.orderNumber);
      assert.deepEqual(
        okLines(second).map((l) => l.platformItemId),
        okLines(first).map((l) => l.platformItemId),
      );
      assert.equal(await h.ordersFor(key), 1);
    });

    it("reports an unknown SKU as a failed line with a reason; without allowPartial nothing is placed", async () => {
      const key = `contract:${name}:unknown`;
      const r = await place(h.platform, contractOrder([h.skus.known[0], h.skus.unknown]), key);
      assert.equal(r.order, null);
      const failed = r.lines.find((l) => l.ref === "1");
      assert.ok(failed !== undefined && !failed.ok);
      assert.ok(failed.message.length > 0);
      assert.equal(failed.errorClass, "e-commerce platform");
      assert.equal(r.lines.find((l) => l.ref === "0")?.ok, true, "the line that could be ordered is not blamed");
      assert.equal(await h.ordersFor(key), 0);
    });

    it("with allowPartial places the lines it can and reports the others", async () => {
      const key = `contract:${name}:partial`;
      const r = await place(h.platform, contractOrder([h.skus.unknown, h.skus.known[1]], true), key);
      assert.ok(r.order !== null);
      assert.equal(r.lines[0]?.ok, false);
      assert.equal(r.lines[1]?.ok, true);
      assert.equal(await h.ordersFor(key), 1);
    });

    faultCase("survives a timeout: a retryable PlatformError, no order, and the retry places exactly one", async () => {
      const key = `contract:${name}:timeout`;
      const order = contractOrder([h.skus.known[0]]);
      h.faults?.hangNext();
      await assert.rejects(place(h.platform, order, key, 400), (e: unknown) => e instanceof PlatformError && e.retryable);
      assert.equal(await h.ordersFor(key), 0);
      const r = await place(h.platform, order, key);
      assert.ok(r.order !== null);
      assert.equal(await h.ordersFor(key), 1);
    });

    faultCase("survives an answer lost after the order was created: the retry finds that order", async () => {
      const key = `contract:${name}:lost-answer`;
      const order = contractOrder([h.skus.known[1]]);
      h.faults?.createThenHangNext();
      await assert.rejects(place(h.platform, order, key, 400), PlatformError);
      assert.equal(await h.ordersFor(key), 1, "the platform did create it");
      const r = await place(h.platform, order, key);
      assert.ok(r.order !== null);
      assert.equal(await h.ordersFor(key), 1, "and no second one");
    });

    faultCase("survives a malformed answer: a PlatformError, never a crash", async () => {
      h.faults?.malformNext();
      await assert.rejects(place(h.platform, contractOrder([h.skus.known[0]]), `contract:${name}:malformed`), PlatformError);
    });

    faultCase("retries a server error within the deadline", async () => {
      const key = `contract:${name}:5xx`;
      h.faults?.serverErrorNext();
      const r = await place(h.platform, contractOrder([h.skus.known[0]]), key);
      assert.ok(r.order !== null);
      assert.equal(await h.ordersFor(key), 1);
    });
  });
}
