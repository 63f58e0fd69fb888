/**
 * Recharge orders, pure: which API version a payload is, what it says (both versions read into one
 * view), what to do with it, the normalised order it becomes, and the write-back bodies.
 * Facts and open questions: shared/spec/recharge-webhooks.md §6–§8.
 */
import { currencyExponent, parseDecimal } from "../money.js";
import type { Address, ChargedShippingLine, NameValue, NormalizedLine, NormalizedOrder } from "../orders/types.js";

export type RechargeApiVersion = "2021-01" | "2021-11";
export const RECHARGE_API_VERSIONS: readonly RechargeApiVersion[] = ["2021-01", "2021-11"];
export const ORDER_TOPICS = ["order/created", "order/processed", "order/updated"] as const;
export const HANDLED_TOPICS = [...ORDER_TOPICS, "checkout/processed"] as const;
export type HandledTopic = (typeof HANDLED_TOPICS)[number];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const text = (v: unknown): string | undefined =>
  typeof v === "string" ? (v.trim() === "" ? undefined : v) : typeof v === "number" && Number.isFinite(v) ? String(v) : undefined;
/** `external_order_id` and friends: a plain value (2021-01) or `{"ecommerce": …}` (2021-11). */
const ecommerce = (v: unknown): string | undefined => (isObj(v) ? text(v["ecommerce"]) : text(v));

/** "1"/1/true → true; "0"/0/false/null → false (2021-01 sends 0/1, 2021-11 booleans). */
const flag = (v: unknown): boolean => v === true || v === 1 || v === "1" || v === "true";

/**
 * The topic of a delivery that named none (one URL for every topic, and no `X-Recharge-Topic`),
 * from its body: Recharge wraps the resource in a key named after it (spec §7). An order becomes
 * `order/created`: decide() treats every order topic alike (only a successful order without an
 * external id is placed, once), so which order topic it was changes nothing; a queued, cancelled
 * or already-synced order is skipped by its status and ids as at its own URL. A checkout becomes
 * `checkout/processed`. Anything else (a charge, a subscription, …) is no handled topic: the reason.
 */
export function topicFromPayload(body: unknown): { topic: HandledTopic } | { topic: undefined; reason: string } {
  const why = "no topic in the URL or X-Recharge-Topic, and the payload";
  if (!isObj(body)) return { topic: undefined, reason: `${why} is not a JSON object` };
  if ("order" in body) return { topic: "order/created" };
  if ("checkout" in body) return { topic: "checkout/processed" };
  if ("charge" in body) return { topic: undefined, reason: `${why} is a charge: charge topics are not handled` };
  const keys = Object.keys(body);
  const shown = keys.slice(0, 3).map((k) => JSON.stringify(k.length > 40 ? `${k.slice(0, 40)}…` : k));
  return {
    topic: undefined,
    reason: `${why} is neither an order nor a checkout (${keys.length === 0 ? "no keys" : `keys ${shown.join(", ")}${keys.length > 3 ? ", …" : ""}`})`,
  };
}

/**
 * The API version a payload was rendered in, from its shape: 2021-11 nests (`customer`, `charge`,
 * `external_order_id: {ecommerce}`, `purchase_item_id`, lower-case status, booleans); 2021-01 is flat
 * (`customer_id`, `charge_id`, `shopify_order_id`, `subscription_id`, upper-case status, 0/1).
 * Undefined when the shape does not tell (then the header or RECHARGE_API_VERSION decide).
 */
