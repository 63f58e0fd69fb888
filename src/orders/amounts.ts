/**
 * An order's totals, pure. Each part (a line's subtotal and tax, a shipping line's price and tax, a
 * discount) is rounded once to the currency's minor unit; the totals are the sums of the parts,
 * except where the source charged totals of its own (Recharge): those are what the customer paid,
 * so they are recorded instead, and every place where they and the parts disagree is kept as an
 * AmountDifference, never dropped.
 */
import { formatMinor, multiplyAmount, roundAmount } from "../money.js";
import { AMOUNT_FIELDS, type AmountField, type NormalizedOrder } from "./types.js";

export type OrderTotals = Record<AmountField, number>;
export type OrderParts = Omit<OrderTotals, "total">;

export interface AmountDifference {
  field: AmountField;
  /**
   * What the order's own parts say, in minor units: for subtotal, shippingTotal, taxTotal and
   * discountTotal the sum of the lines (items, shipping lines, discounts); for total the recorded
   * subtotal + shippingTotal + taxTotal − discountTotal.
   */
  computed: number;
  /** What the order records: the source's own figure. */
  recorded: number;
  /** recorded − computed. */
  difference: number;
}

export interface SettledTotals {
  totals: OrderTotals;
  /** Only the fields that disagree; empty when the source's totals and its lines agree. */
  differences: AmountDifference[];
}

/**
 * The totals to record: the source's charged totals where it gave them (rounded once), else the
 * parts. So recorded parts + differences always add up to the recorded totals.
 */
export function settleTotals(parts: OrderParts, charged: NormalizedOrder["charged"], exponent: number): SettledTotals {
  const differences: AmountDifference[] = [];
  const pick = (field: AmountField, computed: number): number => {
    const source = charged?.[field];
    const recorded = source === undefined ? computed : roundAmount(source, exponent);
    if (recorded !== computed) differences.push({ field, computed, recorded, difference: recorded - computed });
    return recorded;
  };
  const subtotal = pick("subtotal", parts.subtotal);
  const shippingTotal = pick("shippingTotal", parts.shippingTotal);
  const taxTotal = pick("taxTotal", parts.taxTotal);
  const discountTotal = pick("discountTotal", parts.discountTotal);
  const total = pick("total", subtotal + shippingTotal + taxTotal - discountTotal);
  differences.sort((a, b) => AMOUNT_FIELDS.indexOf(a.field) - AMOUNT_FIELDS.indexOf(b.field));
  return { totals: { subtotal, shippingTotal, taxTotal, discountTotal, total }, differences };
}

/**
 * The parts of an order whose every line carries the source's price and tax (a Recharge order),
 * each rounded once; undefined when a platform must price some of it itself.
 */
export function fixedParts(order: NormalizedOrder, exponent: number): OrderParts | undefined {
  if (!order.lines.every((l) => l.fixedUnitPrice !== undefined && l.fixedTaxTotal !== undefined)) return undefined;
  const round = (a: string): number => roundAmount(a, exponent);
  const sum = (ns: number[]): number => ns.reduce((s, n) => s + n, 0);
  const shipping = order.shippingLines ?? [];
  return {
    subtotal: sum(order.lines.map((l) => round(multiplyAmount(l.fixedUnitPrice as string, l.quantity)))),
    shippingTotal: sum(shipping.map((s) => round(s.price))),
    taxTotal: sum(order.lines.map((l) => round(l.fixedTaxTotal as string))) + sum(shipping.map((s) => round(s.taxTotal ?? "0"))),
    discountTotal: sum((order.discounts ?? []).map((d) => round(d.amount))),
  };
}

/**
 * For a platform outside our database, given the order alone: what it should record when the
 * source charged totals of its own (those totals, the parts for what it left out), and where the
 * lines disagree, by how much. Undefined when the source charged none (the platform prices the
 * order), or when some line's price or tax is the platform's to find.
 */
export function settleCharged(order: NormalizedOrder, exponent: number): SettledTotals | undefined {
  if (order.charged === undefined) return undefined;
  const parts = fixedParts(order, exponent);
  return parts === undefined ? undefined : settleTotals(parts, order.charged, exponent);
}

/** Differences as they are stored and sent: decimal text in the currency's unit. */
export function differencesAsText(differences: readonly AmountDifference[], exponent: number): Record<string, string>[] {
  const m = (n: number): string => formatMinor(n, exponent);
  return differences.map((d) => ({ field: d.field, computed: m(d.computed), recorded: m(d.recorded), difference: m(d.difference) }));
}
