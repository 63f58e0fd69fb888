import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span } from "@opentelemetry/api";
import type { NextFunction, Request, Response } from "express";
import type { Config } from "../config.js";
import { matchedRoute } from "../http/context.js";
import type { Logger } from "../logger.js";
import { VERSION } from "../version.js";

/**
 * Optional OpenTelemetry tracing. On when OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) is set:
 * the SDK and the OTLP/HTTP exporter are loaded only then, so a service without a collector pays
 * nothing — every helper here is a plain call while tracing is off.
 *
 * One trace follows an order: the HTTP request (a W3C `traceparent` it carries is continued), the
 * signature check, the validation, the placement and the platform call; a Recharge delivery's
 * inbox event and each write-back attempt are spans of their own, linked to the request that
 * caused them (the job keeps its trace context). Spans carry ids, routes, outcomes and statuses —
 * never bodies, headers, secrets or payment data.
 */

export const TRACER_NAME = "orderbridge";

let enabled = false;

export interface Tracing {
  readonly enabled: boolean;
  /** Exports what is still buffered and stops tracing. */
  shutdown(): Promise<void>;
}

const OFF: Tracing = { enabled: false, shutdown: async () => undefined };

/** The traces URL the settings name, if any: the traces endpoint as given, or `<endpoint>/v1/traces`. */
export function tracesUrl(c: Config["tracing"]): string | undefined {
  if (c.tracesEndpoint !== undefined) return c.tracesEndpoint;
  if (c.endpoint === undefined) return undefined;
  return `${c.endpoint.replace(/\/+$/, "")}/v1/traces`;
}

/**
 * Starts tracing when the settings name a collector: registers a tracer provider for this process
 * (AsyncLocalStorage context, W3C trace context and baggage propagation) exporting over OTLP/HTTP
 * (JSON) in batches. The SDK's own OTEL_* variables (sampler, batch sizes) apply as usual.
 */
export async function startTracing(c: Config["tracing"], meta: { log: Logger }): Promise<Tracing> {
  const url = tracesUrl(c);
  if (url === undefined) return OFF;
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import("@opentelemetry/sdk-trace-node"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
  ]);
  const exporter = new OTLPTraceExporter({ url, headers: { ...c.headers } });
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": c.serviceName, "service.version": VERSION, "process.pid": process.pid }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register();
  enabled = true;
  meta.log.info("tracing on: spans are exported over OTLP/HTTP", { url: new URL(url).origin + new URL(url).pathname });
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    shutdown() {
      stopped ??= (async () => {
        enabled = false;
        try {
          await provider.shutdown();
        } catch (e) {
          meta.log.warn("could not export the last spans", { error: (e as Error).message });
        }
        // So that a later start in the same process (tests) registers afresh.
        trace.disable();
        context.disable();
        propagation.disable();
      })();
      return stopped;
    },
  };
}

/** Whether tracing was started (TRACING=on); the app installs its request middleware only then. */
export function tracingEnabled(): boolean {
  return enabled;
}

const NOOP_SPAN: Span = trace.wrapSpanContext({ traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 0 });

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  links?: Link[];
}

/**
 * Runs `fn` in a span (the active one while it runs, so spans started inside are its children); a
 * rejection is recorded as the span's error status with the error's name and message (our own
 * messages: remote text in them is scrubbed where the error is made) and thrown on.
 */
export function inSpan<T>(name: string, o: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  if (!enabled) return fn(NOOP_SPAN);
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, apiOptions(o), async (span) => {
    try {
      return await fn(span);
    } catch (e) {
      failSpan(span, e);
      throw e;
    } finally {
      span.end();
    }
  });
}

/** inSpan for synchronous work (a validation). */
export function inSpanSync<T>(name: string, o: SpanOptions, fn: (span: Span) => T): T {
  if (!enabled) return fn(NOOP_SPAN);
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, apiOptions(o), (span) => {
    try {
      return fn(span);
    } catch (e) {
      failSpan(span, e);
      throw e;
    } finally {
      span.end();
    }
  });
}

