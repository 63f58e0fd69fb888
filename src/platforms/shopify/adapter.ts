import { createHash } from "node:crypto";
import { PlatformError } from "../../errors.js";
import { createHttpClient, OutboundFailure, type OutboundResponse } from "../../outbound/http-client.js";
import { refusal } from "../../outbound/refusal.js";
import { retrying } from "../../outbound/retry.js";
import { parseRetryAfter } from "../../outbound/retry-policy.js";
import { allocate, currencyExponent, formatMinor, parseDecimal, roundAmount, type Amount } from "../../money.js";
import { settleCharged } from "../../orders/amounts.js";
import {
  ERROR_CLASS_PLATFORM,
  type Address,
  type CreateOrderContext,
  type LineResult,
  type NormalizedLine,
  type NormalizedOrder,
  type PlatformAdapter,
  type PlatformOrderResult,
  type TaxLine,
} from "../../orders/types.js";
import type { Scrub } from "../../security/scrub.js";

export interface ShopifyOptions {
  /** The shop's handle: `my-shop` of my-shop.myshopify.com. */
  shop: string;
  accessToken: string;
  /** Admin API version, always explicit (e.g. 2025-10). */
  apiVersion: string;
  /** Base URL; default https://<shop>.myshopify.com (tests point it at a stand-in). */
  apiUrl?: string | undefined;
  /** One request's timeout; the caller's deadline bounds all attempts. */
  timeoutMs: number;
  /** How long a SKU → variant answer is reused (misses are reused for a tenth of it). */
  variantCacheMs?: number;
  clock?: () => number;
}

type Obj = Record<string, unknown>;
interface Variant {
  id: string;
  sku: string;
  price: string;
  title: string;
}

const ORDER_FIELDS = `id legacyResourceId name createdAt currencyCode displayFinancialStatus tags
  subtotalPriceSet { shopMoney { amount currencyCode } }
  totalShippingPriceSet { shopMoney { amount currencyCode } }
  totalTaxSet { shopMoney { amount currencyCode } }
  totalDiscountsSet { shopMoney { amount currencyCode } }
  totalPriceSet { shopMoney { amount currencyCode } }
  lineItems(first: 250) { nodes { id sku quantity customAttributes { key value } originalUnitPriceSet { shopMoney { amount currencyCode } } } }`;

const FIND_ORDER = `query OrderbridgeFindOrder($query: String!) { orders(first: 1, query: $query) { nodes { ${ORDER_FIELDS} } } }`;
const ORDER_CREATE = `mutation OrderbridgeOrderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) { order { ${ORDER_FIELDS} } userErrors { field message code } } }`;

/** The line property that ties a Shopify line item back to our line. */
const REF_PROPERTY = "_orderbridge_ref";
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const quote = (s: string): string => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

/** The tag that marks the order of one idempotency key, searched before creating. */
export const idempotencyTag = (key: string): string => `orderbridge-${createHash("sha256").update(key).digest("hex").slice(0, 24)}`;

/**
 * Shopify through the Admin GraphQL API (`orderCreate`). SKUs are resolved to variants (cached);
 * each order carries a tag derived from the idempotency key, and an existing order with that tag is
 * returned instead of creating a second one. Throttling (HTTP 429, GraphQL THROTTLED) waits as
 * Shopify advises; 5xx and network errors are retried; all within the caller's deadline.
 */
