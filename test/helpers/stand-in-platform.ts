import { PlatformError } from "../../src/errors.js";
import type { CreateOrderContext, NormalizedOrder, PlatformAdapter, PlatformOrderResult } from "../../src/orders/types.js";

/**
 * A remote platform stand-in behind the PlatformAdapter port: it can be up, down, hang until the
 * caller's deadline, or answer without line results. Idempotent per key, as the contract demands.
 */
export class StandInPlatform implements PlatformAdapter {
  readonly name = "stand-in";
  mode: "up" | "down" | "hang" | "broken" = "up";
  calls = 0;
  readonly placed = new Map<string, PlatformOrderResult>();

  async createOrder(order: NormalizedOrder, ctx: CreateOrderContext): Promise<PlatformOrderResult> {
    this.calls++;
    switch (this.mode) {
      case "down":
        // Refused at connect: the request never reached the platform, which the adapter says.
        throw new PlatformError("connect ECONNREFUSED 127.0.0.1:9 (stand-in platform is down)", true, { notPlaced: true });
      case "hang":
        return new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(new Error("aborted by the caller"))));
      case "broken":
        return { order: null, lines: [], replayed: false };
      case "up":
        break;
    }
    const earlier = this.placed.get(ctx.idempotencyKey);
    if (earlier !== undefined) return { ...earlier, replayed: true };
    const n = this.placed.size + 1;
    const result: PlatformOrderResult = {
      order: {
        platformOrderId: `ext-${n}`,
        orderNumber: `EXT-${n}`,
        createdAt: "2024-05-01T14:05:09Z",
        currency: order.currency,
        status: "placed",
        state: "open",
        subtotal: 100,
        shippingTotal: 0,
        taxTotal: 0,
        discountTotal: 0,
        total: 100 * order.lines.length,
      },
      lines: order.lines.map((l, i) => ({
        ok: true,
        ref: l.ref,
        platformItemId: `ext-${n}-${i}`,
        sku: l.sku,
        name: l.sku,
        quantity: l.quantity,
        requiresShipping: true,
        unitPrice: 100,
        shippingTotal: 0,
        taxTotal: 0,
        discountTotal: 0,
        lineTotal: 100,
      })),
      replayed: false,
    };
    this.placed.set(ctx.idempotencyKey, result);
    return result;
  }
}
