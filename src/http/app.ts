import { bearerTokenCheck } from "../security/bearer-token.js";
import express, { type NextFunction, type Request, type Response } from "express";
import helmet from "helmet";
import type { Config } from "../config.js";
import {
  AppError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadError,
  PayloadTooLargeError,
  PlatformError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
  toErrorResponse,
} from "../errors.js";
import type { Logger } from "../logger.js";
import { methodLabel, renderMetrics, webhookTopicLabel, type Metrics } from "../metrics.js";
import type { RechargeAck, RechargeDelivery } from "../recharge/receive.js";
import { normalizeTopic } from "../recharge/receive.js";
import { adminRouter, type AdminDeps } from "./admin.js";
import { consoleRouter, type ConsoleDeps } from "./console/router.js";
import { loadOpenApi } from "./openapi.js";
import { ROUTES } from "./routes.js";
import { isStoreUnavailable } from "../store/db.js";
import type { CallbackInput, CallbackOutput } from "../subscribe-pro/callback.js";
import type { ObservedCallback } from "../subscribe-pro/callback-log.js";
import { ctx, requestContext } from "./context.js";
import { pathParam, refuseUndecodablePath } from "./path.js";
import { spPreBody, spVerifySignature, type SpAuthPolicy } from "./subscribe-pro-auth.js";
import { tracedMiddleware, traceRequests, tracingEnabled } from "../telemetry/tracing.js";

export interface AppDeps {
  config: Pick<Config, "trustProxy" | "bodyLimitBytes" | "adminToken" | "metricsToken">;
  metrics: Metrics;
  log: Logger;
  spAuth: SpAuthPolicy;
  handleCallback: (input: CallbackInput) => Promise<CallbackOutput>;
  /** Undefined when Recharge webhooks are off (no RECHARGE_CLIENT_SECRETS). */
  receiveRecharge: ((d: RechargeDelivery) => Promise<RechargeAck>) | undefined;
  ping: () => Promise<void>;
  admin: AdminDeps;
  /** The operator console (with ADMIN_TOKEN). */
  console?: ConsoleDeps;
  /** Told every Subscribe Pro callback once it is answered (the callback log). */
  recordCallback?: (c: ObservedCallback) => void;
}

