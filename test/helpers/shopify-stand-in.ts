import { createServer, STATUS_CODES } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { close, firstHeader, isPlainObject, listen, readBody } from "../../tools/stand-ins/loopback.js";

/**
 * A real local HTTP server standing in for Shopify's Admin GraphQL API
 * (`POST /admin/api/{version}/graphql.json`). It knows the three operations the orderbridge
 * Shopify adapter sends, recognised by operation name in the query text:
 *   - `query OrderbridgeVariants`  — aliased `v<N>: productVariants(query: $q<N>)` SKU lookups,
 *   - `query OrderbridgeFindOrder` — `orders(query: $query)` with `tag:"…"`,
 *   - `mutation OrderbridgeOrderCreate` — `orderCreate(order:, options:)`, validated, stored,
 *     inventory decremented, totals computed from the input.
 * It checks the access token, the API version and the body, and answers scripted faults
 * (throttled, HTTP status, malformed JSON, wrong shape, hang, create-then-hang).
 * Uses node:http only (no GraphQL library), so it is independent of the app under test.
 */

export interface ShopifyVariant {
  sku: string;
  /** Decimal string, e.g. "12.50". */
  price: string;
  /** Default 1000. Decremented by successful orderCreate calls. */
  inventoryQuantity?: number;
  /** Default "Default Title". */
  title?: string;
  /** Default: the SKU. */
  productTitle?: string;
}

export interface ShopifyCall {
  /** "OrderbridgeVariants" | "OrderbridgeFindOrder" | "OrderbridgeOrderCreate" | another name found in the query | "". */
  operation: string;
  /** The query text ("" when the body had none). */
  query: string;
  /** The variables object ({} when absent or not an object). */
  variables: Record<string, unknown>;
  /** Node's lower-cased request headers. */
  headers: Record<string, string | string[] | undefined>;
  /** The request target as sent, e.g. "/admin/api/2025-01/graphql.json". */
  path: string;
  /** Date.now() when the request (with its body) was received. */
  at: number;
  /** What the stand-in answered (0 while a call is held: "hang" / create-then-hang). */
  status: number;
}

export interface ShopifyOrderRecord {
  /** The ORDER NODE as answered by orderCreate / found by OrderbridgeFindOrder. */
  node: Record<string, unknown>;
  /** `variables.order` as received. */
  input: Record<string, unknown>;
  /** `variables.options` as received (null when absent). */
  options: unknown;
}

export type ShopifyReply =
  | { kind: "throttled"; currentlyAvailable?: number; requestedQueryCost?: number; restoreRate?: number }
  | { kind: "status"; status: number; retryAfter?: string | number; body?: unknown; headers?: Record<string, string> }
  | { kind: "malformed" }
  | { kind: "wrong-shape" }
  | { kind: "after"; run: "create-then-hang" }
  | "hang";

export interface ShopifyStandIn {
  /** "http://127.0.0.1:<port>" (the adapter appends /admin/api/<version>/graphql.json). */
  url: string;
  /** Every request, in arrival order (including rejected ones). */
  calls: ShopifyCall[];
  /** Orders created, in creation order. */
  orders: ShopifyOrderRecord[];
  /** By SKU; tests may change inventory (read at request time). */
  variants: Map<string, ShopifyVariant & { id: string }>;
  /** Replies consumed first in first out by the next requests that pass the token/version/body checks. */
  queue(...replies: ShopifyReply[]): void;
  /** Like queue, but only for requests of this operation (e.g. "OrderbridgeOrderCreate"); checked first. */
  queueFor(operation: string, ...replies: ShopifyReply[]): void;
  /** Calls whose operation name is `operation`. */
  callsOf(operation: string): ShopifyCall[];
  /** Destroys held sockets and closes the server; idempotent. */
  close(): Promise<void>;
}

export interface ShopifyStandInOptions {
  token: string;
  apiVersion: string;
  variants: ShopifyVariant[];
}