export function createShopifyPlatform(o: ShopifyOptions): PlatformAdapter {
  const clock = o.clock ?? Date.now;
  const cacheMs = o.variantCacheMs ?? 10 * 60_000;
  const base = (o.apiUrl ?? `https://${o.shop}.myshopify.com`).replace(/\/+$/, "");
  const endpoint = `${base}/admin/api/${o.apiVersion}/graphql.json`;
  const http = createHttpClient({
    timeoutMs: o.timeoutMs,
    headers: { "X-Shopify-Access-Token": o.accessToken, "Content-Type": "application/json", Accept: "application/json" },
    secrets: [o.accessToken],
  });
  const variants = new Map<string, { variant: Variant | null; at: number }>();
  const backoff = { baseMs: 200, maxMs: 2000 };
  const gaveUp = ({ failure }: { failure: string }): PlatformError => new PlatformError(`Shopify ${failure}; gave up at the deadline`, true);

  /**
   * One GraphQL operation, retried while Shopify throttles (never executed) or, for reads, is
   * unavailable. For a mutation (`mutation: true`) a network error, timeout or 5xx is ambiguous (it
   * may have been applied), so it is not resent here: an AmbiguousFailure goes back to the caller.
   * A refusal answers the status and Shopify's request id; Shopify's words (which may quote the
   * values sent) go to the error's detail, scrubbed with `scrub` and of the access token.
   */
  function gql(operation: string, query: string, variables: Obj, signal: AbortSignal, orderScrub: Scrub, mutation = false): Promise<Obj> {
    const scrub = orderScrub.with([o.accessToken]);
    return retrying<Obj>({
      signal,
      backoff,
      giveUp: gaveUp,
      attempt: async () => {
        if (signal.aborted) throw new PlatformError(`Shopify did not answer ${operation} before the deadline`, true);
        let res: OutboundResponse;
        try {
          res = await http.request({ method: "POST", url: endpoint, body: JSON.stringify({ query, variables, operationName: operation }), signal });
        } catch (e) {
          if (!(e instanceof OutboundFailure)) throw e;
          if (signal.aborted) throw new PlatformError(`Shopify did not answer ${operation} before the deadline`, true, { cause: e });
          if (mutation) throw new AmbiguousFailure(`${operation} failed: ${e.message}`);
          return { failure: `is unreachable (${e.message})` };
        }
        const { status, text } = res;
        if (status === 429) return { failure: "kept answering 429 Too Many Requests", waitMs: parseRetryAfter(res.headers["retry-after"], clock()) ?? 1000 };
        if (status >= 500) {
          if (mutation) throw new AmbiguousFailure(`${operation} answered HTTP ${status}`);
          return { failure: `answered HTTP ${status}` };
        }
        // Only on failure (built when thrown): Shopify's request id, and its words for the log.
        const refused = (message: string, said: string = text): PlatformError => refusal(message, res, scrub, { retryable: false, said });
        if (status !== 200) {
          const hint = status === 401 || status === 403 ? ": check SHOPIFY_ACCESS_TOKEN and its scopes" : status === 404 ? ": check SHOPIFY_SHOP and SHOPIFY_API_VERSION" : "";
          throw refused(`Shopify refused ${operation} with HTTP ${status}${hint}`);
        }
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw refused(`Shopify answered ${operation} with a body that is not JSON`);
        }
        if (!isObj(body)) throw refused(`Shopify answered ${operation} with an unexpected body`);
        const errors = Array.isArray(body["errors"]) ? body["errors"].filter(isObj) : [];
        if (errors.some((e) => isObj(e["extensions"]) && e["extensions"]["code"] === "THROTTLED")) {
          return { failure: "kept throttling (THROTTLED)", waitMs: throttleWaitMs(body) };
        }
        if (errors.length > 0 || (body["errors"] !== undefined && body["errors"] !== null && !Array.isArray(body["errors"]))) {
          // GraphQL error messages quote the variables' values ("invalid value for email …"): log-only.
          const msg = errors.length > 0 ? errors.map((e) => String(e["message"])).join("; ") : JSON.stringify(body["errors"]);
          throw refused(`Shopify refused ${operation} with GraphQL errors`, msg);
        }
        if (!isObj(body["data"])) throw refused(`Shopify answered ${operation} without data`);
        return { done: body["data"] };
      },
    });
  }

  /** SKU → variant for every SKU, from the cache or in one query for the rest. */
  async function resolve(skus: string[], signal: AbortSignal, scrub: Scrub): Promise<Map<string, Variant | null>> {
    const now = clock();
    const out = new Map<string, Variant | null>();
    const missing: string[] = [];
    for (const sku of new Set(skus)) {
      const hit = variants.get(sku);
      const fresh = hit !== undefined && now - hit.at < (hit.variant === null ? cacheMs / 10 : cacheMs);
      if (fresh) out.set(sku, hit.variant);
      else missing.push(sku);
    }
    for (let i = 0; i < missing.length; i += 25) {
      const chunk = missing.slice(i, i + 25);
      const decl = chunk.map((_, j) => `$q${j}: String!`).join(", ");
      const fields = chunk.map((_, j) => `v${j}: productVariants(first: 5, query: $q${j}) { nodes { id sku title price inventoryQuantity product { title } } }`).join("\n");
      const vars: Obj = {};
      chunk.forEach((sku, j) => (vars[`q${j}`] = `sku:${quote(sku)}`));
      const data = await gql("OrderbridgeVariants", `query OrderbridgeVariants(${decl}) {\n${fields}\n}`, vars, signal, scrub);
      chunk.forEach((sku, j) => {
        const conn = data[`v${j}`];
        const nodes = isObj(conn) && Array.isArray(conn["nodes"]) ? conn["nodes"].filter(isObj) : [];
        // Shopify's search is fuzzy: only an exact SKU counts.
        const node = nodes.find((n) => n["sku"] === sku);
        const product = node !== undefined && isObj(node["product"]) ? String(node["product"]["title"] ?? "") : "";
        const variant =
          node === undefined
            ? null
            : {
                id: String(node["id"]),
                sku,
                price: String(node["price"] ?? "0"),
                title: [product, node["title"] === "Default Title" ? "" : String(node["title"] ?? "")].filter(Boolean).join(" - ") || sku,
              };
        variants.set(sku, { variant, at: now });
        out.set(sku, variant);
      });
    }
    return out;
  }

  async function findByTag(tag: string, signal: AbortSignal, scrub: Scrub): Promise<Obj | undefined> {
    const found = await gql("OrderbridgeFindOrder", FIND_ORDER, { query: `tag:${quote(tag)}` }, signal, scrub);
    return isObj(found["orders"]) && Array.isArray(found["orders"]["nodes"]) ? found["orders"]["nodes"].find(isObj) : undefined;
  }

  async function createOrder(order: NormalizedOrder, ctx: CreateOrderContext): Promise<PlatformOrderResult> {
    const tag = idempotencyTag(ctx.idempotencyKey);
    let resolved: Map<string, Variant | null> | undefined;
    const failures = new Map<string, string>();
    // A pass ends with the order, or again at once after refused lines (each pass fails a line or
    // all), or after a backoff when orderCreate went unanswered (the next pass looks for it first).
    return retrying<PlatformOrderResult>({
      signal: ctx.signal,
      backoff,
      giveUp: gaveUp,
      attempt: async (attempt) => {
        // Every attempt looks for the order first: an earlier attempt's answer may have been lost.
        const existing = await findByTag(tag, ctx.signal, ctx.scrub);
        if (existing !== undefined) return { done: fromShopify(order, existing, failures, attempt === 1) };
        if (resolved === undefined) {
          resolved = await resolve(
            order.lines.map((l) => l.sku),
            ctx.signal,
            ctx.scrub,
          );
          for (const l of order.lines) {
            if (resolved.get(l.sku) === null) failures.set(l.ref, `Product ${l.sku} was not found in Shopify (no variant has this SKU)`);
          }
        }
        const sendable = order.lines.filter((l) => !failures.has(l.ref));
        if (sendable.length === 0 || (failures.size > 0 && !order.allowPartial)) return { done: notPlaced(order, failures, resolved) };
        let data: Obj;
        try {
          data = await gql("OrderbridgeOrderCreate", ORDER_CREATE, orderVariables(order, sendable, resolved, ctx.idempotencyKey, tag), ctx.signal, ctx.scrub, true);
        } catch (e) {
          if (!(e instanceof AmbiguousFailure)) throw e;
          return { failure: `left orderCreate unanswered (${e.message})` };
        }
        const payload = data["orderCreate"];
        if (!isObj(payload)) throw new PlatformError("Shopify answered orderCreate without an orderCreate payload", false);
        const userErrors = Array.isArray(payload["userErrors"]) ? payload["userErrors"].filter(isObj) : [];
        if (userErrors.length === 0 && isObj(payload["order"])) return { done: fromShopify(order, payload["order"], failures, false) };
        if (userErrors.length === 0) throw new PlatformError("Shopify answered orderCreate with neither an order nor userErrors", false);
        // A refused line fails; with allowPartial the rest is tried again (the loop ends: each pass fails a line or all).
        let lineErrors = 0;
        for (const e of userErrors) {
          const field = Array.isArray(e["field"]) ? e["field"].map(String) : [];
          const i = field[1] === "lineItems" && field[2] !== undefined && /^\d+$/.test(field[2]) ? Number(field[2]) : -1;
          const line = sendable[i];
          if (line !== undefined) {
            failures.set(line.ref, `${line.sku}: ${String(e["message"])}`);
            lineErrors++;
          }
        }
        if (lineErrors < userErrors.length || lineErrors === 0) {
          // An error about the order as a whole (address, email, …): no line can be ordered.
          const message = userErrors.map((e) => String(e["message"])).join("; ");
          for (const l of sendable) if (!failures.has(l.ref)) failures.set(l.ref, `Shopify refused the order: ${message}`);
        }
        return { again: true };
      },
    });
  }

  return { name: "shopify", createOrder };
}

