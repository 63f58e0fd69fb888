import { createHash } from "node:crypto";
import { ConfigError, PlatformError } from "../../errors.js";
import { createHttpClient, failureWords, OutboundFailure, type OutboundResponse } from "../../outbound/http-client.js";
import { EXCERPT_CHARS } from "../../outbound/refusal.js";
import { retrying } from "../../outbound/retry.js";
import { parseRetryAfter } from "../../outbound/retry-policy.js";
import { currencyExponent, formatAmount, formatMinor, multiplyAmount, parseDecimal, roundAmount } from "../../money.js";
import { differencesAsText, settleCharged } from "../../orders/amounts.js";
import {
  ERROR_CLASS_PLATFORM,
  type CartToClear,
  type CreateOrderContext,
  type LineResult,
  type NormalizedOrder,
  type PlatformAdapter,
  type PlatformOrderResult,
} from "../../orders/types.js";
import { remoteRequestId, type Scrub } from "../../security/scrub.js";
import type { Logger } from "../../logger.js";
import { parseSigningKey } from "../../security/standard-webhooks.js";
import type { Validator } from "../../validation/schemas.js";

/** The answer an HTTP platform gives (schemas/platform-http/order-response.schema.json). */
export interface HttpOrderResponse {
  order: null | {
    platformOrderId: string;
    orderNumber: string;
    createdAt?: string;
    status?: string;
    state?: string;
    subtotal?: string;
    shippingTotal?: string;
    taxTotal?: string;
    discountTotal?: string;
    total?: string;
  };
  lines: (
    | {
        ref: string;
        ok: true;
        platformItemId: string;
        name?: string;
        unitPrice?: string;
        shippingTotal?: string;
        taxTotal?: string;
        discountTotal?: string;
        lineTotal?: string;
      }
    | { ref: string; ok: false; message: string; errorClass?: string }
  )[];
  replayed?: boolean;
}

export interface HttpPlatformOptions {
  url: string;
  /** Where `cart.clear` goes; without it the platform has no carts. */
  cartUrl?: string | undefined;
  /** Standard Webhooks key: `whsec_<base64>`, `<base64>` or `raw:<ASCII text>` (src/security/standard-webhooks.ts). */
  secret: string;
  /** One attempt's timeout; the caller's deadline bounds all attempts together. */
  timeoutMs: number;
  validateResponse: Validator<HttpOrderResponse>;
  clock?: () => number;
  /** Backoff between attempts (defaults: 200 ms doubling to 2 s). */
  backoff?: { baseMs: number; maxMs: number };
}

