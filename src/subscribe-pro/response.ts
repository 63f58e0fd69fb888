import { currencyExponent, formatAmount, formatMinor, parseAmount, roundAmount } from "../money.js";
import { ERROR_CLASS_PLATFORM, type LineResult, type PlatformOrderResult } from "../orders/types.js";
import { subscriptionIdOf } from "./map-request.js";
import type { SpCallbackRequest, SpErrorItem } from "./types.js";

export interface SpResponse {
  status: 201 | 202 | 409;
  body: Record<string, unknown>;
}

/** Message for a line that could have been ordered but was not, because another line failed. */
export const NOT_ORDERED_WITHOUT_PARTIAL = "Not ordered: another item of this order failed and allowSomeFailedItems is false";

/**
 * The decision rule of shared/spec §4: an order was placed and nothing failed → 201; placed with
 * failures → 202; nothing placed → 409 (every item listed in errorItems).
 */
export function decideStatus(orderPlaced: boolean, failedCount: number): 201 | 202 | 409 {
  if (!orderPlaced) return 409;
  return failedCount === 0 ? 201 : 202;
}

/**
 * Builds the callback response from the request and the outcome of every line (`lines` holds one
 * result per request item, by ref = item index).
 */
export function buildSpResponse(req: SpCallbackRequest, lines: ReadonlyMap<string, LineResult>, result: Pick<PlatformOrderResult, "order"> | null): SpResponse {
  const order = result?.order ?? null;
  const currency = req.currency.toUpperCase();
  const exp = currencyExponent(currency);
  const money = (minor: number): string => formatMinor(minor, exp, Math.max(4, exp));
  // A fixed price the platform honoured (its unit price is the fixed one, rounded) is answered as
  // sent: 8.3350 × 3 = 25.01 adds up where 8.3400 × 3 would not.
  const unitPrice = (item: SpCallbackRequest["items"][number], minor: number): string => {
    const fixed = item.useFixedPrice === true && item.fixedPrice !== null && item.fixedPrice !== undefined ? parseAmount(item.fixedPrice) : undefined;
    return fixed !== undefined && roundAmount(fixed, exp) === minor ? formatAmount(fixed, Math.max(4, exp)) : money(minor);
  };

  const errorItems: SpErrorItem[] = [];
  const orderedItems: Record<string, unknown>[] = [];
  req.items.forEach((item, i) => {
    // An item without a subscription is answered without subscriptionId (there is none to echo).
    const subscriptionId = subscriptionIdOf(item);
    const sub = subscriptionId === undefined ? {} : { subscriptionId };
    const line = lines.get(String(i));
    if (line === undefined) {
      errorItems.push({ ...sub, errorMessage: "The platform reported nothing for this item", errorClass: "Technology" });
    } else if (!line.ok) {
      errorItems.push({ ...sub, errorMessage: line.message, errorClass: line.errorClass });
    } else if (order === null) {
      errorItems.push({ ...sub, errorMessage: NOT_ORDERED_WITHOUT_PARTIAL, errorClass: ERROR_CLASS_PLATFORM });
    } else {
      const out: Record<string, unknown> = {
        platformOrderItemId: line.platformItemId,
        productSku: line.sku,
        productName: line.name,
      };
      if (typeof item.shortDescription === "string") out["shortDescription"] = item.shortDescription;
      Object.assign(out, {
        qty: String(line.quantity),
        requiresShipping: line.requiresShipping,
        unitPrice: unitPrice(item, line.unitPrice),
        ...(line.discountTotal !== 0 ? { discountTotal: money(line.discountTotal) } : {}),
        shippingTotal: money(line.shippingTotal),
        taxTotal: money(line.taxTotal),
        lineTotal: money(line.lineTotal),
        ...sub,
      });
      orderedItems.push(out);
    }
  });

  if (order === null || orderedItems.length === 0) {
    return { status: 409, body: { orderNumber: null, orderDetails: null, errorItems } };
  }
  const details: Record<string, unknown> = {
    customerId: String(req.customerId),
    customerEmail: req.customerEmail,
    platformCustomerId: req.platformCustomerId === null ? "" : String(req.platformCustomerId),
    platformOrderId: order.platformOrderId,
    orderNumber: order.orderNumber,
  };
  if (typeof req.salesOrderToken === "string") details["salesOrderToken"] = req.salesOrderToken;
  Object.assign(details, {
    orderStatus: order.status,
    orderState: order.state,
    orderDateTime: order.createdAt,
    currency,
    ...(order.discountTotal !== 0 ? { discountTotal: money(order.discountTotal) } : {}),
    shippingTotal: money(order.shippingTotal),
    taxTotal: money(order.taxTotal),
    total: money(order.total),
  });
  const billing = echoAddress(req.billingAddress);
  if (billing !== undefined) details["billingAddress"] = billing;
  const shipping = echoAddress(req.shippingAddress);
  if (shipping !== undefined) details["shippingAddress"] = shipping;
  details["items"] = orderedItems;
  return {
    status: decideStatus(true, errorItems.length),
    body: { orderNumber: order.orderNumber, orderDetails: details, errorItems },
  };
}

function echoAddress(a: SpCallbackRequest["billingAddress"]): Record<string, string> | undefined {
  if (a === null || a === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a)) {
    if ((typeof v === "string" && v !== "") || typeof v === "number") out[k] = String(v);
  }
  return out;
}
