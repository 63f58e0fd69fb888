/**
 * Recharge orders, pure: which API version a payload is, what it says (both versions read into one
 * view), what to do with it, the normalised order it becomes, and the write-back bodies.
 * Facts and open questions: shared/spec/recharge-webhooks.md §6–§8.
 */
import { addAmounts, currencyUnit, isNegativeAmount, parseAmount, parseDecimal, UNKNOWN_CURRENCY_MESSAGE, type Amount } from "../money.js";
import type { Address, AmountField, ChargedShippingLine, NameValue, NormalizedLine, NormalizedOrder, TaxLine } from "../orders/types.js";

export type RechargeApiVersion = "2021-01" | "2021-11";
export const RECHARGE_API_VERSIONS: readonly RechargeApiVersion[] = ["2021-01", "2021-11"];
export const ORDER_TOPICS = ["order/created", "order/processed", "order/updated"] as const;
export const HANDLED_TOPICS = [...ORDER_TOPICS, "checkout/processed"] as const;
export type HandledTopic = (typeof HANDLED_TOPICS)[number];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const text = (v: unknown): string | undefined => (typeof v === "string" ? (v.trim() === "" ? undefined : v) : typeof v === "number" && Number.isFinite(v) ? String(v) : undefined);
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
    if (!cond) return;
    if (which === "11") v11++;
    else v01++;
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
 * A Recharge order → the normalised order. Prices, taxes, shipping, discounts and the order's
 * totals are what Recharge charged the customer, so they travel as exact amounts; nothing is
 * re-priced, and the platform rounds each figure once. Never partial: the customer paid for every line.
 */
export function mapRechargeOrder(order: Obj): MappedRechargeOrder {
  const view = readOrderView(order);
  const currency = (text(order["currency"]) ?? "USD").toUpperCase();
  const problems: string[] = [];
  // Refused at receipt since ISO 4217 units; an event stored before that ends here (the rest is
  // still read, in cents, to report every problem at once).
  const known = currencyUnit(currency);
  if (known === undefined) problems.push(`currency ${currency} ${UNKNOWN_CURRENCY_MESSAGE}`);
  const exp = known ?? 2;
  /** An amount Recharge charged, exact; undefined when absent, negative or too large to count. */
  const amount = (v: unknown): Amount | undefined => {
    if (typeof v !== "string" && typeof v !== "number") return undefined;
    const a = parseAmount(v);
    return a === undefined || isNegativeAmount(a) || parseDecimal(a, exp) === undefined ? undefined : a;
  };
  const taxLinesOf = (v: unknown): TaxLine[] | undefined =>
    Array.isArray(v)
      ? v.filter(isObj).flatMap((t) => {
          const price = amount(t["price"]);
          if (price === undefined) return [];
          const rate = amount(t["rate"]);
          return [{ title: text(t["title"]) ?? "Tax", ...(rate === undefined ? {} : { rate }), price }];
        })
      : undefined;
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
    const unit = amount(it["unit_price"] ?? it["price"]);
    if (unit !== undefined) line.fixedUnitPrice = unit;
    // tax_due is the tax Recharge charged for the line, in the currency's unit; its tax_lines itemise
    // it at finer precision (and in the reference's own example at the quantity of one: 0.993 + 0.308
    // against 3.80 for four). So tax_due wins; without it (2021-01 sends none) the tax lines are
    // summed exactly and the sum is rounded once: 0.725 + 0.225 is 0.95, never 0.73 + 0.23.
    const breakdown = taxLinesOf(it["tax_lines"]);
    const due = amount(it["tax_due"]);
    if (due !== undefined) line.fixedTaxTotal = due;
    else if (breakdown !== undefined) line.fixedTaxTotal = addAmounts(...breakdown.map((t) => t.price));
    if (breakdown !== undefined && breakdown.length > 0) line.taxLines = breakdown;
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

  const shippingLines: ChargedShippingLine[] = (Array.isArray(order["shipping_lines"]) ? order["shipping_lines"] : []).filter(isObj).map((s) => {
    const code = text(s["code"]) ?? text(s["title"]) ?? "shipping";
    const title = text(s["title"]);
    // Shipping is taxed too (0.355 + 0.110 on 4.90 in the reference): summed exactly, rounded once.
    const breakdown = taxLinesOf(s["tax_lines"]) ?? [];
    return {
      code,
      ...(title === undefined ? {} : { title }),
      price: amount(s["price"]) ?? "0",
      ...(breakdown.length === 0 ? {} : { taxTotal: addAmounts(...breakdown.map((t) => t.price)), taxLines: breakdown }),
    };
  });
  const discounts = mapDiscounts(order, amount, exp);
  const charged = chargedTotals(order, amount, exp);

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
  const applied = discounts.filter((d) => parseDecimal(d.amount, exp) !== 0);
  if (applied.length > 0) normalized.discounts = applied;
  if (Object.keys(charged).length > 0) normalized.charged = charged;
  const note = text(order["note"]);
  if (note !== undefined) normalized.note = note;
  const tags = text(order["tags"]);
  if (tags !== undefined) normalized.tags = tags;
  const attributes = nameValues(order["order_attributes"] ?? order["note_attributes"]);
  if (attributes.length > 0) normalized.attributes = attributes;
  return { order: normalized, problems };
}

