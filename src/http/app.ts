import { timingSafeEqual, createHash } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import helmet from "helmet";
import type { Config } from "../config.js";
import {
  AppError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadError,
  PayloadTooLargeError,
  UnauthorizedError,
  UnsupportedMediaTypeError,
  toErrorResponse,
} from "../errors.js";
import type { Logger } from "../logger.js";
import type { OrderView } from "../platforms/local/orders-query.js";
import { isStoreUnavailable } from "../store/db.js";
import type { CallbackInput, CallbackOutput } from "../subscribe-pro/callback.js";
import { ctx, requestContext } from "./context.js";
import { spPreBody, spVerifySignature, type SpAuthPolicy } from "./subscribe-pro-auth.js";

export interface AppDeps {
  config: Pick<Config, "trustProxy" | "bodyLimitBytes" | "adminToken">;
  log: Logger;
  spAuth: SpAuthPolicy;
  handleCallback: (input: CallbackInput) => Promise<CallbackOutput>;
  ping: () => Promise<void>;
  orders: {
    list(q: { salesOrderToken?: string; limit: number; before?: number }): Promise<{ orders: OrderView[]; nextBefore: string | null }>;
    get(orderNumber: string): Promise<OrderView | undefined>;
  };
}

/** Builds the Express application. No business logic here: routes adapt HTTP to the use cases. */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.set("trust proxy", deps.config.trustProxy);
  app.set("etag", false);
  app.use(helmet());
  app.use(requestContext(deps.log));

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
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

  const spRoute = "/callbacks/subscribe-pro/order";
  app.post(
    spRoute,
    spPreBody(deps.spAuth),
    rawBody(deps.config.bodyLimitBytes),
    spVerifySignature(deps.spAuth),
    async (req: Request, res: Response) => {
      const c = ctx(res);
      const out = await deps.handleCallback({ rawBody: req.body as Buffer, requestId: c.requestId, log: c.log });
      res.status(out.status).set(out.headers).type("application/json").send(Buffer.from(out.body, "utf8"));
    },
  );
  app.all(spRoute, () => {
    throw new MethodNotAllowedError("The order callback accepts POST only.", ["POST"]);
  });

  if (deps.config.adminToken !== undefined) {
    app.use("/admin", adminRouter(deps.config.adminToken, deps.orders));
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

function adminRouter(token: string, orders: AppDeps["orders"]): express.Router {
  const router = express.Router();
  const expected = createHash("sha256").update(token).digest();
  router.use((req, _res, next) => {
    const m = /^Bearer (.+)$/i.exec(req.get("authorization") ?? "");
    const given = createHash("sha256").update(m?.[1]?.trim() ?? "").digest();
    if (m === null || !timingSafeEqual(given, expected)) {
      throw new UnauthorizedError("The admin API needs the header Authorization: Bearer <ADMIN_TOKEN>.");
    }
    next();
  });
  router.get("/orders", async (req, res) => {
    const fields: { pointer: string; message: string }[] = [];
    const query = req.query as Record<string, unknown>;
    const int = (name: string, min: number, max: number): number | undefined => {
      const v = query[name];
      if (v === undefined) return undefined;
      if (typeof v !== "string" || !/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
        fields.push({ pointer: `/query/${name}`, message: `must be a whole number from ${min} to ${max}` });
        return undefined;
      }
      return Number(v);
    };
    const limit = int("limit", 1, 200) ?? 50;
    const before = int("before", 1, Number.MAX_SAFE_INTEGER);
    const token = query["salesOrderToken"];
    if (token !== undefined && typeof token !== "string") fields.push({ pointer: "/query/salesOrderToken", message: "must be given once" });
    if (fields.length > 0) throw new PayloadError("query_invalid", "Invalid query parameters.", fields);
    const page = await orders.list({
      limit,
      ...(before === undefined ? {} : { before }),
      ...(typeof token === "string" ? { salesOrderToken: token } : {}),
    });
    res.json(page);
  });
  router.get("/orders/:orderNumber", async (req, res) => {
    const order = await orders.get(String(req.params["orderNumber"]));
    if (order === undefined) throw new NotFoundError(`No order ${String(req.params["orderNumber"])}.`);
    res.json(order);
  });
  return router;
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
      l.warn(err.message, { code: err.code, cause: err.cause instanceof Error ? err.cause.message : undefined });
    }
    res.status(answer.status).set(answer.headers).json(answer.body);
  };
}
