import { createHttpClient, networkErrorText } from "../../outbound/http-client.js";
import { signSpHmac } from "../../security/sp-hmac.js";

// The HTTP side of `orderbridge check`: exact bytes out, the whole answer in, within a deadline.

export interface Answer {
  status: number;
  contentType: string;
  raw: Buffer;
  text: string;
  ms: number;
}

/** valid: signed with the shared secret; wrong: well formed but made with another key; none: no Sp-Hmac. */
export type Signature = "valid" | "wrong" | "none";

export interface Target {
  url: URL;
  secret: string;
  timeoutMs: number;
}

const USER_AGENT = "orderbridge-check";
/** Answers larger than this are not read to the end (no order callback answer comes near it). */
const MAX_ANSWER_BYTES = 5 * 1024 * 1024;

// One connection per request, closed afterwards, so nothing lingers; each request its own deadline.
const http = createHttpClient({
  timeoutMs: 30_000,
  keepAlive: false,
  maxAnswerBytes: MAX_ANSWER_BYTES,
  headers: { "Content-Type": "application/json", Accept: "application/json", "User-Agent": USER_AGENT },
});

/** POSTs the exact bytes `body`; rejects on network errors and when no full answer came in time. */
async function post(url: URL, body: Buffer, headers: Record<string, string>, timeoutMs: number): Promise<Answer> {
  const res = await http.request({ method: "POST", url: url.toString(), body, headers, timeoutMs });
  return { status: res.status, contentType: res.headers["content-type"] ?? "", raw: res.body, text: res.text, ms: res.ms };
}

/** POSTs `body` to the target, byte for byte, with the signature asked for. */
export function send(t: Target, body: string | Buffer, signature: Signature = "valid"): Promise<Answer> {
  const raw = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  const headers: Record<string, string> = {};
  if (signature === "valid") headers["Sp-Hmac"] = signSpHmac(t.secret, raw);
  if (signature === "wrong") headers["Sp-Hmac"] = signSpHmac(`${t.secret}\u0000not-the-shared-secret`, raw);
  return post(t.url, raw, headers, t.timeoutMs);
}

/** A network error's message (Node's AggregateError for a refused dual-stack connect has none). */
export const errorText = networkErrorText;
