import { applyRate } from "../../money.js";
import { ERROR_CLASS_PLATFORM, type LineResult, type NormalizedLine, type NormalizedOrder } from "../../orders/types.js";
import type { Catalog, Product, ShippingMethod } from "./catalog.js";

export interface AcceptedLine {
  line: NormalizedLine;
  product: Product;
  requiresShipping: boolean;
  unitPrice: number;
}

export type LineCheck = { ok: true; accepted: AcceptedLine } | { ok: false; failure: Extract<LineResult, { ok: false }> };

export interface PricedLine extends AcceptedLine {
  subtotal: number;
  shippingTotal: number;
  taxTotal: number;
  lineTotal: number;
}

export interface PricedOrder {
  lines: PricedLine[];
  subtotal: number;
  shippingTotal: number;
  taxTotal: number;
  discountTotal: number;
  total: number;
}

/** The shipping method an order uses: its code, or "default" when it names none. */
export function shippingMethodFor(order: NormalizedOrder, catalog: Catalog): ShippingMethod | undefined {
  return catalog.shippingMethods.get(order.shippingMethodCode ?? "default");
}

/** Everything that can make a line fail before stock is touched. Pure. */
export function checkLine(order: NormalizedOrder, line: NormalizedLine, catalog: Catalog): LineCheck {
  const fail = (message: string): LineCheck => ({
    ok: false,
    failure: { ok: false, ref: line.ref, sku: line.sku, message, errorClass: ERROR_CLASS_PLATFORM },
  });
  const product = catalog.products.get(line.sku);
  if (product === undefined) return fail(`Product ${line.sku} was not found in the catalog`);
  if (!product.salable) return fail(`Product ${line.sku} is not salable`);
  if (order.currency !== catalog.currency) {
    return fail(`Currency ${order.currency} is not accepted: the catalog is priced in ${catalog.currency}`);
  }
  const requiresShipping = product.requiresShipping && line.requiresShipping !== false;
  if (requiresShipping) {
    // Shipping the source already charged needs no rate of ours.
    if (order.shippingLines === undefined && shippingMethodFor(order, catalog) === undefined) {
      return fail(
        order.shippingMethodCode === undefined
          ? `Product ${line.sku} needs shipping but the order names no shipping method and the catalog has no "default" one`
          : `Shipping method ${order.shippingMethodCode} is not available`,
      );
    }
    if (order.shippingAddress === undefined) return fail(`Product ${line.sku} needs shipping but the order has no shipping address`);
  }
  return { ok: true, accepted: { line, product, requiresShipping, unitPrice: line.fixedUnitPrice ?? product.price } };
}

/**
 * Prices the lines that will be ordered. Tax is the product's rate on the line subtotal; shipping is
 * the method's perLine + perUnit × qty for each line that needs it, plus perOrder on the first one;
 * a line total includes its shipping and tax (as in Subscribe Pro's examples). Integer minor units.
 */
export function priceOrder(order: NormalizedOrder, accepted: readonly AcceptedLine[], catalog: Catalog): PricedOrder {
  // Charged shipping (the source priced it) goes on the first line that ships, or the first line.
  const charged = order.shippingLines?.reduce((s, l) => s + l.price, 0);
  const chargedOn = charged === undefined ? -1 : Math.max(0, accepted.findIndex((a) => a.requiresShipping));
  const method = charged === undefined ? shippingMethodFor(order, catalog) : undefined;
  let perOrderPending = method !== undefined && method.perOrder > 0;
  const lines = accepted.map((a, i): PricedLine => {
    const subtotal = a.unitPrice * a.line.quantity;
    let shippingTotal = 0;
    if (charged !== undefined) {
      if (i === chargedOn) shippingTotal = charged;
    } else if (a.requiresShipping && method !== undefined) {
      shippingTotal = method.perLine + method.perUnit * a.line.quantity;
      if (perOrderPending) {
        shippingTotal += method.perOrder;
        perOrderPending = false;
      }
    }
    const taxTotal = a.line.fixedTaxTotal ?? applyRate(subtotal, a.product.taxRatePpm);
    return { ...a, subtotal, shippingTotal, taxTotal, lineTotal: subtotal + shippingTotal + taxTotal };
  });
  const sum = (f: (l: PricedLine) => number): number => lines.reduce((s, l) => s + f(l), 0);
  const discountTotal = (order.discounts ?? []).reduce((s, d) => s + d.amount, 0);
  return {
    lines,
    subtotal: sum((l) => l.subtotal),
    shippingTotal: sum((l) => l.shippingTotal),
    taxTotal: sum((l) => l.taxTotal),
    discountTotal,
    total: sum((l) => l.lineTotal) - discountTotal,
  };
}
