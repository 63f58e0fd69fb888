/**
 * Glossary
 * - source: the subscription platform an order comes from (Subscribe Pro, Recharge).
 * - normalised order: the source-independent order we hand to a platform (NormalizedOrder).
 * - platform: the merchant's commerce system that really holds orders (the built-in `local` store,
 *   later remote ones), reached through a PlatformAdapter.
 * - idempotency key: the value that makes a request "the same order" (Subscribe Pro's
 *   salesOrderToken, or a hash of the raw body). Retries with the same key never create a second order.
 * - line: one item of an order; each line succeeds (platform item id) or fails (reason, error class).
 */
import type { Logger } from "../logger.js";
import type { Scrub } from "../security/scrub.js";
import type { Amount } from "../money.js";

export type { Amount } from "../money.js";

export interface Address {
  firstName?: string;
  lastName?: string;
  company?: string;
  street1?: string;
  street2?: string;
  street3?: string;
  city?: string;
  region?: string;
  postcode?: string;
  country?: string;
  countryName?: string;
  phone?: string;
}

export interface NormalizedLine {
  /** Stable reference of the line within the source order (SP: the subscription id). */
  ref: string;
  sku: string;
  /** A positive whole number (checked before the order reaches a platform). */
  quantity: number;
  description?: string;
  /** What the source says; the platform's catalog may know better. */
  requiresShipping?: boolean;
  /**
   * A price the source fixed for one unit, exact (it may have more decimals than the currency): the
   * line's subtotal is it × quantity, rounded once.
   */
  fixedUnitPrice?: Amount;
  /** Tax the source already charged for the whole line, exact: kept instead of the platform's own. */
  fixedTaxTotal?: Amount;
  /** The source's breakdown of that tax (state, county, …), for platforms that keep tax lines. */
  taxLines?: TaxLine[];
  subscriptionId?: string;
  /** Line properties the source carries (Recharge `properties`: engraving, grind, …). */
  properties?: NameValue[];
}

export interface NameValue {
  name: string;
  value: string;
}

/** One tax of a line's or shipping line's tax, as the source itemised it (exact). */
export interface TaxLine {
  title: string;
  /** A fraction ("0.0725"), when the source gave one. */
  rate?: Amount;
  price: Amount;
}

/** A shipping line the source already priced and charged. */
export interface ChargedShippingLine {
  code: string;
  title?: string;
  /** Exact, in the order currency. */
  price: Amount;
  /** The tax charged on this shipping, exact (the sum of its tax lines); absent when none was. */
  taxTotal?: Amount;
  taxLines?: TaxLine[];
}

/** The order amounts every platform records, in this order. */
export const AMOUNT_FIELDS = ["subtotal", "shippingTotal", "taxTotal", "discountTotal", "total"] as const;
export type AmountField = (typeof AMOUNT_FIELDS)[number];

export interface NormalizedOrder {
  source: "subscribe-pro" | "recharge";
  /** The source's own id for this order (SP salesOrderToken when present). */
  sourceOrderId: string | undefined;
  /** Place the order with the lines that succeeded when others fail (SP allowSomeFailedItems). */
  allowPartial: boolean;
  /** Upper-case ISO-4217 code. */
  currency: string;
  customer: { email: string; sourceCustomerId?: string; platformCustomerId?: string };
  billingAddress?: Address;
  shippingAddress?: Address;
  shippingMethodCode?: string;
  couponCodes: string[];
  /**
   * Payment reference, passed to the platform so it can charge. Holds tokens: never log it.
   */
  payment?: Record<string, string>;
  lines: NormalizedLine[];
  /**
   * Shipping the source already charged (Recharge). When present, the customer has paid: a platform
   * records these amounts instead of pricing shipping from its own rates.
   */
  shippingLines?: ChargedShippingLine[];
  /** Discounts the source already applied, as amounts (exact), never as percentages. */
  discounts?: { code?: string; amount: Amount }[];
  /**
   * The order totals the source charged (Recharge's subtotal_price, total_tax, total_discounts,
   * total_price), exact. They are what the customer paid, so they win over what the lines add up
   * to; the platform records them and keeps the difference (src/orders/amounts.ts).
   */
  charged?: Partial<Record<AmountField, Amount>>;
  note?: string;
  tags?: string;
  /** Order attributes (Recharge `order_attributes` / `note_attributes`). */
  attributes?: NameValue[];
}

