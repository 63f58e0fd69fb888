import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Subscribe Pro's `Sp-Hmac`: lowercase hex HMAC-SHA256 of the raw request body bytes, keyed with the
 * callback shared secret (shared/spec/subscribe-pro-order-callback.md §5.1).
 *
 * @example signSpHmac("sp_shared_secret_example", Buffer.from('{"customerId":"1234",...}'))
 */
export function signSpHmac(secret: string, rawBody: Uint8Array | string): string {
  return createHmac("sha256", secret).update(rawBody).digest("hex");
}

export type SpHmacResult = { ok: true; secretIndex: number } | { ok: false; reason: "missing" | "malformed" | "mismatch" };

/**
 * Checks `header` against every secret (several are allowed so a secret can be rotated without
 * downtime). Pure and constant-time per secret: the raw bytes go in, never a re-serialisation.
 */
export function verifySpHmac(rawBody: Uint8Array, header: string | undefined, secrets: readonly string[]): SpHmacResult {
  if (header === undefined || header.trim() === "") return { ok: false, reason: "missing" };
  const value = header.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(value)) return { ok: false, reason: "malformed" };
  const given = Buffer.from(value, "hex");
  let match = -1;
  // Check every secret, so the time taken does not tell which one matched.
  secrets.forEach((secret, i) => {
    const expected = createHmac("sha256", secret).update(rawBody).digest();
    if (timingSafeEqual(expected, given) && match === -1) match = i;
  });
  return match === -1 ? { ok: false, reason: "mismatch" } : { ok: true, secretIndex: match };
}
