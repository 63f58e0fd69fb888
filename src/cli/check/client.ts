import http from "node:http";
import https from "node:https";
import { performance } from "node:perf_hooks";
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

/** POSTs the exact bytes `body`; rejects on network errors and when no full answer came in time. */
function post(url: URL, body: Buffer, headers: Record<string, string>, timeoutMs: number): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const started = performance.now();
    let failure: Error | undefined;
    const client = url.protocol === "https:" ? https : http;
    // agent: false: one connection per request, closed afterwards, so nothing lingers.
    const req = client.request(url, {
      method: "POST",
      agent: false,
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "User-Agent": USER_AGENT,
        "Content-Length": String(body.byteLength),
        ...headers,
      },
    });
    const timer = setTimeout(() => {
      failure = new Error(`no answer within ${timeoutMs} ms`);
      req.destroy(failure);
    }, timeoutMs);
    const fail = (e: Error): void => {
      clearTimeout(timer);
      reject(failure ?? e);
    };
    req.on("error", fail);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.byteLength;
        if (size > MAX_ANSWER_BYTES) {
          failure = new Error(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
          req.destroy(failure);
          return;
        }
        chunks.push(chunk);
      });
      res.on("error", fail);
      res.on("close", () => {
        if (!res.complete) fail(new Error("the connection closed before the answer was complete"));
      });
      res.on("end", () => {
        clearTimeout(timer);
        const raw = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers["content-type"] ?? ""),
          raw,
          text: raw.toString("utf8"),
          ms: Math.round(performance.now() - started),
        });
      });
    });
    req.end(body);
  });
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
export function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  if (e.message !== "") return e.message;
  const inner = e instanceof AggregateError ? e.errors.map((x) => (x instanceof Error ? x.message : String(x))).filter(Boolean) : [];
  const code = (e as NodeJS.ErrnoException).code;
  return inner.length > 0 ? inner.join("; ") : (code ?? e.name);
}