type Json = Record<string, unknown>;

const GRAPHQL_PATH = /^\/admin\/api\/([^/]+)\/graphql\.json$/;
const OPERATION_NAME = /\b(?:query|mutation)\s+([A-Za-z_][A-Za-z0-9_]*)/;
const KNOWN_OPERATIONS: ReadonlySet<string> = new Set(["OrderbridgeVariants", "OrderbridgeFindOrder", "OrderbridgeOrderCreate"]);
const FIRST_VARIANT_ID = 4_000_000_001;
const FIRST_ORDER_ID = 5_000_000_001;
const FIRST_LINE_ITEM_ID = 7_000_000_001;
const FIRST_ORDER_NUMBER = 1001;
const DEFAULT_INVENTORY = 1000;

/** Money is kept as a BigInt scaled by 10^6 so sums are exact. */
const SCALE_DIGITS = 6;
const SCALE = 10n ** BigInt(SCALE_DIGITS);

function normalCost(): Json {
  return {
    cost: {
      requestedQueryCost: 10,
      actualQueryCost: 10,
      throttleStatus: { maximumAvailable: 2000, currentlyAvailable: 1990, restoreRate: 100 },
    },
  };
}

/** Parses a search value `key:"…"` (with \" and \\ escapes) or `key:bare`; undefined when it does not match. */
function parseSearchTerm(search: unknown, key: string): string | undefined {
  if (typeof search !== "string") return undefined;
  const s = search.trim();
  const prefix = `${key}:`;
  if (!s.startsWith(prefix)) return undefined;
  const rest = s.slice(prefix.length);
  const quoted = /^"((?:[^"\\]|\\.)*)"$/.exec(rest);
  if (quoted !== null) return (quoted[1] ?? "").replace(/\\(.)/g, "$1");
  return /^[^\s"]+$/.test(rest) ? rest : undefined;
}

/** A GraphQL variable-coercion error (answered as a top-level `errors` entry, nothing is created). */
class InvalidVariable extends Error {}

/** Parses a Decimal (string or number) to the scaled BigInt; throws InvalidVariable when it is not one. */
function parseMoney(v: unknown, where: string): bigint {
  let text: string;
  if (typeof v === "string") text = v.trim();
  else if (typeof v === "number" && Number.isFinite(v)) text = v.toFixed(SCALE_DIGITS);
  else throw new InvalidVariable(`${where}: expected a decimal, got ${JSON.stringify(v) ?? String(v)}`);
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (m === null) throw new InvalidVariable(`${where}: expected a decimal, got ${JSON.stringify(v)}`);
  const frac = (m[3] ?? "").slice(0, SCALE_DIGITS).padEnd(SCALE_DIGITS, "0");
  const magnitude = BigInt(m[2] ?? "0") * SCALE + BigInt(frac);
  return m[1] === "-" ? -magnitude : magnitude;
}

/** Scaled BigInt → "12.34" (rounded half away from zero). */
function formatMoney(scaled: bigint): string {
  const negative = scaled < 0n;
  const abs = negative ? -scaled : scaled;
  const unit = SCALE / 100n;
  const cents = (abs + unit / 2n) / unit;
  const text = `${cents / 100n}.${(cents % 100n).toString().padStart(2, "0")}`;
  return negative && cents !== 0n ? `-${text}` : text;
}

function moneySet(scaled: bigint, currencyCode: string): Json {
  return { shopMoney: { amount: formatMoney(scaled), currencyCode } };
}

/** `x.priceSet.shopMoney.amount` (or `amountSet` etc.), parsed; undefined when the set is absent. */
function shopMoneyAmount(holder: unknown, setKey: string, where: string): bigint | undefined {
  if (!isPlainObject(holder)) return undefined;
  const set = holder[setKey];
  if (set === undefined || set === null) return undefined;
  if (!isPlainObject(set) || !isPlainObject(set["shopMoney"])) throw new InvalidVariable(`${where}.${setKey}: expected { shopMoney: { amount, currencyCode } }`);
  return parseMoney(set["shopMoney"]["amount"], `${where}.${setKey}.shopMoney.amount`);
}