/** The same delivery id on every attempt for one idempotency key, so the receiver can deduplicate. */
export const deliveryId = (key: string): string => `msg_${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;

/**
 * The generic HTTP platform: each order is POSTed as JSON to the merchant's own system, signed the
 * Standard Webhooks way. Network errors, timeouts, 408, 429 and 5xx are retried with the same
 * delivery id until the caller's deadline; other 4xx and answers that break the published schema
 * are platform errors that are not retried. Nothing is kept between attempts.
 */
export function createHttpPlatform(o: HttpPlatformOptions): PlatformAdapter {
  const clock = o.clock ?? Date.now;
  // Config validated it already; a caller that did not learns it here, before any request.
  const checked = parseSigningKey(o.secret);
  if (!checked.ok) throw new ConfigError(checked.problem);
  const signingKey = checked.key;
  const backoff = o.backoff ?? { baseMs: 200, maxMs: 2000 };
  const http = createHttpClient({
    timeoutMs: o.timeoutMs,
    headers: { "Content-Type": "application/json", Accept: "application/json", "User-Agent": "orderbridge" },
  });

  /**
   * POSTs a signed body, retrying what may succeed later; resolves with a 2xx answer's text.
   * `outcome` names what the request does ("placed", "cleared") for the caller's message. Errors
   * answer the status, the kind of failure and the platform's request id; what the platform wrote
   * goes to their detail, scrubbed of the order's values, the signing key and the signature.
   */
  async function send(url: string, key: string, body: string, what: string, outcome: string, ctx: { signal: AbortSignal; log: Logger; scrub: Scrub }): Promise<string> {
    const { signal } = ctx;
    const id = deliveryId(key);
    // Whether any attempt may have reached the platform: only failures to connect prove it did not.
    let reached = false;
    const notPlaced = (): { notPlaced: boolean } => ({ notPlaced: !reached });
    const fate = (): string => (reached ? `it may have been ${outcome}` : `it was not ${outcome}`);
    let detail: string | undefined;
    const pastDeadline = (): PlatformError => new PlatformError(`the http platform did not complete ${what} before the deadline; ${fate()}`, true, { ...notPlaced(), detail });
    return retrying<string>({
      signal,
      backoff,
      maxWaitMs: backoff.maxMs * 5,
      attempt: async () => {
        if (signal.aborted) throw pastDeadline();
        const ts = Math.floor(clock() / 1000);
        const signature = signingKey.sign(id, ts, body);
        const scrub = ctx.scrub.with([...signingKey.forms, signature, signature.replace(/^v1,/, "")]);
        let res: OutboundResponse;
        try {
          res = await http.request({
            method: "POST",
            url,
            body,
            signal,
            headers: { "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": signature },
          });
        } catch (e) {
          if (!(e instanceof OutboundFailure)) throw e;
          if (e.mayHaveArrived) reached = true;
          detail = scrub.excerpt(`${what} failed: ${e.message}`, EXCERPT_CHARS);
          if (signal.aborted) throw pastDeadline();
          return { failure: `${what} failed (${failureWords(e)})` };
        }
        reached = true;
        if (res.status >= 200 && res.status < 300) return { done: res.text };
        const rid = remoteRequestId(res.headers["x-request-id"], scrub);
        const failure = `${what} → HTTP ${res.status}${rid === undefined ? "" : ` (request id ${rid})`}`;
        detail = scrub.excerpt(res.text, EXCERPT_CHARS) || undefined;
        const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
        if (!retryable) throw new PlatformError(`the http platform refused ${failure}; it was not ${outcome}`, false, { notPlaced: true, detail });
        return { failure, waitMs: parseRetryAfter(res.headers["retry-after"], clock()) };
      },
      // The last failure's words reach the log with the final error; this says what each attempt met.
      onRetry: ({ failure, attempt, waitMs }) => ctx.log.warn("the http platform failed; retrying", { failure, detail, attempt, retryInMs: waitMs }),
      giveUp: ({ failure, attempts }) =>
        new PlatformError(`the http platform is unavailable (${failure}); gave up at the deadline after ${attempts} attempt(s); ${fate()}`, true, {
          ...notPlaced(),
          detail,
        }),
    });
  }

  async function createOrder(order: NormalizedOrder, ctx: CreateOrderContext): Promise<PlatformOrderResult> {
    const body = JSON.stringify({ type: "order.create", idempotencyKey: ctx.idempotencyKey, order: toWire(order) });
    const text = await send(o.url, ctx.idempotencyKey, body, "POST order", "placed", ctx);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new PlatformError("the http platform answered POST order with a body that is not JSON; it may have been placed", false, {
        detail: ctx.scrub.with(signingKey.forms).excerpt(text, EXCERPT_CHARS),
      });
    }
    let answer: HttpOrderResponse;
    try {
      answer = o.validateResponse(parsed);
    } catch (e) {
      // The pointers and rules (ours) are answered; the answer's values are not quoted by them.
      throw new PlatformError(
        `the http platform's answer to POST order does not match schemas/platform-http/order-response.schema.json (${(e as Error).message.replace(/^The request body does not match the schema: /, "")}); it may have been placed`,
        false,
        { detail: ctx.scrub.with(signingKey.forms).excerpt(text, EXCERPT_CHARS) },
      );
    }
    return fromWire(order, answer, clock);
  }

  async function clearCart(cart: CartToClear, ctx: { signal: AbortSignal; log: Logger; scrub: Scrub }): Promise<void> {
    const body = JSON.stringify({
      type: "cart.clear",
      cartId: cart.cartId,
      source: cart.source,
      ...(cart.customerEmail === undefined ? {} : { customerEmail: cart.customerEmail }),
    });
    await send(o.cartUrl as string, `cart:${cart.cartId}`, body, "POST cart.clear", "cleared", ctx);
  }

  return { name: "http", createOrder, ...(o.cartUrl === undefined ? {} : { clearCart }) };
}

/**
 * The normalised order as the published request schema has it. Amounts are decimal strings in the
 * currency's unit, each rounded once, except a fixed unit price, which is sent exactly as the
 * source gave it (with the line's subtotal, rounded once, beside it).
 */
