import type { JobHandler } from "../jobs/worker.js";
import type { InStorePlatform } from "../orders/placement.js";
import type { PlatformAdapter } from "../orders/types.js";
import type { RechargeClient, RechargeResponse } from "../recharge/client.js";
import type { Validator } from "../validation/schemas.js";
import { inSpan, inSpanSync, linkTo, SpanKind, traced } from "./tracing.js";

/*
 * The spans of orderbridge's own steps, put around its parts by the composition root (service.ts):
 * the parts themselves know nothing of tracing. Each is a plain call while tracing is off.
 */

/** Each validation in a span (`subscribe-pro.validate`); the validator keeps its schema id. */
export function tracedValidator<T>(name: string, v: Validator<T>): Validator<T> {
  const wrapped = ((value: unknown) => inSpanSync(name, {}, () => v(value))) as Validator<T>;
  Object.defineProperty(wrapped, "schemaId", { value: v.schemaId });
  return wrapped;
}

/** Each platform call in a client span, `platform.create_order` / `platform.clear_cart`, with the platform's name and the outcome. */
export function tracePlatform(platform: PlatformAdapter): PlatformAdapter {
  const attributes = { "orderbridge.platform": platform.name };
  const out: PlatformAdapter = {
    ...platform,
    createOrder: traced(
      "platform.create_order",
      { kind: SpanKind.CLIENT, attributes },
      (order, ctx) => platform.createOrder(order, ctx),
      (span, r) => {
        span.setAttributes({
          ...(r.order === null ? {} : { "orderbridge.order_number": r.order.orderNumber }),
          "orderbridge.lines_refused": r.lines.filter((l) => !l.ok).length,
        });
      },
    ),
  };
  if (platform.clearCart !== undefined) {
    const clear = platform.clearCart.bind(platform);
    out.clearCart = traced("platform.clear_cart", { kind: SpanKind.CLIENT, attributes }, (cart, ctx) => clear(cart, ctx));
  }
  return out;
}

/** The in-store platform's placement in the same client span as any other platform's (`platform.create_order`). */
export function traceInStore(platform: InStorePlatform): InStorePlatform {
  const attributes = { "orderbridge.platform": platform.name };
  return {
    name: platform.name,
    placeAndRecord: (order, key, record, o) =>
      inSpan("platform.create_order", { kind: SpanKind.CLIENT, attributes }, async (span) => {
        const r = await platform.placeAndRecord(order, key, record, o);
        span.setAttributes({
          ...(r.result.order === null ? {} : { "orderbridge.order_number": r.result.order.orderNumber }),
          "orderbridge.lines_refused": r.result.lines.filter((l) => !l.ok).length,
        });
        return r;
      }),
  };
}

/** Each Recharge API call in a client span (`recharge PUT`), with the answer's status. */
export function traceRechargeClient(client: RechargeClient): RechargeClient {
  const status = (span: { setAttribute(k: string, v: number): unknown }, r: RechargeResponse): void => void span.setAttribute("http.response.status_code", r.status);
  const span = <A extends unknown[]>(method: "PUT" | "GET" | "POST" | "DELETE", call: (...args: A) => Promise<RechargeResponse>) =>
    traced(`recharge ${method}`, { kind: SpanKind.CLIENT, attributes: { "http.request.method": method } }, call, status);
  return {
    ...client,
    put: span("PUT", (path, body, version, signal) => client.put(path, body, version, signal)),
    get: span("GET", (path, version, signal, opts) => client.get(path, version, signal, opts)),
    post: span("POST", (path, body, version, signal) => client.post(path, body, version, signal)),
    delete: span("DELETE", (path, version, signal) => client.delete(path, version, signal)),
  };
}

/**
 * Each run of a job in a consumer span (`job recharge.put-order`), linked to the span that queued
 * it (the request, or the run of the job before it) when the job kept its trace context.
 */
export function traceHandlers(handlers: Record<string, JobHandler>): Record<string, JobHandler> {
  return Object.fromEntries(
    Object.entries(handlers).map(([kind, handler]) => [
      kind,
      ((job, ctx) =>
        inSpan(
          `job ${kind}`,
          {
            kind: SpanKind.CONSUMER,
            attributes: {
              "orderbridge.job.id": job.id,
              "orderbridge.job.kind": kind,
              "orderbridge.job.attempt": ctx.attempt,
              ...(job.correlation_id === null ? {} : { "orderbridge.request_id": job.correlation_id }),
            },
            links: linkTo(job.trace_context),
          },
          async (span) => {
            const r = await handler(job, ctx);
            span.setAttributes({ "orderbridge.job.state": r.state, "orderbridge.job.outcome": r.outcome });
            return r;
          },
        )) satisfies JobHandler,
    ]),
  );
}