/**
 * The discounts as amounts. A discount's `value` is an amount only for a fixed-amount discount (a
 * percentage's is a percentage: 10.00 means 10 %); the amount actually taken off is the order's
 * total_discounts. One discount gets all of it; of several, those with an amount of their own
 * (`amount`, or a fixed value) keep it and the first without one gets what is left. Codes are kept
 * whatever their amount (couponCodes).
 */
function mapDiscounts(order: Obj, amount: (v: unknown) => Amount | undefined, exp: number): { code?: string; amount: Amount }[] {
  const listed = Array.isArray(order["discounts"]) ? order["discounts"] : Array.isArray(order["discount_codes"]) ? order["discount_codes"] : [];
  const entries = listed
    .map((d): Obj | undefined => (typeof d === "string" ? { code: d } : isObj(d) ? d : undefined))
    .filter((d): d is Obj => d !== undefined)
    .map((d) => {
      const kind = (text(d["value_type"]) ?? text(d["type"]) ?? "fixed_amount").toLowerCase();
      const code = text(d["code"]) ?? text(d["discount_code"]);
      return { code, own: amount(d["amount"]) ?? (kind.startsWith("fixed") ? amount(d["value"]) : undefined) };
    });
  const total = amount(order["total_discounts"]);
  const out = entries.map((e) => ({ ...(e.code === undefined ? {} : { code: e.code }), amount: e.own ?? "0" }));
  if (total !== undefined) {
    const first = out[0];
    if (first === undefined) {
      if (parseDecimal(total, exp) !== 0) out.push({ amount: total });
    } else if (out.length === 1) {
      first.amount = total;
    } else {
      const i = entries.findIndex((e) => e.own === undefined);
      const target = out[i];
      if (target !== undefined) {
        const rest = addAmounts(total, ...entries.flatMap((e) => (e.own === undefined ? [] : [`-${e.own}`])));
        target.amount = isNegativeAmount(rest) ? "0" : rest;
      }
    }
  }
  return out;
}

/**
 * What Recharge says the order came to. subtotal is before discounts, as in every example of the
 * reference (40.00 − 10.00 + 4.90 + 3.32 = 38.22), although subtotal_price's description says "less
 * discounts": where a payload's subtotal_price is total_line_items_price less total_discounts (the
 * described meaning), total_line_items_price is the subtotal. Recharge gives no shipping total: the
 * shipping lines make it.
 */
function chargedTotals(order: Obj, amount: (v: unknown) => Amount | undefined, exp: number): Partial<Record<AmountField, Amount>> {
  const out: Partial<Record<AmountField, Amount>> = {};
  const subtotal = amount(order["subtotal_price"]);
  const lineItems = amount(order["total_line_items_price"]);
  const discounts = amount(order["total_discounts"]);
  const minor = (a: Amount | undefined): number | undefined => (a === undefined ? undefined : parseDecimal(a, exp));
  const afterDiscounts =
    subtotal !== undefined && lineItems !== undefined && discounts !== undefined && minor(discounts) !== 0 && minor(addAmounts(subtotal, discounts)) === minor(lineItems);
  const sub = afterDiscounts ? lineItems : (subtotal ?? lineItems);
  if (sub !== undefined) out.subtotal = sub;
  const tax = amount(order["total_tax"]);
  if (tax !== undefined) out.taxTotal = tax;
  if (discounts !== undefined) out.discountTotal = discounts;
  const total = amount(order["total_price"]);
  if (total !== undefined) out.total = total;
  return out;
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
