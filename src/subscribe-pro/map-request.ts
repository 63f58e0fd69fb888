import { currencyExponent, isNegativeAmount, parseAmount, parseDecimal } from "../money.js";
import { ERROR_CLASS_PLATFORM, type Address, type LineResult, type NormalizedLine, type NormalizedOrder } from "../orders/types.js";
import type { SpAddress, SpCallbackRequest, SpItem } from "./types.js";

export const MAX_QUANTITY = 100_000;

export interface MappedSpRequest {
  order: NormalizedOrder;
  /** Lines refused before reaching the platform (bad quantity or fixed price), by ref. */
  invalid: Map<string, Extract<LineResult, { ok: false }>>;
}

const str = (v: string | number | null | undefined): string | undefined => (v === null || v === undefined ? undefined : String(v));

function mapAddress(a: SpAddress | null | undefined): Address | undefined {
  if (a === null || a === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const key of ["firstName", "lastName", "company", "street1", "street2", "street3", "city", "region", "postcode", "country", "countryName", "phone"] as const) {
    const v = str(a[key]);
    if (v !== undefined) out[key] = v;
  }
  return out as Address;
}

/**
 * The request's salesOrderToken as an idempotency key: absent, null and "" all mean none (PHP
 * senders write "" for an unset string), and the raw body's hash keys the request instead. An
 * empty token must not become a key of its own: every token-less order would then share it.
 */
export function salesOrderToken(req: Pick<SpCallbackRequest, "salesOrderToken">): string | undefined {
  return typeof req.salesOrderToken === "string" && req.salesOrderToken !== "" ? req.salesOrderToken : undefined;
}

/** The item's subscription id, when it has a subscription (it is optional). */
export function subscriptionIdOf(item: SpItem): string | undefined {
  return item.subscription === null || item.subscription === undefined ? undefined : String(item.subscription.id);
}

/** "4", 4, "4.0000" → 4; anything else (0, -1, 1.5, "abc", too large) → undefined. */
export function parseQuantity(q: string | number): number | undefined {
  const text = typeof q === "number" ? (Number.isFinite(q) ? String(q) : "") : q.trim();
  if (!/^\d+(\.0*)?$/.test(text)) return undefined;
  const n = Number.parseInt(text, 10);
  return n >= 1 && n <= MAX_QUANTITY ? n : undefined;
}

/**
 * Subscribe Pro request → normalised order. Each item's ref is its position ("0", "1", …), so two
 * items for the same subscription stay distinct.
 */
export function mapSpRequest(req: SpCallbackRequest): MappedSpRequest {
  const currency = req.currency.toUpperCase();
  const exponent = currencyExponent(currency);
  const invalid: MappedSpRequest["invalid"] = new Map();
  const lines: NormalizedLine[] = [];

  req.items.forEach((item, i) => {
    const ref = String(i);
    const fail = (message: string): void => {
      invalid.set(ref, { ok: false, ref, sku: item.productSku, message, errorClass: ERROR_CLASS_PLATFORM });
    };
    const quantity = parseQuantity(item.qty);
    if (quantity === undefined) {
      fail(`Quantity ${JSON.stringify(item.qty)} of product ${item.productSku} is not a whole number from 1 to ${MAX_QUANTITY}`);
      return;
    }
    const line: NormalizedLine = { ref, sku: item.productSku, quantity };
    const subscriptionId = subscriptionIdOf(item);
    if (subscriptionId !== undefined) line.subscriptionId = subscriptionId;
    if (item.useFixedPrice === true) {
      // The unit price as sent, exactly: the line's subtotal is it × qty, rounded once (as SP's own
      // Magento module does: row total = round(price × qty)), so 3.3333 × 3 is 10.00, not 9.99.
      const price = item.fixedPrice === null || item.fixedPrice === undefined ? undefined : parseAmount(item.fixedPrice);
      if (price === undefined || isNegativeAmount(price) || parseDecimal(price, exponent) === undefined) {
        fail(`Fixed price ${JSON.stringify(item.fixedPrice ?? null)} of product ${item.productSku} is not a valid amount`);
        return;
      }
      line.fixedUnitPrice = price;
    }
    const description = str(item.shortDescription);
    if (description !== undefined) line.description = description;
    if (typeof item.requiresShipping === "boolean") line.requiresShipping = item.requiresShipping;
    lines.push(line);
  });

  const shippingMethodCode = str(req.shippingMethodCode) ?? (req.shippingMethodCodes ?? []).map((m) => str(m.method_code)).find((c) => c !== undefined && c !== "");
  const payment: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.payment as Record<string, unknown>)) {
    if (v === null || v === undefined) continue;
    // Unknown properties are kept: a nested value travels as its JSON text, never "[object Object]".
    payment[k] = typeof v === "object" ? JSON.stringify(v) : String(v);
  }
  const order: NormalizedOrder = {
    source: "subscribe-pro",
    sourceOrderId: salesOrderToken(req),
    allowPartial: req.allowSomeFailedItems === true,
    currency,
    customer: {
      email: req.customerEmail,
      sourceCustomerId: String(req.customerId),
      ...(str(req.platformCustomerId) === undefined ? {} : { platformCustomerId: String(req.platformCustomerId) }),
    },
    couponCodes: (req.couponCodes ?? []).filter((c): c is string => typeof c === "string" && c.trim() !== ""),
    payment,
    lines,
  };
  const billing = mapAddress(req.billingAddress);
  if (billing !== undefined) order.billingAddress = billing;
  const shipping = mapAddress(req.shippingAddress);
  if (shipping !== undefined) order.shippingAddress = shipping;
  if (shippingMethodCode !== undefined && shippingMethodCode !== "") order.shippingMethodCode = shippingMethodCode;
  return { order, invalid };
}
