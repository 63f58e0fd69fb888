import { Webhook } from "standardwebhooks";

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com) on what orderbridge sends to a
 * merchant's HTTP platform. The official `standardwebhooks` library computes them, from the key as
 * it decodes it, so they are what its `Webhook.verify` accepts by construction (and what the other
 * languages' libraries accept, for the key forms taken here).
 *
 * - Signed content: `${webhook-id}.${webhook-timestamp}.${body}`.
 * - `webhook-signature`: `v1,<base64 HMAC-SHA256>`.
 * - Key (PLATFORM_HTTP_SECRET), see docs/platforms.md "The merchant's own system":
 *   `whsec_<base64>` or `<base64>`: the decoded bytes, as every Standard Webhooks library takes
 *   them; `raw:<text>`: the text's bytes, ASCII only (the libraries' raw formats).
 */

export type SigningKeyFormat = "whsec" | "base64" | "raw";

export const RAW_KEY_PREFIX = "raw:";
const WHSEC_PREFIX = "whsec_";

/**
 * The shortest key, in bytes. 16 bytes (128 bits) is the strength floor for HMAC-SHA256 keys, and
 * what the earlier rule of "16+ characters" of text meant, so such keys stay usable as `raw:`. The
 * specification recommends 24 to 64 random bytes; the README's generated key has 32.
 */
export const MIN_SIGNING_KEY_BYTES = 16;

export interface StandardWebhookKey {
  readonly format: SigningKeyFormat;
  /** The key's length in bytes. */
  readonly bytes: number;
  /** The texts a receiver may hold for this key (with and without its prefix): what scrubbing hides. */
  readonly forms: readonly string[];
  /** The `webhook-signature` value for one request. */
  sign(id: string, timestampSeconds: number, body: string): string;
}

const GENERATE = "generate one with: echo whsec_$(openssl rand -base64 32)";

/**
 * True for standard base64 exactly as Go's and Rust's strict decoders take it (alphabet A–Z a–z
 * 0–9 + /, `=` padding to a multiple of 4, no stray bits). The JavaScript library is laxer (it
 * drops a fifth trailing character, ignores the padding bits), so a key it takes may mean other
 * bytes, or nothing, to a receiver in another language; only the form all of them agree on is
 * accepted.
 */
function isCanonicalBase64(text: string): boolean {
  return text.length > 0 && Buffer.from(text, "base64").toString("base64") === text;
}

/** PLATFORM_HTTP_SECRET's value → the signing key, or what is wrong with it (never quoting it). */
export function parseSigningKey(value: string): { ok: true; key: StandardWebhookKey } | { ok: false; problem: string } {
  const name = "PLATFORM_HTTP_SECRET";
  if (value.startsWith(RAW_KEY_PREFIX)) {
    const text = value.slice(RAW_KEY_PREFIX.length);
    // Beyond ASCII the libraries disagree on the bytes: the JavaScript library's raw format keeps the
    // low byte of each character ("é" → E9), receivers in other languages take UTF-8 ("é" → C3 A9).
    if (!/^[\x20-\x7e]*$/.test(text)) {
      return {
        ok: false,
        problem:
          `${name}: a raw: key must be printable ASCII (Standard Webhooks libraries take other characters as different bytes); ` +
          `write it as whsec_ followed by the base64 of its UTF-8 bytes (printf %s '<the text>' | openssl base64 -A), which signs exactly as this text did before`,
      };
    }
    if (text.length < MIN_SIGNING_KEY_BYTES) {
      return { ok: false, problem: `${name}: a raw: key needs at least ${MIN_SIGNING_KEY_BYTES} characters (it has ${text.length}); or ${GENERATE}` };
    }
    return { ok: true, key: makeKey("raw", new Webhook(text, { format: "raw" }), text.length, [value, text]) };
  }

  const prefixed = value.startsWith(WHSEC_PREFIX);
  const b64 = prefixed ? value.slice(WHSEC_PREFIX.length) : value;
  if (!isCanonicalBase64(b64)) {
    return {
      ok: false,
      problem: prefixed
        ? `${name}: what follows whsec_ must be standard base64 (A-Z a-z 0-9 + /, padded with = to a multiple of 4 characters); ${GENERATE}`
        : `${name} is not a Standard Webhooks key: without a prefix it must be standard base64 (A-Z a-z 0-9 + /, padded with = to a multiple of 4 characters), ` +
          `which receivers' libraries decode; ${GENERATE}. A text key used as it is (as orderbridge took text before): write raw:<the text> (ASCII, see docs/platforms.md)`,
    };
  }
  const bytes = Buffer.from(b64, "base64").length;
  if (bytes < MIN_SIGNING_KEY_BYTES) {
    return {
      ok: false,
      problem: `${name} decodes to ${bytes} bytes; at least ${MIN_SIGNING_KEY_BYTES} are needed (Standard Webhooks recommends 24 to 64 random bytes); ${GENERATE}`,
    };
  }
  // The library strips whsec_ itself; it is given the value as the receiver holds it.
  return { ok: true, key: makeKey(prefixed ? "whsec" : "base64", new Webhook(value), bytes, prefixed ? [value, b64] : [value]) };
}

function makeKey(format: SigningKeyFormat, webhook: Webhook, bytes: number, forms: string[]): StandardWebhookKey {
  return {
    format,
    bytes,
    forms,
    sign: (id, timestampSeconds, body) => webhook.sign(id, new Date(timestampSeconds * 1000), body),
  };
}
