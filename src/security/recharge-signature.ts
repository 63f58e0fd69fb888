import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/**
 * Recharge webhook signatures (shared/spec/recharge-webhooks.md §5). Pure functions of the raw body
 * bytes, the header values and the client secrets; no HTTP types.
 *
 * - Legacy, `X-Recharge-Hmac-Sha256`: lowercase hex SHA-256 of (client secret ‖ raw body). Not an
 *   HMAC, despite the name.
 * - Timestamp-bound, `X-Recharge-Webhook-Signature: t=<epoch s>,v1=<hex>` (and
 *   `X-Recharge-Webhook-Timestamp`): v1 = hex HMAC-SHA256(key = client secret, "<t>.<raw body>"),
 *   valid within a window around now.
 */

/** @example signRechargeLegacy("rc_client_secret_example", '{"order":{...}}') */
export function signRechargeLegacy(secret: string, rawBody: Uint8Array | string): string {
  return createHash("sha256").update(secret, "utf8").update(rawBody).digest("hex");
}

export function signRechargeTimestamped(secret: string, timestamp: number, rawBody: Uint8Array | string): string {
  return createHmac("sha256", secret).update(`${timestamp}.`, "utf8").update(rawBody).digest("hex");
}

/** The header value of the timestamp-bound scheme, for senders (the CLI, tests). */
export function rechargeSignatureHeader(secret: string, timestamp: number, rawBody: Uint8Array | string): string {
  return `t=${timestamp},v1=${signRechargeTimestamped(secret, timestamp, rawBody)}`;
}

export interface RechargeSignatureHeaders {
  legacy?: string | undefined;
  signature?: string | undefined;
  timestamp?: string | undefined;
}

export type RechargeSignatureResult =
  | { ok: true; scheme: "legacy" | "timestamped"; secretIndex: number }
  | {
      ok: false;
      scheme: "legacy" | "timestamped" | "none";
      reason: "missing" | "malformed" | "mismatch" | "expired";
      message: string;
    };

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** Compares `given` (32 bytes) with the digest of every secret: the time does not tell which matched. */
function matchAny(given: Buffer, secrets: readonly string[], digest: (secret: string) => Buffer): number {
  let match = -1;
  secrets.forEach((secret, i) => {
    if (timingSafeEqual(digest(secret), given) && match === -1) match = i;
  });
  return match;
}

/**
 * Verifies a Recharge webhook. When the timestamp-bound signature header is present it alone
 * decides: a failing strong signature never falls back to the weaker legacy one. Otherwise the
 * legacy header is checked. `nowSeconds` and `toleranceSeconds` bound the timestamp both ways.
 */
export function verifyRechargeWebhook(
  rawBody: Uint8Array,
  headers: RechargeSignatureHeaders,
  secrets: readonly string[],
  opts: { nowSeconds: number; toleranceSeconds: number },
): RechargeSignatureResult {
  const strong = headers.signature?.trim();
  if (strong !== undefined && strong !== "") return verifyTimestamped(rawBody, strong, headers.timestamp, secrets, opts);

  const legacy = headers.legacy?.trim();
  if (legacy === undefined || legacy === "") {
    return {
      ok: false,
      scheme: "none",
      reason: "missing",
      message: "The X-Recharge-Hmac-Sha256 header is missing: every Recharge webhook must be signed with the API client secret.",
    };
  }
  if (!HEX64.test(legacy)) {
    return {
      ok: false,
      scheme: "legacy",
      reason: "malformed",
      message: "The X-Recharge-Hmac-Sha256 header must be 64 hexadecimal characters: SHA-256 of the client secret followed by the raw body.",
    };
  }
  const i = matchAny(Buffer.from(legacy, "hex"), secrets, (s) => createHash("sha256").update(s, "utf8").update(rawBody).digest());
  if (i === -1) {
    return {
      ok: false,
      scheme: "legacy",
      reason: "mismatch",
      message:
        "The X-Recharge-Hmac-Sha256 signature does not match the body: it must be SHA-256 of the API client secret (RECHARGE_CLIENT_SECRETS) followed by the exact bytes sent.",
    };
  }
  return { ok: true, scheme: "legacy", secretIndex: i };
}

function verifyTimestamped(
  rawBody: Uint8Array,
  header: string,
  timestampHeader: string | undefined,
  secrets: readonly string[],
  opts: { nowSeconds: number; toleranceSeconds: number },
): RechargeSignatureResult {
  const fail = (reason: "malformed" | "mismatch" | "expired", message: string): RechargeSignatureResult => ({
    ok: false,
    scheme: "timestamped",
    reason,
    message,
  });
  // Parsed by key, so later schemes (v2=…) and the order of the parts do not matter.
  const parts = new Map<string, string[]>();
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    parts.set(key, [...(parts.get(key) ?? []), part.slice(eq + 1).trim()]);
  }
  const t = parts.get("t")?.[0] ?? timestampHeader?.trim();
  const candidates = (parts.get("v1") ?? []).filter((v) => HEX64.test(v));
  if (t === undefined || !/^\d{1,12}$/.test(t) || candidates.length === 0) {
    return fail("malformed", "The X-Recharge-Webhook-Signature header must look like t=<unix seconds>,v1=<64 hex characters>.");
  }
  if (timestampHeader !== undefined && timestampHeader.trim() !== "" && timestampHeader.trim() !== t) {
    return fail("malformed", "X-Recharge-Webhook-Timestamp does not match the t= of X-Recharge-Webhook-Signature.");
  }
  const ts = Number(t);
  if (Math.abs(opts.nowSeconds - ts) > opts.toleranceSeconds) {
    return fail(
      "expired",
      `The webhook timestamp ${ts} is more than ${opts.toleranceSeconds} s away from now (RECHARGE_SIGNATURE_TOLERANCE_S): a replayed or delayed request is refused.`,
    );
  }
  for (const v of candidates) {
    const i = matchAny(Buffer.from(v, "hex"), secrets, (s) => createHmac("sha256", s).update(`${t}.`, "utf8").update(rawBody).digest());
    if (i !== -1) return { ok: true, scheme: "timestamped", secretIndex: i };
  }
  return fail(
    "mismatch",
    'The X-Recharge-Webhook-Signature does not match: v1 must be HMAC-SHA256 of "<t>.<raw body>" keyed with the API client secret (RECHARGE_CLIENT_SECRETS).',
  );
}
