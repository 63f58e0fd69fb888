import http from "node:http";
import https from "node:https";
import { performance } from "node:perf_hooks";
import axios, { type AxiosInstance } from "axios";
import { noScrub, scrubber, type Scrub } from "../security/scrub.js";

/**
 * The one HTTP client of orderbridge, for every outbound call: platform adapters, the Recharge API
 * and the CLI (issue #15, item 3). Built on axios. It sends the exact bytes it is given, reads the
 * whole answer as bytes within a deadline and a size limit, never follows redirects, and resolves
 * with any status: what a status means is the caller's decision (src/outbound/retry-policy.ts).
 * Everything that is not an answer rejects with an OutboundFailure, whose message is scrubbed of the
 * client's credentials.
 */

export interface HttpClientOptions {
  /** Prefix for relative request URLs. */
  baseUrl?: string | undefined;
  /** One request's deadline, connect to last byte (a request may pass its own). */
  timeoutMs: number;
  /** Sent with every request (credentials, Accept, User-Agent); a request's own headers win. */
  headers?: Record<string, string>;
  /** Answers larger than this are not read to the end. Default 10 MiB. */
  maxAnswerBytes?: number;
  /** Values the client's error messages must never show (its own credentials). */
  secrets?: Iterable<string | undefined>;
  /**
   * false: one connection per request, closed when it is answered (a CLI run, which must not leave
   * sockets behind). Default: Node's shared agents.
   */
  keepAlive?: boolean;
}

export interface OutboundRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  url: string;
  headers?: Record<string, string>;
  /** Sent byte for byte (a string as UTF-8). */
  body?: string | Uint8Array;
  /** The caller's deadline or cancellation; the client's own timeout applies as well. */
  signal?: AbortSignal | undefined;
  timeoutMs?: number;
}

export interface OutboundResponse {
  status: number;
  /** Header names in lower case; repeated headers joined with ", ". */
  headers: Record<string, string | undefined>;
  body: Buffer;
  /** The body as UTF-8. */
  text: string;
  /** From sending to the last byte. */
  ms: number;
}

/**
 * Why no answer came: `connect` (nothing was sent: refused, no such host, unreachable), `timeout`
 * (the client's deadline), `aborted` (the caller's signal), `too-large`, `incomplete` (the
 * connection closed mid-answer) or `network` (any other failure after connecting).
 */
export type FailureKind = "connect" | "timeout" | "aborted" | "too-large" | "incomplete" | "network";

/** No answer to an outbound request. `mayHaveArrived`: false only when the request provably never left. */
export class OutboundFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "OutboundFailure";
  }
  get mayHaveArrived(): boolean {
    return this.kind !== "connect";
  }
}

export interface HttpClient {
  request(r: OutboundRequest): Promise<OutboundResponse>;
  /** Scrubs the client's credentials (and nothing else) from a text. */
  readonly scrub: Scrub;
}

/** Errors that happen before a request is sent: the remote cannot have acted on it. */
const CONNECT_ERRORS = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

const DEFAULT_MAX_ANSWER_BYTES = 10 * 1024 * 1024;

/** A network error's message (Node's AggregateError for a refused dual-stack connect has none). */
export function networkErrorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  const inner = e instanceof AggregateError ? e.errors : cause instanceof AggregateError ? cause.errors : [];
  if (e.message !== "") return e.message;
  const texts = inner.map((x: unknown) => (x instanceof Error ? x.message : String(x))).filter(Boolean);
  const code = (e as NodeJS.ErrnoException).code;
  return texts.length > 0 ? texts.join("; ") : (code ?? e.name);
}

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && !code.startsWith("ERR_")) return code;
  const cause = (e as { cause?: { code?: unknown } }).cause;
  if (typeof cause?.code === "string") return cause.code;
  return typeof code === "string" ? code : undefined;
}

