import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com), used to sign what orderbridge
 * sends to a merchant's HTTP platform. Pure functions.
 *
 * - Signed content: `${webhook-id}.${webhook-timestamp}.${body}`.
 * - `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` entries (several during rotation).
 * - Secret: `whsec_<base64>` (the key is the decoded bytes), or any other text (its UTF-8 bytes).
 */
export function secretKey(secret: string): Buffer {
  return secret.startsWith("whsec_") ? Buffer.from(secret.slice("whsec_".length), "base64") : Buffer.from(secret, "utf8");
}

export function signStandardWebhook(secret: string, id: string, timestamp: number, body: string | Uint8Array): string {
  const mac = createHmac("sha256", secretKey(secret)).update(`${id}.${timestamp}.`, "utf8").update(body).digest("base64");
  return `v1,${mac}`;
}

export type StandardWebhookVerdict = { ok: true } | { ok: false; reason: "missing" | "expired" | "mismatch" };

/**
 * What the receiving side runs: true when one of the `v1` signatures matches and the timestamp is
 * within `toleranceSeconds` (5 minutes in the specification) of now.
 */
export function verifyStandardWebhook(
  secret: string,
  headers: { id?: string | undefined; timestamp?: string | undefined; signature?: string | undefined },
  body: string | Uint8Array,
  opts: { nowSeconds: number; toleranceSeconds?: number },
): StandardWebhookVerdict {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature || !/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: "missing" };
  if (Math.abs(opts.nowSeconds - Number(timestamp)) > (opts.toleranceSeconds ?? 300)) return { ok: false, reason: "expired" };
  const expected = Buffer.from(signStandardWebhook(secret, id, Number(timestamp), body).slice(3), "base64");
  for (const entry of signature.split(" ")) {
    const [version, value] = entry.split(",", 2);
    if (version !== "v1" || value === undefined) continue;
    const given = Buffer.from(value, "base64");
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { ok: true };
  }
  return { ok: false, reason: "mismatch" };
}