export function toWire(order: NormalizedOrder): Record<string, unknown> {
  const exp = currencyExponent(order.currency);
  const m = (n: number): string => formatMinor(n, exp);
  const r = (a: string): string => m(roundAmount(a, exp));
  const settled = settleCharged(order, exp);
  const totals: Record<string, string> = {};
  if (settled !== undefined) for (const [k, v] of Object.entries(settled.totals)) totals[k] = m(v);
  else for (const [k, v] of Object.entries(order.charged ?? {})) totals[k] = r(v);
  return {
    source: order.source,
    sourceOrderId: order.sourceOrderId ?? null,
    allowPartial: order.allowPartial,
    currency: order.currency,
    customer: order.customer,
    ...(order.billingAddress === undefined ? {} : { billingAddress: order.billingAddress }),
    ...(order.shippingAddress === undefined ? {} : { shippingAddress: order.shippingAddress }),
    ...(order.shippingMethodCode === undefined ? {} : { shippingMethodCode: order.shippingMethodCode }),
    couponCodes: order.couponCodes,
    ...(order.payment === undefined ? {} : { payment: order.payment }),
    lines: order.lines.map((l) => ({
      ref: l.ref,
      sku: l.sku,
      quantity: l.quantity,
      ...(l.description === undefined ? {} : { description: l.description }),
      ...(l.requiresShipping === undefined ? {} : { requiresShipping: l.requiresShipping }),
      ...(l.fixedUnitPrice === undefined ? {} : { unitPrice: formatAmount(l.fixedUnitPrice, exp), subtotal: r(multiplyAmount(l.fixedUnitPrice, l.quantity)) }),
      ...(l.fixedTaxTotal === undefined ? {} : { taxTotal: r(l.fixedTaxTotal) }),
      ...(l.subscriptionId === undefined ? {} : { subscriptionId: l.subscriptionId }),
      ...(l.properties === undefined ? {} : { properties: l.properties }),
    })),
    ...(order.shippingLines === undefined
      ? {}
      : {
          shippingLines: order.shippingLines.map((s) => ({
            code: s.code,
            ...(s.title === undefined ? {} : { title: s.title }),
            price: r(s.price),
            ...(s.taxTotal === undefined ? {} : { taxTotal: r(s.taxTotal) }),
          })),
        }),
    ...(order.discounts === undefined ? {} : { discounts: order.discounts.map((d) => ({ ...d, amount: r(d.amount) })) }),
    ...(Object.keys(totals).length === 0 ? {} : { totals }),
    ...(settled === undefined || settled.differences.length === 0 ? {} : { amountDifferences: differencesAsText(settled.differences, exp) }),
    ...(order.note === undefined ? {} : { note: order.note }),
    ...(order.tags === undefined ? {} : { tags: order.tags }),
    ...(order.attributes === undefined ? {} : { attributes: order.attributes }),
  };
}

/** The platform's answer → our result; amounts it leaves out default to what we sent. */
function fromWire(order: NormalizedOrder, a: HttpOrderResponse, clock: () => number): PlatformOrderResult {
  const exp = currencyExponent(order.currency);
  const m = (s: string | undefined): number | undefined => (s === undefined ? undefined : parseDecimal(s, exp));
  const sent = settleCharged(order, exp)?.totals;
  const byRef = new Map(a.lines.map((l) => [l.ref, l]));
  const lines: LineResult[] = [];
  for (const line of order.lines) {
    const r = byRef.get(line.ref);
    if (r === undefined) continue; // reported by the pipeline's completeness check
    if (!r.ok) {
      lines.push({ ok: false, ref: line.ref, sku: line.sku, message: r.message, errorClass: r.errorClass ?? ERROR_CLASS_PLATFORM });
      continue;
    }
    if (a.order !== null && r.platformItemId === "") {
      throw new PlatformError(`the http platform placed order ${a.order.orderNumber} but gave line ${line.ref} no platformItemId`, false);
    }
    const fixed = (a: string | undefined): number | undefined => (a === undefined ? undefined : roundAmount(a, exp));
    const unitPrice = m(r.unitPrice) ?? fixed(line.fixedUnitPrice) ?? 0;
    const shippingTotal = m(r.shippingTotal) ?? 0;
    const taxTotal = m(r.taxTotal) ?? fixed(line.fixedTaxTotal) ?? 0;
    const discountTotal = m(r.discountTotal) ?? 0;
    const subtotal =
      line.fixedUnitPrice !== undefined && r.unitPrice === undefined ? roundAmount(multiplyAmount(line.fixedUnitPrice, line.quantity), exp) : unitPrice * line.quantity;
    lines.push({
      ok: true,
      ref: line.ref,
      platformItemId: r.platformItemId,
      sku: line.sku,
      name: r.name ?? line.description ?? line.sku,
      quantity: line.quantity,
      requiresShipping: line.requiresShipping ?? true,
      unitPrice,
      shippingTotal,
      taxTotal,
      discountTotal,
      lineTotal: m(r.lineTotal) ?? subtotal + shippingTotal + taxTotal - discountTotal,
    });
  }
  const placed = a.order;
  const ok = lines.filter((l): l is Extract<LineResult, { ok: true }> => l.ok);
  const sum = (f: (l: Extract<LineResult, { ok: true }>) => number): number => ok.reduce((s, l) => s + f(l), 0);
  return {
    order:
      placed === null
        ? null
        : {
            platformOrderId: placed.platformOrderId,
            orderNumber: placed.orderNumber,
            createdAt: placed.createdAt ?? new Date(Math.floor(clock() / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"),
            currency: order.currency,
            status: placed.status ?? "placed",
            state: placed.state ?? "open",
            subtotal: m(placed.subtotal) ?? sent?.subtotal ?? sum((l) => l.unitPrice * l.quantity),
            shippingTotal: m(placed.shippingTotal) ?? sent?.shippingTotal ?? sum((l) => l.shippingTotal),
            taxTotal: m(placed.taxTotal) ?? sent?.taxTotal ?? sum((l) => l.taxTotal),
            discountTotal: m(placed.discountTotal) ?? sent?.discountTotal ?? sum((l) => l.discountTotal),
            total: m(placed.total) ?? sent?.total ?? sum((l) => l.lineTotal),
          },
    lines,
    replayed: a.replayed === true,
  };
}