/** Builds the Express application. No business logic here: routes adapt HTTP to the use cases. */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.set("trust proxy", deps.config.trustProxy);
  app.set("etag", false);
  // Tracing off (the default): no layer at all for it.
  if (tracingEnabled()) app.use(traceRequests());
  app.use(helmet());
  app.use(requestContext(deps.log, observer(deps.metrics, deps.recordCallback)));
  app.use(refuseUndecodablePath);

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  const metricsAuthorized = deps.config.metricsToken === undefined ? undefined : bearerTokenCheck(deps.config.metricsToken);
  app.get(ROUTES.metrics, async (req, res) => {
    const header = req.get("authorization");
    if (metricsAuthorized !== undefined && !metricsAuthorized(header)) {
      throw new UnauthorizedError(
        header === undefined
          ? "GET /metrics needs the header Authorization: Bearer <METRICS_TOKEN>."
          : "The metrics token is wrong: send Authorization: Bearer <METRICS_TOKEN> with the server's METRICS_TOKEN.",
      );
    }
    res.type(deps.metrics.registry.contentType).send(await renderMetrics(deps.metrics));
  });
  let openapi: Record<string, unknown> | undefined;
  app.get("/openapi.json", (_req, res) => {
    openapi ??= loadOpenApi();
    res.json(openapi);
  });
  app.get("/readyz", async (_req, res) => {
    try {
      await deps.ping();
      res.json({ status: "ready", database: "reachable" });
    } catch (e) {
      ctx(res).log.warn("readiness check failed", { error: (e as Error).message });
      res.status(503).json({ status: "unavailable", database: "unreachable", errorMessage: "The database does not answer." });
    }
  });

  const spRoute = ROUTES.subscribeProCallback;
  app.post(
    spRoute,
    spPreBody(deps.spAuth),
    rawBody(deps.config.bodyLimitBytes),
    tracedMiddleware("subscribe-pro.verify", spVerifySignature(deps.spAuth)),
    async (req: Request, res: Response) => {
      const c = ctx(res);
      // Past the signature and allowlist checks: the callback log keeps it whole.
      res.locals["spAuthenticated"] = true;
      const out = await deps.handleCallback({ rawBody: req.body as Buffer, requestId: c.requestId, log: c.log });
      // An answer of the order pipeline: a 409 here means nothing was ordered (a refused request,
      // such as a reused token, is thrown and answered by the error handler instead).
      res.locals["callbackAnswered"] = true;
      res.locals["answerBody"] = out.body;
      res.locals["callbackReplayed"] = out.replayed;
      // Node's own writeHead/end: the answer is a finished JSON body, and Express's res.send (type
      // lookup, ETag and freshness checks for a POST) cost more than writing it.
      const body = Buffer.from(out.body, "utf8");
      res.writeHead(out.status, { ...out.headers, "Content-Type": "application/json; charset=utf-8", "Content-Length": body.length });
      res.end(body);
    },
  );
  app.all(spRoute, () => {
    throw new MethodNotAllowedError("The order callback accepts POST only.", ["POST"]);
  });

  const rechargeWebhook = async (req: Request, res: Response): Promise<void> => {
    const c = ctx(res);
    const fromPath = normalizeTopic(pathParam(req, "topic"));
    const fromHeader = normalizeTopic(req.get("x-recharge-topic"));
    // Counted as refused unless it is answered below. The label is the topic's closed-set name
    // (webhookTopicLabel), never what was sent: anyone can send any URL and any header, signed or not.
    const topic = webhookTopicLabel(fromPath ?? fromHeader);
    res.locals["webhook"] = { topic, result: "refused" };
    if (deps.receiveRecharge === undefined) {
      throw new NotFoundError("Recharge webhooks are not enabled: set RECHARGE_CLIENT_SECRETS to the API client secret of your Recharge token.");
    }
    if (fromPath !== undefined && fromHeader !== undefined && fromPath !== fromHeader) {
      // Debug: nothing is authenticated yet, so these are anyone's words.
      c.log.debug("X-Recharge-Topic disagrees with the URL; the URL wins", { path: fromPath, header: fromHeader });
    }
    const ack = await deps.receiveRecharge({
      topic: fromPath ?? fromHeader,
      topicSource: fromPath !== undefined ? "path" : fromHeader !== undefined ? "header" : undefined,
      rawBody: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
      headers: {
        legacy: req.get("x-recharge-hmac-sha256"),
        signature: req.get("x-recharge-webhook-signature"),
        timestamp: req.get("x-recharge-webhook-timestamp"),
        version: req.get("x-recharge-version"),
      },
      requestId: c.requestId,
      log: c.log,
    });
    // Now the topic it was processed or recorded as (the body's, when the request named none); a
    // body that is no handled topic is one of the others.
    const answered = ack.topic !== null ? webhookTopicLabel(ack.topic) : ack.topicSource === "payload" ? "(other)" : topic;
    res.locals["webhook"] = { topic: answered, result: ack.status };
    res.status(200).json(ack);
  };
  for (const route of [ROUTES.rechargeWebhooks, ROUTES.rechargeWebhooksByTopic]) {
    app.post(route, rawBody(deps.config.bodyLimitBytes), rechargeWebhook);
    app.all(route, () => {
      throw new MethodNotAllowedError("Recharge webhooks are delivered with POST.", ["POST"]);
    });
  }

  if (deps.config.adminToken !== undefined) {
    app.use(ROUTES.admin, adminRouter(deps.config.adminToken, deps.admin));
    if (deps.console !== undefined) app.use("/console", consoleRouter(deps.console));
  }

  app.use(() => {
    throw new NotFoundError("No such endpoint.");
  });
  app.use(errorHandler(deps.log));
  return app;
}