/** `fn` with every call in a span of its own. */
export function traced<A extends unknown[], R>(name: string, o: SpanOptions, fn: (...args: A) => Promise<R>, onResult?: (span: Span, r: R) => void): (...args: A) => Promise<R> {
  return (...args) =>
    enabled
      ? inSpan(name, o, async (span) => {
          const r = await fn(...args);
          onResult?.(span, r);
          return r;
        })
      : fn(...args);
}

function apiOptions(o: SpanOptions): { kind: SpanKind; attributes?: Attributes; links?: Link[] } {
  return { kind: o.kind ?? SpanKind.INTERNAL, ...(o.attributes === undefined ? {} : { attributes: o.attributes }), ...(o.links === undefined ? {} : { links: o.links }) };
}

function failSpan(span: Span, e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  // The exception event without its stack: names and messages only.
  span.addEvent("exception", { "exception.type": err.name, "exception.message": err.message });
}

/** The active span's W3C `traceparent`, to keep with work done later (a job); undefined when tracing is off. */
export function currentTraceparent(): string | undefined {
  if (!enabled) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier["traceparent"];
}

/** A link to the span a stored `traceparent` names (the request that queued a job), if it is one. */
export function linkTo(traceparent: string | null | undefined): Link[] {
  if (!enabled || traceparent === null || traceparent === undefined) return [];
  const spanContext = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, { traceparent }));
  return spanContext === undefined ? [] : [{ context: spanContext }];
}

/**
 * The server span of every request: continues the caller's `traceparent`, is named by the route's
 * pattern once it is known (`POST /webhooks/recharge/*topic`, a closed set), and ends when the
 * answer is sent, with its status (5xx is an error).
 */
export function traceRequests() {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!enabled) return next();
    const parent: Context = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = trace
      .getTracer(TRACER_NAME)
      .startSpan(req.method, { kind: SpanKind.SERVER, attributes: { "http.request.method": req.method, "url.scheme": req.protocol } }, parent);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      const route = matchedRoute(req, res);
      if (route !== undefined) {
        span.setAttribute("http.route", route);
        span.updateName(`${req.method} ${route}`);
      }
      const ctxLocals = res.locals["ctx"] as { requestId?: string } | undefined;
      if (ctxLocals?.requestId !== undefined) span.setAttribute("orderbridge.request_id", ctxLocals.requestId);
      span.setAttribute("http.response.status_code", res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      if (!res.writableFinished) span.setAttribute("orderbridge.aborted", true);
      span.end();
    };
    res.once("finish", end);
    res.once("close", end);
    context.with(trace.setSpan(parent, span), next);
  };
}

/** An Express middleware run in a span of its own (e.g. the signature check), ended when it calls next. */
export function tracedMiddleware(name: string, mw: (req: Request, res: Response, next: NextFunction) => unknown) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!enabled) {
      mw(req, res, next);
      return;
    }
    const span = trace.getTracer(TRACER_NAME).startSpan(name);
    let ended = false;
    const done = (err?: unknown): void => {
      if (ended) return;
      ended = true;
      if (err !== undefined && err !== null && err !== "route" && err !== "router") failSpan(span, err);
      span.end();
    };
    // A middleware that answers without calling next (or throws) ends its span with the answer.
    res.once("finish", () => done());
    // What comes after it runs beside it, not inside it.
    const outer = context.active();
    context.with(trace.setSpan(outer, span), () => {
      try {
        const r = mw(req, res, (err?: unknown) => {
          done(err);
          context.with(outer, () => next(err));
        });
        if (r instanceof Promise) {
          r.catch((e: unknown) => {
            done(e);
            next(e);
          });
        }
      } catch (e) {
        done(e);
        throw e;
      }
    });
  };
}

export { SpanKind };