/** A mutation failed in a way that leaves open whether Shopify applied it. */
class AmbiguousFailure extends Error {}

function throttleWaitMs(body: Obj): number {
  const cost = isObj(body["extensions"]) && isObj(body["extensions"]["cost"]) ? body["extensions"]["cost"] : {};
  const status = isObj(cost["throttleStatus"]) ? cost["throttleStatus"] : {};
  const requested = Number(cost["requestedQueryCost"] ?? 0);
  const available = Number(status["currentlyAvailable"] ?? 0);
  const restore = Number(status["restoreRate"] ?? 50) || 50;
  return Math.min(60_000, Math.max(100, Math.ceil(((requested - available) / restore) * 1000)));
}

function mailingAddress(a: Address | undefined): Obj | undefined {
  if (a === undefined) return undefined;
  const out: Obj = {};
  const set = (k: string, v: string | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  set("firstName", a.firstName);
  set("lastName", a.lastName);
  set("company", a.company);
  set("address1", a.street1);
  set("address2", [a.street2, a.street3].filter(Boolean).join(", ") || undefined);
  set("city", a.city);
  if (a.region !== undefined && /^[A-Za-z0-9]{1,3}$/.test(a.region)) set("provinceCode", a.region.toUpperCase());
  set("zip", a.postcode);
  if (a.country !== undefined && /^[A-Za-z]{2}$/.test(a.country)) set("countryCode", a.country.toUpperCase());
  set("phone", a.phone);
  return out;
}

/** A tax rate as Shopify's Decimal: tax ÷ base to 4 places (0 without a base). */
function rateOf(tax: number, base: number): string {
  if (base <= 0) return "0";
  const tenThousandths = Math.round((tax * 10_000) / base);
  return formatMinor(tenThousandths, 4);
}

/**
 * The tax lines of a line or shipping line: the source's breakdown (title, rate), its parts
 * allocated so that they add up to the tax rounded once (0.725 + 0.225 is one 0.95, never
 * 0.73 + 0.23); one "Tax" line without a breakdown. Shopify requires a rate on each.
 */
function taxLinesInput(tax: Amount | undefined, breakdown: TaxLine[] | undefined, base: number, exp: number, money: (n: number) => Obj): Obj | undefined {
  if (tax === undefined) return undefined;
  const total = roundAmount(tax, exp);
  if (total === 0) return undefined;
  if (breakdown === undefined || breakdown.length === 0) return { taxLines: [{ title: "Tax", rate: rateOf(total, base), priceSet: money(total) }] };
  const shares = allocate(
    total,
    breakdown.map((t) => t.price),
  );
  return { taxLines: breakdown.map((t, i) => ({ title: t.title, rate: t.rate ?? rateOf(shares[i] ?? 0, base), priceSet: money(shares[i] ?? 0) })) };
}

function orderVariables(order: NormalizedOrder, lines: NormalizedLine[], resolved: Map<string, Variant | null>, key: string, tag: string): Obj {
  const exp = currencyExponent(order.currency);
  const money = (n: number): Obj => ({ shopMoney: { amount: formatMinor(n, exp), currencyCode: order.currency } });
  const round = (a: Amount): number => roundAmount(a, exp);
  // Recharge's totals, where its lines disagree with them: Shopify adds the lines up itself, so the
  // figures Recharge charged travel as an attribute of the order, for the merchant to see.
  const settled = settleCharged(order, exp);
  const differences = (settled?.differences ?? []).map(
    (d) =>
      `${d.field}: charged ${formatMinor(d.recorded, exp)}, ${d.field === "total" ? "from the totals" : "lines"} ${formatMinor(d.computed, exp)}, difference ${formatMinor(d.difference, exp)}`,
  );
  const input: Obj = {
    currency: order.currency,
    lineItems: lines.map((l) => {
      const unit = l.fixedUnitPrice === undefined ? undefined : round(l.fixedUnitPrice);
      return {
        variantId: (resolved.get(l.sku) as Variant).id,
        quantity: l.quantity,
        ...(unit === undefined ? {} : { priceSet: money(unit) }),
        ...taxLinesInput(l.fixedTaxTotal, l.taxLines, (unit ?? parseDecimal((resolved.get(l.sku) as Variant).price, exp) ?? 0) * l.quantity, exp, money),
        properties: [
          { name: REF_PROPERTY, value: l.ref },
          ...(l.subscriptionId === undefined ? [] : [{ name: "_subscription_id", value: l.subscriptionId }]),
          ...(l.properties ?? []),
        ],
      };
    }),
    tags: [
      "orderbridge",
      tag,
      `source:${order.source}`,
      ...(order.tags ?? "")
        .split(",")
        .map((t) => t.trim())
        .filter(Boolean),
    ],
    customAttributes: [
      { key: "orderbridge_idempotency_key", value: key },
      { key: "subscription_source", value: order.source },
      ...(order.sourceOrderId === undefined ? [] : [{ key: "source_order_id", value: order.sourceOrderId }]),
      ...(differences.length === 0 ? [] : [{ key: "orderbridge_amount_differences", value: differences.join("; ") }]),
      ...(order.attributes ?? []).map((a) => ({ key: a.name, value: a.value })),
    ],
    sourceIdentifier: key.slice(0, 255),
    sourceName: "orderbridge",
    // Recharge has charged the customer; a Subscribe Pro order is paid through the platform.
    financialStatus: order.source === "recharge" ? "PAID" : "PENDING",
  };
  if (order.customer.email !== "") input["email"] = order.customer.email;
  const pc = order.customer.platformCustomerId;
  if (pc !== undefined && /^(gid:\/\/shopify\/Customer\/)?\d+$/.test(pc)) {
    input["customer"] = { toAssociate: { id: pc.startsWith("gid://") ? pc : `gid://shopify/Customer/${pc}` } };
  }
  const shipping = mailingAddress(order.shippingAddress);
  if (shipping !== undefined) input["shippingAddress"] = shipping;
  const billing = mailingAddress(order.billingAddress);
  if (billing !== undefined) input["billingAddress"] = billing;
  if (order.shippingLines !== undefined && order.shippingLines.length > 0) {
    input["shippingLines"] = order.shippingLines.map((s) => {
      const price = round(s.price);
      return { title: s.title ?? s.code, code: s.code, priceSet: money(price), ...taxLinesInput(s.taxTotal, s.taxLines, price, exp, money) };
    });
  } else if (order.shippingMethodCode !== undefined) {
    input["shippingLines"] = [{ title: order.shippingMethodCode, code: order.shippingMethodCode, priceSet: money(0) }];
  }
  // orderCreate takes one discount code: it carries the whole discount (Recharge's total_discounts).
  const discounts = order.discounts ?? [];
  const discountTotal = settled?.totals.discountTotal ?? discounts.reduce((sum, d) => sum + round(d.amount), 0);
  const code = discounts.find((d) => d.code !== undefined)?.code ?? order.couponCodes[0];
  if (discountTotal > 0) input["discountCode"] = { itemFixedDiscountCode: { code: code ?? "orderbridge", amountSet: money(discountTotal) } };
  if (order.note !== undefined) input["note"] = order.note;
  return { order: input, options: { sendReceipt: false, sendFulfillmentReceipt: false, inventoryBehaviour: "DECREMENT_OBEYING_POLICY" } };
}

/** Lines when nothing is placed: failures with their reason, the rest reported ok without an item id. */
function notPlaced(order: NormalizedOrder, failures: Map<string, string>, resolved: Map<string, Variant | null>): PlatformOrderResult {
  const exp = currencyExponent(order.currency);
  return {
    order: null,
    lines: order.lines.map((l): LineResult => {
      const why = failures.get(l.ref);
      if (why !== undefined) return { ok: false, ref: l.ref, sku: l.sku, message: why, errorClass: ERROR_CLASS_PLATFORM };
      const v = resolved.get(l.sku);
      const unitPrice = l.fixedUnitPrice === undefined ? (parseDecimal(v?.price ?? "0", exp) ?? 0) : roundAmount(l.fixedUnitPrice, exp);
      return {
        ok: true,
        ref: l.ref,
        platformItemId: "",
        sku: l.sku,
        name: v?.title ?? l.sku,
        quantity: l.quantity,
        requiresShipping: l.requiresShipping ?? true,
        unitPrice,
        shippingTotal: 0,
        taxTotal: 0,
        discountTotal: 0,
        lineTotal: 0,
      };
    }),
    replayed: false,
  };
}

/** A Shopify order node → our result, matching line items to our lines by their ref property. */
function fromShopify(order: NormalizedOrder, node: Obj, failures: Map<string, string>, replayed: boolean): PlatformOrderResult {
  const exp = currencyExponent(order.currency);
  const amount = (set: unknown): number => {
    const shop = isObj(set) && isObj(set["shopMoney"]) ? set["shopMoney"] : {};
    return parseDecimal(String(shop["amount"] ?? "0"), exp) ?? 0;
  };
  const items = isObj(node["lineItems"]) && Array.isArray(node["lineItems"]["nodes"]) ? node["lineItems"]["nodes"].filter(isObj) : [];
  const byRef = new Map<string, Obj>();
  for (const it of items) {
    const attrs = Array.isArray(it["customAttributes"]) ? it["customAttributes"].filter(isObj) : [];
    const ref = attrs.find((a) => a["key"] === REF_PROPERTY)?.["value"];
    if (typeof ref === "string") byRef.set(ref, it);
  }
  const lines = order.lines.map((l): LineResult => {
    const it = byRef.get(l.ref);
    if (it === undefined) {
      const why = failures.get(l.ref) ?? `Product ${l.sku} is not in Shopify order ${String(node["name"])}`;
      return { ok: false, ref: l.ref, sku: l.sku, message: why, errorClass: ERROR_CLASS_PLATFORM };
    }
    const unitPrice = amount(it["originalUnitPriceSet"]);
    const taxTotal = l.fixedTaxTotal === undefined ? 0 : roundAmount(l.fixedTaxTotal, exp);
    return {
      ok: true,
      ref: l.ref,
      platformItemId: String(it["id"]).replace(/^gid:\/\/shopify\/LineItem\//, ""),
      sku: l.sku,
      name: l.description ?? l.sku,
      quantity: Number(it["quantity"] ?? l.quantity),
      requiresShipping: l.requiresShipping ?? true,
      unitPrice,
      shippingTotal: 0,
      taxTotal,
      discountTotal: 0,
      lineTotal: unitPrice * l.quantity + taxTotal,
    };
  });
  const created = String(node["createdAt"] ?? "");
  return {
    order: {
      platformOrderId: String(node["legacyResourceId"] ?? String(node["id"]).replace(/^.*\//, "")),
      globalId: String(node["id"]),
      orderNumber: String(node["name"]),
      createdAt: created === "" ? new Date().toISOString().replace(/\.\d{3}Z$/, "Z") : created.replace(/\.\d{3}Z$/, "Z"),
      currency: String(node["currencyCode"] ?? order.currency),
      status: String(node["displayFinancialStatus"] ?? "placed").toLowerCase(),
      state: "open",
      subtotal: amount(node["subtotalPriceSet"]),
      shippingTotal: amount(node["totalShippingPriceSet"]),
      taxTotal: amount(node["totalTaxSet"]),
      discountTotal: amount(node["totalDiscountsSet"]),
      total: amount(node["totalPriceSet"]),
    },
    lines,
    replayed,
  };
}
