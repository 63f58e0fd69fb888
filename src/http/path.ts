import type { NextFunction, Request, Response } from "express";
import { PayloadError } from "../errors.js";
import { unstorableText } from "../validation/json.js";

/**
 * Refuses a request whose path is not valid percent-encoding (`%FF`, `%E2%82`, `%zz`): 400 with a
 * clear message, for every route alike and before any of them. Left to the router, a parameter it
 * cannot decode was an unexpected error: a 500 with an error-level stack trace, to anyone.
 */
export function refuseUndecodablePath(req: Request, _res: Response, next: NextFunction): void {
  if (!req.url.includes("%")) return next(); // nothing encoded: nothing to refuse
  try {
    decodeURIComponent(req.path);
  } catch {
    throw new PayloadError(
      "query_invalid",
      "The request path is not valid percent-encoding: each % must begin an escape of two hex digits (%2F), and the escaped bytes must be UTF-8.",
      [{ pointer: "/path", message: "is not valid percent-encoding" }],
    );
  }
  next();
}

/**
 * A path parameter as the router decoded it (a wildcard's segments joined by "/"; "" when the route
 * has none). Text no store can keep as it is (a NUL, from %00) is refused with 400 and the
 * parameter's pointer, before it reaches a query.
 */
export function pathParam(req: Request, name: string): string {
  const raw = (req.params as Record<string, string | string[] | undefined>)[name];
  const value = Array.isArray(raw) ? raw.join("/") : (raw ?? "");
  const problem = unstorableText(value);
  if (problem !== undefined) {
    throw new PayloadError("query_invalid", `Invalid path: ${name} ${problem}.`, [{ pointer: `/path/${name}`, message: problem }]);
  }
  return value;
}