export type LineResult =
  | {
      ok: true;
      ref: string;
      platformItemId: string;
      sku: string;
      name: string;
      quantity: number;
      requiresShipping: boolean;
      /** All amounts in minor units of the order currency. */
      unitPrice: number;
      shippingTotal: number;
      taxTotal: number;
      discountTotal: number;
      lineTotal: number;
    }
  | { ok: false; ref: string; sku: string; message: string; errorClass: string };

export interface PlacedOrder {
  platformOrderId: string;
  /** The platform's global id, where it has one besides the numeric id (Shopify: gid://shopify/Order/…). */
  globalId?: string;
  orderNumber: string;
  /** ISO-8601 UTC, seconds precision. */
  createdAt: string;
  currency: string;
  status: string;
  state: string;
  subtotal: number;
  shippingTotal: number;
  taxTotal: number;
  discountTotal: number;
  total: number;
}

/**
 * What a platform did with an order. `order` is null when nothing was placed; `lines` has one entry
 * per line sent, in the same order. Lines may be ok while `order` is null: they could have been
 * ordered, but another line failed and the order did not allow partial placement.
 */
export interface PlatformOrderResult {
  order: PlacedOrder | null;
  lines: LineResult[];
  /** True when this call found an order placed earlier under the same idempotency key. */
  replayed: boolean;
}

export interface CreateOrderContext {
  /** Same value on every retry of the same order: an adapter must never place two orders for it. */
  idempotencyKey: string;
  /** Aborted when the caller's deadline passes. */
  signal: AbortSignal;
  log: Logger;
  /**
   * Removes this order's sensitive values (payment tokens and ids, the email when LOG_REDACT_EMAIL
   * is on) from a text. Apply it to anything the platform says before it goes into a
   * PlatformError's `detail` (add the adapter's own credentials with `scrub.with([...])`); the
   * message of a PlatformError is answered to the caller and carries none of the platform's words.
   */
  scrub: Scrub;
}

/**
 * A merchant's commerce platform. Implementations: `src/platforms/<name>/`. An adapter knows
 * nothing of orderbridge's database: what a source records with an order is the placement's
 * business (src/orders/placement.ts).
 *
 * Contract:
 * - createOrder places at most one order per `ctx.idempotencyKey`; a repeat returns the first result
 *   with `replayed: true`.
 * - A line that cannot be ordered is reported as a failed LineResult (never thrown).
 * - When `order.allowPartial` is false and any line fails, nothing is placed (`order: null`).
 * - Being unreachable, slow or answering nonsense throws a PlatformError (retryable when a retry
 *   may succeed); nothing may be half-placed in that case. Its message is our own words; the
 *   platform's go in its `detail`, through `ctx.scrub`.
 */
export interface PlatformAdapter {
  readonly name: string;
  createOrder(order: NormalizedOrder, ctx: CreateOrderContext): Promise<PlatformOrderResult>;
  /**
   * Optional: empties the storefront cart a checkout came from (Recharge `checkout/processed`).
   * Idempotent: clearing a cart twice is not an error. Platforms without carts leave it out.
   */
  clearCart?(cart: CartToClear, ctx: { signal: AbortSignal; log: Logger; scrub: Scrub }): Promise<void>;
  close?(): Promise<void>;
}

export interface CartToClear {
  cartId: string;
  source: NormalizedOrder["source"];
  customerEmail?: string;
}

export const ERROR_CLASS_PLATFORM = "e-commerce platform";
export const ERROR_CLASS_TECHNOLOGY = "Technology";
