import { applyRateToAmount, currencyExponent, minorToAmount, multiplyAmount, roundAmount, type Amount } from "../../money.js";
import { settleTotals, type AmountDifference, type OrderTotals } from "../../orders/amounts.js";
import { ERROR_CLASS_PLATFORM, type LineResult, type NormalizedLine, type NormalizedOrder } from "../../orders/types.js";
import type { Catalog, Product, ShippingMethod } from "./catalog.js";

export interface AcceptedLine {
  line: NormalizedLine;
  product: Product;
  requiresShipping: boolean;
  /** Exact: the source's fixed price, or the catalog's. */
  unitPrice: Amount;
}

export type LineCheck = { ok: true; accepted: AcceptedLine } | { ok: false; failure: Extract<LineResult, { ok: false }> };

/** A line's amounts in minor units, each rounded once. */
export interface PricedLine extends AcceptedLine {
  unitPriceMinor: number;
  subtotal: number;
  shippingTotal: number;
  taxTotal: number;
  lineTotal: number;
}

/** The shipping the source charged, in minor units (price and tax each rounded once). */
export interface PricedShippingLine {
  code: string;
  title?: string;
  price: number;
  taxTotal: number;
}

export interface PricedOrder extends OrderTotals {
  lines: PricedLine[];
  shippingLines: PricedShippingLine[] | undefined;
  discounts: { code?: string; amount: number }[];
  /** Where the source's charged totals and the lines disagree (the totals are recorded). */
  differences: AmountDifference[];
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
  const unitPrice = line.fixedUnitPrice ?? minorToAmount(product.price, currencyExponent(catalog.currency));
  return { ok: true, accepted: { line, product, requiresShipping, unitPrice } };
}

/**
 * Prices the lines that will be ordered. A line's subtotal is its exact unit price × qty; its tax the
 * source's, or the product's rate on that exact subtotal; each rounded once. Shipping is what the
 * source charged (on the first line that ships), or the method's perLine + perUnit × qty for each
 * line that needs it, plus perOrder on the first one; a line total includes its shipping and tax (as
 * in Subscribe Pro's examples). The order's totals add the parts up, unless the source charged
 * totals of its own: those win, and the differences are returned (settleTotals).
 */
export function priceOrder(order: NormalizedOrder, accepted: readonly AcceptedLine[], catalog: Catalog): PricedOrder {
  const exp = currencyExponent(catalog.currency);
  const round = (a: Amount): number => roundAmount(a, exp);
  const shippingLines = order.shippingLines?.map((s): PricedShippingLine => ({
    code: s.code,
    ...(s.title === undefined ? {} : { title: s.title }),
    price: round(s.price),
    taxTotal: round(s.taxTotal ?? "0"),
  }));
  // Charged shipping (the source priced it) goes on the first line that ships, or the first line.
  const charged = shippingLines?.reduce((s, l) => s + l.price, 0);
  const chargedOn =
    charged === undefined
      ? -1
      : Math.max(
          0,
          accepted.findIndex((a) => a.requiresShipping),
        );
  const method = charged === undefined ? shippingMethodFor(order, catalog) : undefined;
  let perOrderPending = method !== undefined && method.perOrder > 0;
  const lines = accepted.map((a, i): PricedLine => {
    const exactSubtotal = multiplyAmount(a.unitPrice, a.line.quantity);
    const subtotal = round(exactSubtotal);
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
    const taxTotal = round(a.line.fixedTaxTotal ?? applyRateToAmount(exactSubtotal, a.product.taxRatePpm));
    return { ...a, unitPriceMinor: round(a.unitPrice), subtotal, shippingTotal, taxTotal, lineTotal: subtotal + shippingTotal + taxTotal };
  });
  const sum = (ns: number[]): number => ns.reduce((s, n) => s + n, 0);
  const discounts = (order.discounts ?? []).map((d) => ({ ...(d.code === undefined ? {} : { code: d.code }), amount: round(d.amount) }));
  const { totals, differences } = settleTotals(
    {
      subtotal: sum(lines.map((l) => l.subtotal)),
      shippingTotal: sum(lines.map((l) => l.shippingTotal)),
      taxTotal: sum(lines.map((l) => l.taxTotal)) + sum((shippingLines ?? []).map((s) => s.taxTotal)),
      discountTotal: sum(discounts.map((d) => d.amount)),
    },
    order.charged,
    exp,
  );
  return { lines, shippingLines, discounts, differences, ...totals };
}