export function detectVersion(resource: Obj): RechargeApiVersion | undefined {
  let v11 = 0;
  let v01 = 0;
  const vote = (cond: boolean, which: "11" | "01"): void => {
    if (cond) which === "11" ? v11++ : v01++;
  };
  vote(isObj(resource["customer"]), "11");
  vote(isObj(resource["charge"]), "11");
  vote(isObj(resource["external_order_id"]) || isObj(resource["external_order_number"]), "11");
  vote(isObj(resource["external_customer_id"]), "11");
  vote(typeof resource["is_prepaid"] === "boolean", "11");
  vote(typeof resource["is_prepaid"] === "number", "01");
  vote("customer_id" in resource, "01");
  vote("charge_id" in resource && !("charge" in resource) && !("token" in resource), "01");
  vote("shopify_order_id" in resource || "shopify_customer_id" in resource || "shopify_cart_token" in resource, "01");
  vote("note_attributes" in resource, "01");
  vote("order_attributes" in resource, "11");
  const status = resource["status"];
  if (typeof status === "string" && /[a-z]/i.test(status)) {
    vote(status === status.toLowerCase(), "11");
    vote(status === status.toUpperCase(), "01");
  }
  const first = Array.isArray(resource["line_items"]) ? resource["line_items"][0] : undefined;
  if (isObj(first)) {
    vote("purchase_item_id" in first || isObj(first["external_variant_id"]), "11");
    vote("subscription_id" in first || "shopify_variant_id" in first, "01");
  }
  const addr = resource["shipping_address"] ?? resource["billing_address"];
  if (isObj(addr)) {
    vote("country_code" in addr, "11");
    vote("country" in addr && !("country_code" in addr), "01");
  }
  return v11 > v01 ? "2021-11" : v01 > v11 ? "2021-01" : undefined;
}

/** What orderbridge needs of a Recharge order, the same for both versions. */
export interface RechargeOrderView {
  id: string;
  /** Lower-cased: success, queued, error, cancelled, refunded, skipped, … */
  status: string;
  isPrepaid: boolean;
  chargeId: string | undefined;
  externalOrderId: string | undefined;
  externalOrderNumber: string | undefined;
  updatedAt: string | undefined;
  type: string | undefined;
}

export function readOrderView(order: Obj): RechargeOrderView {
  const charge = order["charge"];
  return {
    id: text(order["id"]) ?? "",
    status: (text(order["status"]) ?? "").toLowerCase(),
    isPrepaid: flag(order["is_prepaid"]),
    chargeId: isObj(charge) ? text(charge["id"]) : text(order["charge_id"]),
    // 2021-01 may name it either way (spec §7.6): the generic name first.
    externalOrderId: ecommerce(order["external_order_id"]) ?? text(order["shopify_order_id"]),
    externalOrderNumber: ecommerce(order["external_order_number"]) ?? text(order["shopify_order_number"]),
    updatedAt: text(order["updated_at"]),
    type: text(order["type"])?.toLowerCase(),
  };
}

/** What we already did for this Recharge order (the recharge_orders row), if anything. */
export interface KnownSync {
  platformOrderId: string;
  orderNumber: string;
}

export type Decision =
  | { action: "place" }
  | { action: "skip"; reason: string }
  /** Placed before (by us): nothing new to do. */
  | { action: "noop"; reason: string };

/**
 * What to do with an order event, whatever its topic: only successful orders are placed, each once;
 * an order that already carries an external id (ours: the echo of our own write-back; or another
 * system's) is never placed again. So order/created, order/processed and order/updated for one order
 * lead to one external order in any arrival order, and our write-back's order/updated ends the loop.
 */
export function decide(view: RechargeOrderView, known: KnownSync | undefined): Decision {
  if (known !== undefined) {
    if (view.externalOrderId !== undefined && view.externalOrderId === known.platformOrderId) {
      return { action: "noop", reason: `echo of our write-back: already placed as ${known.orderNumber}` };
    }
    return { action: "noop", reason: `already placed as ${known.orderNumber}` };
  }
  if (view.status !== "success") {
    return { action: "skip", reason: `status is ${view.status || "missing"}: only successful orders are placed` };
  }
  if (view.externalOrderId !== undefined) {
    return { action: "skip", reason: `the order already has external order id ${view.externalOrderId} (placed by another system)` };
  }
  return { action: "place" };
}

export interface MappedRechargeOrder {
  order: NormalizedOrder;
  /** Lines that cannot be ordered as sent (no SKU, bad quantity or price), with the reason. */
  problems: string[];
}