export function createHttpClient(o: HttpClientOptions): HttpClient {
  const scrub = o.secrets === undefined ? noScrub : scrubber(o.secrets);
  const maxAnswerBytes = o.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
  const agents = o.keepAlive === false ? { httpAgent: new http.Agent({ keepAlive: false }), httpsAgent: new https.Agent({ keepAlive: false }) } : {};
  const ax: AxiosInstance = axios.create({
    ...(o.baseUrl === undefined ? {} : { baseURL: o.baseUrl.replace(/\/+$/, "") }),
    ...agents,
    validateStatus: () => true,
    maxRedirects: 0,
    responseType: "arraybuffer",
    // The bytes as given, both ways: axios would otherwise trim a JSON string body and parse answers.
    transformRequest: (d: unknown) => d,
    transformResponse: (d: unknown) => d,
    maxContentLength: maxAnswerBytes,
    maxBodyLength: Infinity,
    ...(o.headers === undefined ? {} : { headers: o.headers }),
  });

  async function request(r: OutboundRequest): Promise<OutboundResponse> {
    const timeoutMs = r.timeoutMs ?? o.timeoutMs;
    // One deadline for the whole exchange (axios's own timeout is per socket inactivity).
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, timeoutMs);
    const onAbort = (): void => ac.abort();
    if (r.signal?.aborted === true) ac.abort();
    else r.signal?.addEventListener("abort", onAbort, { once: true });
    const started = performance.now();
    try {
      const body = r.body === undefined ? undefined : typeof r.body === "string" ? Buffer.from(r.body, "utf8") : Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength);
      const res = await ax.request<Buffer>({
        method: r.method,
        url: r.url,
        ...(r.headers === undefined ? {} : { headers: r.headers }),
        ...(body === undefined ? {} : { data: body }),
        signal: ac.signal,
      });
      const raw = Buffer.isBuffer(res.data) ? res.data : Buffer.from(res.data ?? "");
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(res.headers as Record<string, unknown>)) {
        headers[k.toLowerCase()] = v === undefined || v === null ? undefined : Array.isArray(v) ? v.map(String).join(", ") : String(v);
      }
      return { status: res.status, headers, body: raw, text: raw.toString("utf8"), ms: Math.round(performance.now() - started) };
    } catch (e) {
      throw toFailure(e, { timedOut, aborted: r.signal?.aborted === true, timeoutMs, maxAnswerBytes, scrub });
    } finally {
      clearTimeout(timer);
      r.signal?.removeEventListener("abort", onAbort);
    }
  }
  return { request, scrub };
}

function toFailure(e: unknown, s: { timedOut: boolean; aborted: boolean; timeoutMs: number; maxAnswerBytes: number; scrub: Scrub }): OutboundFailure {
  const code = errorCode(e);
  const text = s.scrub(networkErrorText(e));
  if (s.aborted) return new OutboundFailure("aborted", "the request was cancelled", code, { cause: e });
  if (s.timedOut) return new OutboundFailure("timeout", `no answer within ${s.timeoutMs} ms`, "ETIMEDOUT", { cause: e });
  if (/maxContentLength/.test(text)) return new OutboundFailure("too-large", `the answer is larger than ${s.maxAnswerBytes} bytes`, code, { cause: e });
  if (code !== undefined && CONNECT_ERRORS.has(code)) return new OutboundFailure("connect", text, code, { cause: e });
  if (code === "ECONNABORTED" || code === "ETIMEDOUT") return new OutboundFailure("timeout", text, code, { cause: e });
  if (/stream has been aborted|aborted/i.test(text)) return new OutboundFailure("incomplete", "the connection closed before the answer was complete", code, { cause: e });
  return new OutboundFailure("network", text, code, { cause: e });
}

/** The kind of a failure in words a caller may see (the failure's own text goes to the log). */
export function failureWords(f: OutboundFailure): string {
  if (f.kind === "connect") return "could not connect";
  if (f.kind === "timeout") return "timed out";
  return "the connection failed";
}