/** express.raw for any content type (checked before), with body-parser's errors made ours. */
function rawBody(limit: number) {
  const parse = express.raw({ type: () => true, limit });
  return (req: Request, res: Response, next: NextFunction): void => {
    parse(req, res, (err?: unknown) => {
      if (err === undefined || err === null) return next();
      const type = (err as { type?: string }).type;
      if (type === "entity.too.large") {
        return next(new PayloadTooLargeError(`The request body is larger than the limit of ${limit} bytes (BODY_LIMIT).`));
      }
      if (type === "encoding.unsupported") return next(new UnsupportedMediaTypeError("Unsupported Content-Encoding."));
      if (type === "request.aborted") return next(new PayloadError("json_malformed", "The request body was not received completely."));
      return next(new PayloadError("json_malformed", `The request body could not be read: ${(err as Error).message}`));
    });
  };
}

const SP_ROUTE = ROUTES.subscribeProCallback;

/** Counts every answer into the metrics once it is sent (route, callback outcome, webhook result). */
function observer(m: Metrics, recordCallback: ((c: ObservedCallback) => void) | undefined) {
  // The series' handles, resolved once each: prom-client otherwise hashes the labels on every
  // call. Bounded: the method label is a closed set, routes are the app's patterns, statuses HTTP's.
  const requests = new Map<string, { inc(): void }>();
  const durations = new Map<string, { observe(v: number): void }>();
  return (req: Request, res: Response, route: string, seconds: number): void => {
    const status = res.statusCode;
    const method = methodLabel(req.method);
    const series = `${method} ${route}`;
    const counted = `${series} ${status}`;
    let counter = requests.get(counted);
    if (counter === undefined) requests.set(counted, (counter = m.httpRequests.labels({ method, route, status: String(status) })));
    counter.inc();
    let histogram = durations.get(series);
    if (histogram === undefined) durations.set(series, (histogram = m.httpDuration.labels({ method, route })));
    histogram.observe(seconds);
    if (route === SP_ROUTE) {
      m.callbackOutcomes.inc({ outcome: [201, 202, 409].includes(status) && res.locals["callbackAnswered"] === true ? String(status) : `${Math.floor(status / 100)}xx` });
      if (recordCallback !== undefined && req.method === "POST") {
        recordCallback({
          receivedAt: Date.now() - Math.round(seconds * 1000),
          requestId: ctx(res).requestId,
          authenticated: res.locals["spAuthenticated"] === true,
          status,
          rawBody: Buffer.isBuffer(req.body) ? req.body : undefined,
          answer: res.locals["answerBody"],
          replayed: res.locals["callbackReplayed"] === true,
          durationMs: seconds * 1000,
          clientAddress: req.ip,
        });
      }
    } else if (route.startsWith(ROUTES.rechargeWebhooks)) {
      const w = res.locals["webhook"] as { topic: string; result: string } | undefined;
      const labels = w ?? { topic: "(none)", result: "refused" }; // another method (405)
      m.webhooks.inc(labels);
      m.webhooksDeprecated.inc(labels);
    }
  };
}

function errorHandler(log: Logger) {
  return (err: unknown, _req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(err);
    const c = res.locals["ctx"] as ReturnType<typeof ctx> | undefined;
    const answer = toErrorResponse(err, c?.requestId, isStoreUnavailable);
    const l = c?.log ?? log;
    if (!(err instanceof AppError)) {
      l.error(answer.status === 503 ? "database unavailable" : "unhandled error", { error: err instanceof Error ? err : String(err) });
    } else if (answer.status >= 500) {
      // The message is what was answered; a platform's own words are logged only as its scrubbed detail.
      l.warn(err.message, {
        code: err.code,
        ...(err instanceof PlatformError && err.detail !== undefined ? { detail: err.detail } : {}),
        cause: err.cause instanceof Error ? err.cause.message : undefined,
      });
    }
    res.locals["answerBody"] = answer.body;
    res.status(answer.status).set(answer.headers).json(answer.body);
  };
}