function shopMoneyCurrency(holder: unknown, setKey: string): string | undefined {
  if (!isPlainObject(holder)) return undefined;
  const set = holder[setKey];
  if (!isPlainObject(set) || !isPlainObject(set["shopMoney"])) return undefined;
  const code = set["shopMoney"]["currencyCode"];
  return typeof code === "string" ? code : undefined;
}

function sumTaxLines(taxLines: unknown, where: string): bigint {
  if (taxLines === undefined || taxLines === null) return 0n;
  if (!Array.isArray(taxLines)) throw new InvalidVariable(`${where}: expected a list`);
  let sum = 0n;
  taxLines.forEach((t: unknown, i) => {
    // OrderCreateTaxLineInput: rate (Decimal!) and title (String!) are non-null.
    if (!isPlainObject(t) || !["string", "number"].includes(typeof t["rate"]) || typeof t["title"] !== "string") {
      throw new InvalidVariable(`${where}[${i}]: rate and title are required (OrderCreateTaxLineInput)`);
    }
    sum += shopMoneyAmount(t, "priceSet", `${where}[${i}]`) ?? 0n;
  });
  return sum;
}

interface UserError {
  field: string[];
  message: string;
  code: string;
}

class ShopifyAdminStandIn implements ShopifyStandIn {
  url = "";
  calls: ShopifyCall[] = [];
  orders: ShopifyOrderRecord[] = [];
  variants = new Map<string, ShopifyVariant & { id: string }>();

