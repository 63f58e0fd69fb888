import type { NextFunction, Request, Response } from "express";
import type { SpAuthMode } from "../config.js";
import { ForbiddenAddressError, SignatureError, UnsupportedMediaTypeError } from "../errors.js";
import { isAddressAllowed, type Allowlist } from "../security/ip-allowlist.js";
import { verifySpHmac } from "../security/sp-hmac.js";
import { ctx } from "./context.js";

export interface SpAuthPolicy {
  mode: SpAuthMode;
  secrets: readonly string[];
  allowlist: Allowlist;
}

/**
 * Before the body is read: the address check (403 in modes ip/both) and the content type (415).
 * The client address is the socket's, or what Express derives from X-Forwarded-For for the proxies
 * TRUST_PROXY names, and nothing else.
 */
export function spPreBody(policy: SpAuthPolicy) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const allowed = policy.allowlist.size > 0 && isAddressAllowed(policy.allowlist, req.ip);
    res.locals["ipAllowed"] = allowed;
    if ((policy.mode === "ip" || policy.mode === "both") && !allowed) {
      ctx(res).log.warn("order callback refused: address not allowed", { ip: req.ip });
      throw new ForbiddenAddressError(`Requests from ${req.ip ?? "this address"} are not allowed (SP_ALLOWED_IPS). Behind a proxy? Set TRUST_PROXY to the proxy's address.`);
    }
    assertJsonContentType(req.get("content-type"));
    next();
  };
}

export function assertJsonContentType(header: string | undefined): void {
  const [mime = "", ...params] = (header ?? "").split(";").map((s) => s.trim().toLowerCase());
  if (mime !== "application/json" && !/^application\/[a-z0-9.+-]+\+json$/.test(mime)) {
    throw new UnsupportedMediaTypeError(`Content-Type must be application/json${header === undefined ? " (none was sent)" : ` (got "${header}")`}.`);
  }
  const charset = params
    .find((p) => p.startsWith("charset="))
    ?.slice("charset=".length)
    .replace(/"/g, "");
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    throw new UnsupportedMediaTypeError(`The body must be UTF-8 (got charset ${charset}).`);
  }
}

/** After the raw body is read: the Sp-Hmac check (401), unless the mode lets the address alone suffice. */
export function spVerifySignature(policy: SpAuthPolicy) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (policy.mode === "ip") return next();
    if (policy.mode === "either" && res.locals["ipAllowed"] === true) return next();
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const result = verifySpHmac(raw, req.get("sp-hmac"), policy.secrets);
    if (result.ok) return next();
    ctx(res).log.warn("order callback refused: signature", { reason: result.reason, ip: req.ip });
    switch (result.reason) {
      case "missing":
        throw new SignatureError("signature_missing", "The Sp-Hmac header is missing: every order callback must be signed with the shared secret.");
      case "malformed":
        throw new SignatureError("signature_malformed", "The Sp-Hmac header must be 64 hexadecimal characters: the HMAC-SHA256 of the raw request body.");
      default:
        throw new SignatureError(
          "signature_mismatch",
          "The Sp-Hmac signature does not match the body: sign the exact bytes sent (not a re-serialisation) with the shared secret configured in SP_HMAC_SECRETS.",
        );
    }
  };
}
