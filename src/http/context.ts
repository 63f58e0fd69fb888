import { randomUUID } from "node:crypto";
import type { NextFunction, Request, Response } from "express";
import type { Logger } from "../logger.js";

/** Per-request values, kept on res.locals under one typed key. */
export interface RequestContext {
  requestId: string;
  log: Logger;
  startedAt: bigint;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const MAX_LOGGED_PATH = 256;
const truncate = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max)}…(${s.length - max} more)`);

export function ctx(res: Response): RequestContext {
  return res.locals["ctx"] as RequestContext;
}

/**
 * The matched route's pattern with its router's mount path, a metric label (a closed set).
 * Express matches paths regardless of case and gives a mount path as sent (/ADMIN), so it is
 * lower-cased (ours are).
 */
const routePattern = (req: Request): string => `${req.baseUrl.toLowerCase()}${String((req.route as { path: unknown }).path)}`;

/**
 * First handler of a route inside a router: records its pattern while the mount path is known.
 * Express restores req.baseUrl when a request leaves the router, so an error answered by the
 * app's error handler was labelled without it (route="/events/:id" beside "/admin/events").
 */
export function recordRoute(req: Request, res: Response, next: NextFunction): void {
  res.locals["route"] = routePattern(req);
  next();
}

/** The route's pattern once the request was routed (the one recorded inside a router, or the app's); undefined when none matched. */
export function matchedRoute(req: Request, res: Response): string | undefined {
  const recorded = res.locals["route"];
  return typeof recorded === "string" ? recorded : req.route === undefined ? undefined : routePattern(req);
}

/** Probes and scrapes come every few seconds: their access lines are debug while they succeed. */
const QUIET_ROUTES: ReadonlySet<string> = new Set(["/metrics", "/healthz", "/readyz"]);

/**
 * Gives every request an id (the caller's X-Request-Id when it is a sane token), echoes it, and
 * writes one access-log line when the response is finished: method, route, status, latency.
 */
export function requestContext(log: Logger, observe?: (req: Request, res: Response, route: string, seconds: number) => void) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const given = req.get("x-request-id");
    const requestId = given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
    // correlationId follows an order from receipt to write-back (the worker's job lines carry it too).
    const context: RequestContext = { requestId, log: log.child({ requestId, correlationId: requestId }), startedAt: process.hrtime.bigint() };
    res.locals["ctx"] = context;
    res.setHeader("X-Request-Id", requestId);
    res.on("finish", () => {
      const latencyMs = Number(process.hrtime.bigint() - context.startedAt) / 1e6;
      const route = matchedRoute(req, res) ?? "(unmatched)";
      observe?.(req, res, route, latencyMs / 1000);
      const level = res.statusCode >= 500 ? "warn" : res.statusCode < 400 && QUIET_ROUTES.has(route) ? "debug" : "info";
      context.log.log(level, "request", {
        method: req.method,
        route,
        // As sent (percent-encoded), cut short: anyone can send a 16 kB URL, once a request.
        path: truncate(req.originalUrl.split("?")[0] ?? "", MAX_LOGGED_PATH),
        status: res.statusCode,
        latencyMs: Math.round(latencyMs * 10) / 10,
        ip: req.ip,
      });
    });
    next();
  };
}