function mapAddress(a: unknown): Address | undefined {
  if (!isObj(a)) return undefined;
  const out: Address = {};
  const set = (key: keyof Address, v: unknown): void => {
    const t = text(v);
    if (t !== undefined) out[key] = t;
  };
  set("firstName", a["first_name"]);
  set("lastName", a["last_name"]);
  set("company", a["company"]);
  set("street1", a["address1"]);
  set("street2", a["address2"]);
  set("city", a["city"]);
  set("region", a["province"]);
  set("postcode", a["zip"]);
  set("phone", a["phone"]);
  // 2021-11 sends an ISO code; 2021-01 a country name (sometimes a code).
  const code = text(a["country_code"]);
  const country = text(a["country"]);
  if (code !== undefined) out.country = code.toUpperCase();
  else if (country !== undefined && /^[A-Za-z]{2}$/.test(country)) out.country = country.toUpperCase();
  if (country !== undefined && !/^[A-Za-z]{2}$/.test(country)) out.countryName = country;
  return Object.keys(out).length === 0 ? undefined : out;
}

function nameValues(v: unknown): NameValue[] {
  // A list of {name, value} (as documented) or an object (as one documentation example shows).
  if (Array.isArray(v)) {
    return v.filter(isObj).flatMap((p) => {
      const name = text(p["name"]);
      return name === undefined ? [] : [{ name, value: text(p["value"]) ?? "" }];
    });
  }
  if (isObj(v)) return Object.entries(v).map(([name, value]) => ({ name, value: text(value) ?? "" }));
  return [];
}

/**
 * A Recharge order → the normalised order. Prices, taxes, shipping and discounts are what Recharge
 * charged the customer, so they travel as fixed amounts; nothing is re-priced. Never partial: the
 * customer paid for every line.
 */
export function mapRechargeOrder(order: Obj): MappedRechargeOrder {
  const view = readOrderView(order);
  const currency = (text(order["currency"]) ?? "USD").toUpperCase();
  const exp = currencyExponent(currency);
  const money = (v: unknown): number | undefined => {
    if (typeof v !== "string" && typeof v !== "number") return undefined;
    const n = parseDecimal(v, exp);
    return n === undefined || n < 0 ? undefined : n;
  };
  const problems: string[] = [];
  const lines: NormalizedLine[] = [];
  const items = Array.isArray(order["line_items"]) ? order["line_items"].filter(isObj) : [];
  items.forEach((it, i) => {
    const sku = text(it["sku"]) ?? ecommerce(it["external_variant_id"]) ?? text(it["shopify_variant_id"]);
    const qty = typeof it["quantity"] === "number" ? it["quantity"] : Number(text(it["quantity"]) ?? NaN);
    if (sku === undefined) {
      problems.push(`line ${i + 1} (${text(it["title"]) ?? "untitled"}) has no SKU or variant id`);
      return;
    }
    if (!Number.isInteger(qty) || qty < 1 || qty > 100_000) {
      problems.push(`line ${i + 1} (${sku}) has quantity ${String(it["quantity"])}, not a whole number from 1 to 100000`);
      return;
    }
    const line: NormalizedLine = { ref: String(i), sku, quantity: qty };
    const unit = money(it["unit_price"] ?? it["price"]);
    if (unit !== undefined) line.fixedUnitPrice = unit;
    const taxLines = Array.isArray(it["tax_lines"]) ? it["tax_lines"].filter(isObj) : undefined;
    if (taxLines !== undefined && taxLines.length > 0) {
      line.fixedTaxTotal = taxLines.reduce((s, t) => s + (money(t["price"]) ?? 0), 0);
    } else if (money(it["tax_due"]) !== undefined) {
      line.fixedTaxTotal = money(it["tax_due"]) as number;
    } else if (taxLines !== undefined) {
      line.fixedTaxTotal = 0;
    }
    const title = text(it["title"]) ?? text(it["product_title"]);
    const variant = text(it["variant_title"]);
    if (title !== undefined) line.description = variant === undefined ? title : `${title} - ${variant}`;
    const sub = text(it["purchase_item_id"]) ?? text(it["subscription_id"]);
    if (sub !== undefined) line.subscriptionId = sub;
    if (typeof it["requires_shipping"] === "boolean") line.requiresShipping = it["requires_shipping"];
    const props = nameValues(it["properties"]);
    if (props.length > 0) line.properties = props;
    lines.push(line);
  });

  const customer = isObj(order["customer"]) ? order["customer"] : {};
  const email = text(customer["email"]) ?? text(order["email"]) ?? "";
  const sourceCustomerId = text(customer["id"]) ?? text(order["customer_id"]);
  const platformCustomerId = ecommerce(customer["external_customer_id"]) ?? text(order["shopify_customer_id"]);

  const shippingLines: ChargedShippingLine[] = (Array.isArray(order["shipping_lines"]) ? order["shipping_lines"] : [])
    .filter(isObj)
    .map((s) => {
      const code = text(s["code"]) ?? text(s["title"]) ?? "shipping";
      const title = text(s["title"]);
      return { code, ...(title === undefined ? {} : { title }), price: money(s["price"]) ?? 0 };
    });
  const discounts = (Array.isArray(order["discounts"]) ? order["discounts"] : Array.isArray(order["discount_codes"]) ? order["discount_codes"] : [])
    .filter(isObj)
    .map((d) => {
      const code = text(d["code"]);
      return { ...(code === undefined ? {} : { code }), amount: money(d["amount"] ?? d["value"]) ?? 0 };
    });
  // The order's own total discount wins over the list when the list carries no amounts.
  const totalDiscounts = money(order["total_discounts"]);
  if (totalDiscounts !== undefined && totalDiscounts > 0 && discounts.every((d) => d.amount === 0)) {
    if (discounts.length === 0) discounts.push({ amount: totalDiscounts });
    else (discounts[0] as { amount: number }).amount = totalDiscounts;
  }

  const normalized: NormalizedOrder = {
    source: "recharge",
    sourceOrderId: view.id,
    allowPartial: false,
    currency,
    customer: {
      email,
      ...(sourceCustomerId === undefined ? {} : { sourceCustomerId }),
      ...(platformCustomerId === undefined ? {} : { platformCustomerId }),
    },
    couponCodes: discounts.flatMap((d) => (d.code === undefined ? [] : [d.code])),
    lines,
    shippingLines,
  };
  const billing = mapAddress(order["billing_address"]);
  if (billing !== undefined) normalized.billingAddress = billing;
  const shipping = mapAddress(order["shipping_address"]);
  if (shipping !== undefined) normalized.shippingAddress = shipping;
  const firstCode = shippingLines[0]?.code;
  if (firstCode !== undefined) normalized.shippingMethodCode = firstCode;
  if (discounts.some((d) => d.amount > 0)) normalized.discounts = discounts.filter((d) => d.amount > 0);
  const note = text(order["note"]);
  if (note !== undefined) normalized.note = note;
  const tags = text(order["tags"]);
  if (tags !== undefined) normalized.tags = tags;
  const attributes = nameValues(order["order_attributes"] ?? order["note_attributes"]);
  if (attributes.length > 0) normalized.attributes = attributes;
  return { order: normalized, problems };
}