  private readonly server: Server;
  private readonly scripted: ShopifyReply[] = [];
  private readonly held = new Set<ServerResponse>();
  private nextOrderId = FIRST_ORDER_ID;
  private nextOrderNumber = FIRST_ORDER_NUMBER;
  private nextLineItemId = FIRST_LINE_ITEM_ID;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: ShopifyStandInOptions) {
    opts.variants.forEach((v, i) => {
      this.variants.set(v.sku, { ...v, id: `gid://shopify/ProductVariant/${FIRST_VARIANT_ID + i}` });
    });
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        // A bug in the stand-in itself: answer 500 so the test fails loudly instead of hanging.
        if (!res.headersSent) {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(`shopify stand-in failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        }
      });
    });
  }

  async listen(): Promise<void> {
    this.url = await listen(this.server);
  }

  queue(...replies: ShopifyReply[]): void {
    this.scripted.push(...replies);
  }

  private readonly scriptedFor = new Map<string, ShopifyReply[]>();

  queueFor(operation: string, ...replies: ShopifyReply[]): void {
    this.scriptedFor.set(operation, [...(this.scriptedFor.get(operation) ?? []), ...replies]);
  }

  callsOf(operation: string): ShopifyCall[] {
    return this.calls.filter((c) => c.operation === operation);
  }

  close(): Promise<void> {
    if (this.closing === undefined) {
      for (const res of this.held) res.socket?.destroy();
      this.held.clear();
      this.closing = close(this.server);
    }
    return this.closing;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    let parsed: unknown;
    let json = false;
    try {
      parsed = JSON.parse(raw) as unknown;
      json = true;
    } catch {
      parsed = undefined;
    }
    const body = isPlainObject(parsed) ? parsed : undefined;
    const query = typeof body?.["query"] === "string" ? body["query"] : undefined;
    const variables = isPlainObject(body?.["variables"]) ? body["variables"] : {};
    const operation = query !== undefined ? (OPERATION_NAME.exec(query)?.[1] ?? "") : "";
    const path = req.url ?? "";
    const call: ShopifyCall = {
      operation,
      query: query ?? "",
      variables,
      headers: { ...req.headers },
      path,
      at: Date.now(),
      status: 0,
    };
    this.calls.push(call);

    // 1. access token
    if (firstHeader(req.headers["x-shopify-access-token"]) !== this.opts.token) {
      this.send(res, call, 401, { errors: "[API] Invalid API key or access token (unrecognized login or wrong password)" });
      return;
    }
    // 2. path and API version
    const pathname = path.split("?")[0] ?? "";
    const m = GRAPHQL_PATH.exec(pathname);
    if (m === null || m[1] !== this.opts.apiVersion) {
      this.send(res, call, 404, { errors: "Not Found" });
      return;
    }
    // 3. body
    if (!json || query === undefined) {
      this.send(res, call, 400, { errors: { query: "Required parameter missing or invalid" } });
      return;
    }

    // 4. scripted replies
    const reply = this.scriptedFor.get(call.operation)?.shift() ?? this.scripted.shift();
    if (reply !== undefined) {
      if (reply === "hang") {
        this.hold(res);
        return;
      }
      switch (reply.kind) {
        case "throttled":
          this.send(res, call, 200, {
            errors: [
              {
                message: "Throttled",
                extensions: { code: "THROTTLED", documentation: "https://shopify.dev/api/usage/rate-limits" },
              },
            ],
            extensions: {
              cost: {
                requestedQueryCost: reply.requestedQueryCost ?? 50,
                actualQueryCost: null,
                throttleStatus: {
                  maximumAvailable: 2000,
                  currentlyAvailable: reply.currentlyAvailable ?? 0,
                  restoreRate: reply.restoreRate ?? 100,
                },
              },
            },
          });
          return;
        case "status": {
          const headers: Record<string, string> = { ...(reply.headers ?? {}) };
          if (reply.retryAfter !== undefined) headers["retry-after"] = String(reply.retryAfter);
          const replyBody = reply.body !== undefined ? reply.body : { errors: STATUS_CODES[reply.status] ?? "Error" };
          this.send(res, call, reply.status, replyBody, headers);
          return;
        }
        case "malformed":
          this.sendText(res, call, 200, '{"data": {"orderCreate": ');
          return;
        case "wrong-shape":
          this.send(res, call, 200, { data: { unexpected: true } });
          return;
        case "after":
          // Do the work (e.g. create the order), then never answer: a timeout after Shopify acted.
          this.operate(operation, variables);
          this.hold(res);
          return;
      }
    }

    const answer = this.operate(operation, variables);
    this.send(res, call, 200, answer);
  }

  /** Runs the operation and returns the 200 body (with cost extensions). */
  private operate(operation: string, variables: Json): Json {
    let result: Json;
    try {
      switch (KNOWN_OPERATIONS.has(operation) ? operation : "") {
        case "OrderbridgeVariants":
          result = { data: this.variantsLookup(variables) };
          break;
        case "OrderbridgeFindOrder":
          result = { data: this.findOrder(variables) };
          break;
        case "OrderbridgeOrderCreate":
          result = { data: this.orderCreate(variables) };
          break;
        default:
          result = { errors: [{ message: "unknown operation" }] };
      }
    } catch (err) {
      if (!(err instanceof InvalidVariable)) throw err;
      result = {
        errors: [
          {
            message: `Variable $order of type OrderCreateOrderInput! was provided invalid value (${err.message})`,
            extensions: { code: "INVALID_VARIABLE" },
          },
        ],
      };
    }
    return { ...result, extensions: normalCost() };
  }

  private variantNode(v: ShopifyVariant & { id: string }): Json {
    return {
      id: v.id,
      sku: v.sku,
      title: v.title ?? "Default Title",
      price: formatMoney(parseMoney(v.price, `variant ${v.sku} price`)),
      inventoryQuantity: v.inventoryQuantity ?? DEFAULT_INVENTORY,
      product: { title: v.productTitle ?? v.sku },
    };
  }

  private variantsLookup(variables: Json): Json {
    const data: Json = {};
    const indexes = Object.keys(variables)
      .map((k) => /^q(\d+)$/.exec(k))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    for (const n of indexes) {
      const sku = parseSearchTerm(variables[`q${n}`], "sku");
      const nodes = sku === undefined ? [] : [...this.variants.values()].filter((v) => v.sku === sku).map((v) => this.variantNode(v));
      data[`v${n}`] = { nodes };
    }
    return data;
  }

  private findOrder(variables: Json): Json {
    const tag = parseSearchTerm(variables["query"], "tag");
    const found =
      tag === undefined
        ? undefined
        : this.orders.find((o) => {
            const tags = o.node["tags"];
            return Array.isArray(tags) && tags.includes(tag);
          });
    return { orders: { nodes: found === undefined ? [] : [found.node] } };
  }

  private variantById(id: unknown): (ShopifyVariant & { id: string }) | undefined {
    for (const v of this.variants.values()) if (v.id === id) return v;
    return undefined;
  }

  private orderCreate(variables: Json): Json {
    const input = variables["order"];
    if (!isPlainObject(input)) throw new InvalidVariable("order: expected an OrderCreateOrderInput object");
    const currency = typeof input["currency"] === "string" ? input["currency"] : "USD";
    const userErrors: UserError[] = [];

    const lineItems = input["lineItems"];
    const lines = Array.isArray(lineItems) ? (lineItems as unknown[]) : [];
    if (lines.length === 0) {
      userErrors.push({ field: ["order", "lineItems"], message: "Line items can't be empty", code: "INVALID" });
    }

    // Validate every line; inventory is checked against the running total per variant.
    const requested = new Map<string, number>();
    const planned: { variant: ShopifyVariant & { id: string }; quantity: number; unit: bigint; currency: string; line: Json }[] = [];
    let subtotal = 0n;
    let tax = 0n;
    lines.forEach((line: unknown, i) => {
      const where = `order.lineItems[${i}]`;
      if (!isPlainObject(line)) throw new InvalidVariable(`${where}: expected an object`);
      const quantity = line["quantity"];
      if (typeof quantity !== "number" || !Number.isInteger(quantity)) throw new InvalidVariable(`${where}.quantity: expected an Int`);
      const unitOverride = shopMoneyAmount(line, "priceSet", where);
      tax += sumTaxLines(line["taxLines"], `${where}.taxLines`);
      const variant = this.variantById(line["variantId"]);
      if (variant === undefined) {
        userErrors.push({
          field: ["order", "lineItems", String(i), "variantId"],
          message: `Variant ${String(line["variantId"])} does not exist`,
          code: "INVALID",
        });
        return;
      }
      if (quantity < 1) {
        userErrors.push({
          field: ["order", "lineItems", String(i), "quantity"],
          message: "Quantity must be greater than or equal to 1",
          code: "INVALID",
        });
        return;
      }
      const total = (requested.get(variant.sku) ?? 0) + quantity;
      requested.set(variant.sku, total);
      if (total > (variant.inventoryQuantity ?? DEFAULT_INVENTORY)) {
        userErrors.push({
          field: ["order", "lineItems", String(i), "quantity"],
          message: `${variant.sku} is out of stock`,
          code: "INVENTORY_NOT_AVAILABLE",
        });
        return;
      }
      const unit = unitOverride ?? parseMoney(variant.price, `variant ${variant.sku} price`);
      subtotal += unit * BigInt(quantity);
      planned.push({ variant, quantity, unit, currency: shopMoneyCurrency(line, "priceSet") ?? currency, line });
    });

    let shipping = 0n;
    const shippingLines = input["shippingLines"];
    if (shippingLines !== undefined && shippingLines !== null) {
      if (!Array.isArray(shippingLines)) throw new InvalidVariable("order.shippingLines: expected a list");
      shippingLines.forEach((s: unknown, i) => {
        shipping += shopMoneyAmount(s, "priceSet", `order.shippingLines[${i}]`) ?? 0n;
        // Shopify's totalTaxSet includes the shipping lines' taxes.
        tax += sumTaxLines(isPlainObject(s) ? s["taxLines"] : undefined, `order.shippingLines[${i}].taxLines`);
      });
    }
    tax += sumTaxLines(input["taxLines"], "order.taxLines");
    const discountCode = input["discountCode"];
    const fixed = isPlainObject(discountCode) ? discountCode["itemFixedDiscountCode"] : undefined;
    const discounts = shopMoneyAmount(fixed, "amountSet", "order.discountCode.itemFixedDiscountCode") ?? 0n;

    if (userErrors.length > 0) return { orderCreate: { order: null, userErrors } };

    // Commit: decrement inventory, number the order and its lines, store.
    for (const p of planned) p.variant.inventoryQuantity = (p.variant.inventoryQuantity ?? DEFAULT_INVENTORY) - p.quantity;
    const legacyId = this.nextOrderId++;
    const rawTags = input["tags"];
    const tags =
      typeof rawTags === "string"
        ? rawTags
            .split(",")
            .map((t) => t.trim())
            .filter((t) => t !== "")
        : Array.isArray(rawTags)
          ? rawTags.filter((t): t is string => typeof t === "string")
          : [];
    const node: Json = {
      id: `gid://shopify/Order/${legacyId}`,
      legacyResourceId: String(legacyId),
      name: `#${this.nextOrderNumber++}`,
      createdAt: new Date().toISOString(),
      currencyCode: currency,
      displayFinancialStatus: typeof input["financialStatus"] === "string" ? input["financialStatus"] : "PENDING",
      tags,
      subtotalPriceSet: moneySet(subtotal, currency),
      totalShippingPriceSet: moneySet(shipping, currency),
      totalTaxSet: moneySet(tax, currency),
      totalDiscountsSet: moneySet(discounts, currency),
      totalPriceSet: moneySet(subtotal + shipping + tax - discounts, currency),
      lineItems: {
        nodes: planned.map((p) => {
          const properties = p.line["properties"];
          const customAttributes = Array.isArray(properties) ? properties.filter(isPlainObject).map((prop) => ({ key: prop["name"], value: prop["value"] })) : [];
          return {
            id: `gid://shopify/LineItem/${this.nextLineItemId++}`,
            sku: p.variant.sku,
            quantity: p.quantity,
            customAttributes,
            originalUnitPriceSet: moneySet(p.unit, p.currency),
          };
        }),
      },
    };
    this.orders.push({ node, input, options: "options" in variables ? variables["options"] : null });
    return { orderCreate: { order: node, userErrors: [] } };
  }

  private hold(res: ServerResponse): void {
    this.held.add(res);
    res.on("close", () => this.held.delete(res));
  }

  private send(res: ServerResponse, call: ShopifyCall, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
    this.sendText(res, call, status, JSON.stringify(body ?? null), extraHeaders);
  }

  private sendText(res: ServerResponse, call: ShopifyCall, status: number, text: string, extraHeaders: Record<string, string> = {}): void {
    call.status = status;
    const headers: Record<string, string> = {
      "content-type": "application/json; charset=utf-8",
      ...extraHeaders,
      "content-length": String(Buffer.byteLength(text)),
    };
    res.writeHead(status, headers);
    res.end(text);
  }
}

/** Start a Shopify Admin GraphQL stand-in on 127.0.0.1 (a free port). Close it with `close()`. */
export async function startShopifyStandIn(opts: ShopifyStandInOptions): Promise<ShopifyStandIn> {
  const standIn = new ShopifyAdminStandIn(opts);
  await standIn.listen();
  return standIn;
}