/** The cart a checkout came from (`external_checkout_id`, else the cart token). */
export function checkoutCartId(checkout: Obj): string | undefined {
  return text(checkout["external_checkout_id"]) ?? text(checkout["external_cart_token"]) ?? text(checkout["shopify_cart_token"]);
}

export interface ExternalIds {
  /** The platform's own id of the order (e.g. "100271"). */
  externalOrderId: string;
  /** The customer-facing number (e.g. "ABC-100271"). */
  externalOrderNumber: string;
}

/**
 * The body of `PUT /orders/{id}` in the shape of the version in use (spec §8.1): 2021-11 nests the ids
 * under `ecommerce`, 2021-01 sends flat strings. `withNumber: false` leaves the number out (its
 * acceptance in 2021-11 is unconfirmed).
 */
export function orderWriteBackBody(version: RechargeApiVersion, ids: ExternalIds, withNumber = true): Obj {
  if (version === "2021-11") {
    return {
      external_order_id: { ecommerce: ids.externalOrderId },
      ...(withNumber ? { external_order_number: { ecommerce: ids.externalOrderNumber } } : {}),
    };
  }
  return { external_order_id: ids.externalOrderId, ...(withNumber ? { external_order_number: ids.externalOrderNumber } : {}) };
}

/** The body of `PUT /charges/{id}` for a prepaid order (spec §8.2). */
export function chargeWriteBackBody(version: RechargeApiVersion, ids: ExternalIds): Obj {
  return version === "2021-11" ? { external_order_id: { ecommerce: ids.externalOrderId } } : { external_order_id: ids.externalOrderId };
}
