import { randomBytes, randomInt } from "node:crypto";
import fs from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { createHttpClient, OutboundFailure } from "../outbound/http-client.js";
import { signRechargeLegacy } from "../security/recharge-signature.js";
import { signSpHmac } from "../security/sp-hmac.js";
import { CliError } from "./admin-client.js";
import { RECHARGE_PATH, rechargeSecret, SP_PATH, spSecret } from "./defaults.js";
import { RECHARGE_SAMPLE_NAMES, SP_SAMPLE_NAMES, rechargeSample, spSample, type JsonObject, type RechargeSampleName, type SpSampleName } from "./samples.js";

/**
 * `orderbridge send`: posts a correctly signed sample (a built-in one or a JSON file) to a
 * Subscribe Pro order callback or a Recharge webhook URL and prints each answer, like the test-event
 * commands of Stripe's and Shopify's CLIs. Options to provoke the hard cases: a tampered body
 * (expect 401), byte-identical duplicates, concurrent or not (expect one order), and Recharge's
 * order/updated arriving before order/created (expect one order).
 */

export type SendSource = "subscribe-pro" | "recharge";
export interface SendOptions {
  source: SendSource;
  /** A built-in sample name (BUILTIN_FIXTURES) or a path to a JSON file, sent byte for byte as read. */
  what: string;
  /**
   * The full URL. For recharge, a URL ending with /webhooks/recharge gets the topic appended as a
   * path; any other URL is used as given and the topic goes in X-Recharge-Topic.
   */
  to: string;
  /** Default: the first entry of SP_HMAC_SECRETS (subscribe-pro) or RECHARGE_CLIENT_SECRETS (recharge). */
  secret?: string;
  /** Recharge only; default from the sample (a file: checkout/processed for a checkout, else order/created). */
  topic?: string;
  /** Recharge: which version's built-in body (default 2021-11); also sent as X-Recharge-Version. */
  version?: "2021-01" | "2021-11";
  /** Sign, then change one byte of the body before sending. */
  tamper: boolean;
  /** How many times in total to send the same bytes. */
  duplicate: number;
  /** How many of the copies run at once. */
  concurrency: number;
  /** Recharge, an order: send order/updated (with a later updated_at) first, then order/created. */
  outOfOrder: boolean;
  /** One JSON line per request instead of the human format. */
  json: boolean;
  out: NodeJS.WritableStream;
}

export const BUILTIN_FIXTURES: Record<SendSource, string[]> = {
  "subscribe-pro": [...SP_SAMPLE_NAMES],
  recharge: [...RECHARGE_SAMPLE_NAMES],
};

const TIMEOUT_MS = 30_000;
const MAX_TEXT = 2000;
const USER_AGENT = "orderbridge-send";

/** One distinct request; it is sent `duplicate` times. */
interface Delivery {
  url: string;
  headers: Record<string, string>;
  body: Buffer;
  topic?: string;
}

interface Result {
  i: number;
  status: number;
  ms: number;
  text: string;
  error?: string;
  topic?: string;
}

const usage = (message: string): CliError => new CliError(message, 2);
const isSource = (s: string): s is SendSource => s === "subscribe-pro" || s === "recharge";

export async function runSend(o: SendOptions): Promise<{ sent: number; statuses: number[]; exitCode: 0 | 1 | 69 }> {
  if (!isSource(o.source)) throw usage(`Unknown source "${String(o.source)}": use subscribe-pro or recharge.`);
  for (const [flag, n] of [
    ["--duplicate", o.duplicate],
    ["--concurrency", o.concurrency],
  ] as const) {
    if (!Number.isSafeInteger(n) || n < 1) throw usage(`${flag} must be a whole number of at least 1 (got ${String(n)}).`);
  }
  if (o.source === "subscribe-pro") {
    const misplaced = [o.topic !== undefined && "--topic", o.version !== undefined && "--version", o.outOfOrder && "--out-of-order"].filter(Boolean);
    if (misplaced.length > 0) throw usage(`${misplaced.join(", ")} apply to recharge only.`);
  }
  if (o.version !== undefined && o.version !== "2021-01" && o.version !== "2021-11") {
    throw usage(`--version must be 2021-01 or 2021-11 (got ${String(o.version)}).`);
  }
  const base = parseUrl(o.to);
  const secret = resolveSecret(o);
  const say = (line: string): void => {
    if (!o.json) o.out.write(`${line}\n`);
  };

  const deliveries = o.source === "subscribe-pro" ? await spDeliveries(o, base, secret, say) : await rechargeDeliveries(o, base, secret, say);

  if (o.tamper) {
    for (const d of deliveries) {
      const t = tamper(d.body);
      d.body = t.body;
      say(`tampered: signed, then byte ${t.offset} changed from ${JSON.stringify(t.from)} to ${JSON.stringify(t.to)} (expect 401)`);
    }
  }

  const results: Result[] = [];
  // Copies: a line per answer as it comes, but each distinct body printed once (the first time),
  // and a summary of what they came to; --json prints every answer whole.
  const summarise = o.duplicate > 1 && !o.json;
  let i = 0;
  for (const d of deliveries) {
    const first = i;
    i += o.duplicate;
    const seen = new Map<string, number>();
    const answers = await pool(o.duplicate, o.concurrency, async (k) => {
      const r = await post(first + k, d);
      const earlier = summarise ? seen.get(answerKey(r)) : undefined;
      if (earlier === undefined) {
        seen.set(answerKey(r), r.i);
        print(o, r, d.url);
      } else {
        o.out.write(`→ POST ${d.url}  ${r.status} ${r.ms} ms  (the same answer as #${earlier})\n`);
      }
      return r;
    });
    results.push(...answers);
  }

  const statuses = results.map((r) => r.status);
  const counts = new Map<number, number>();
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  const summary = [...counts.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([s, n]) => `${s} ×${n}`)
    .join(", ");
  say(`sent ${statuses.length}, statuses: ${summary}`);
  if (summarise) say(describeCopies(results));
  const exitCode = sendExitCode(o.source, o.tamper, results);
  if (exitCode === 1) say(o.tamper ? "the receiver accepted a tampered request" : "the receiver refused the request");
  return { sent: statuses.length, statuses, exitCode };
}

/**
 * The command's exit code: 69 when nothing answered; 0 when every answer is what the sample should
 * get (accepted, or for Subscribe Pro a 409 order answer: nothing ordered, with its errorItems;
 * with --tamper, refused with a 4xx); 1 otherwise (refused, a server error, or a tampered request
 * accepted).
 */
export function sendExitCode(source: SendSource, tampered: boolean, results: readonly { status: number; text: string }[]): 0 | 1 | 69 {
  if (results.length > 0 && results.every((r) => r.status === 0)) return 69;
  const isOrderAnswer = (r: { status: number; text: string }): boolean => {
    if (source !== "subscribe-pro" || r.status !== 409) return false;
    const json = parseJson(r.text);
    return json.ok && typeof json.value === "object" && json.value !== null && Array.isArray((json.value as { errorItems?: unknown }).errorItems);
  };
  const wanted = (r: { status: number; text: string }): boolean => (tampered ? r.status >= 400 && r.status < 500 : (r.status >= 200 && r.status < 300) || isOrderAnswer(r));
  return results.every(wanted) ? 0 : 1;
}

function parseUrl(to: string): URL {
  let u: URL;
  try {
    u = new URL(to);
  } catch {
    throw usage(`--to must be a full URL such as http://localhost:3000${SP_PATH} (got "${to}").`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw usage(`--to must be an http or https URL (got "${u.protocol}").`);
  return u;
}

function resolveSecret(o: SendOptions): string {
  if (o.secret !== undefined && o.secret !== "") return o.secret;
  const env = o.source === "subscribe-pro" ? "SP_HMAC_SECRETS" : "RECHARGE_CLIENT_SECRETS";
  const first = o.source === "subscribe-pro" ? spSecret() : rechargeSecret();
  if (first !== undefined) return first;
  const what =
    o.source === "subscribe-pro"
      ? "the order callback shared secret (the value of the receiver's SP_HMAC_SECRETS, or ./data/sp-hmac-secret)"
      : "the Recharge API client secret (the value of the receiver's RECHARGE_CLIENT_SECRETS)";
  throw usage(`No signing secret: pass --secret or set ${env} to ${what}.`);
}

const names = (source: SendSource): string => BUILTIN_FIXTURES[source].join(", ");

/** A built-in name, or the bytes of a file; an error naming the built-in samples otherwise. */
async function load(o: SendOptions): Promise<{ builtin: string } | { file: Buffer }> {
  if (BUILTIN_FIXTURES[o.source].includes(o.what)) return { builtin: o.what };
  const other: SendSource = o.source === "subscribe-pro" ? "recharge" : "subscribe-pro";
  try {
    return { file: await fs.readFile(o.what) };
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const hint = BUILTIN_FIXTURES[other].includes(o.what) ? ` (${o.what} is a ${other} sample)` : "";
    throw usage(`"${o.what}" is neither a built-in ${o.source} sample${hint} nor a readable file (${why}). ` + `Built-in ${o.source} samples: ${names(o.source)}.`);
  }
}

const pretty = (body: JsonObject): Buffer => Buffer.from(JSON.stringify(body, null, 2), "utf8");

async function spDeliveries(o: SendOptions, base: URL, secret: string, say: (s: string) => void): Promise<Delivery[]> {
  const src = await load(o);
  let body: Buffer;
  if ("builtin" in src) {
    const order = spSample(src.builtin as SpSampleName);
    // A fresh token per invocation: every send is a new order (its copies are byte-identical).
    order["salesOrderToken"] = randomBytes(16).toString("hex");
    body = pretty(order);
    say(`subscribe-pro ${src.builtin}: salesOrderToken ${String(order["salesOrderToken"])}`);
  } else {
    body = src.file;
    say(`subscribe-pro ${o.what}: ${body.length} bytes as read`);
  }
  const url = new URL(base);
  if (url.pathname === "/") url.pathname = SP_PATH;
  return [
    {
      url: url.toString(),
      headers: { "Content-Type": "application/json", Accept: "application/json", "User-Agent": USER_AGENT, "Sp-Hmac": signSpHmac(secret, body) },
      body,
    },
  ];
}

async function rechargeDeliveries(o: SendOptions, base: URL, secret: string, say: (s: string) => void): Promise<Delivery[]> {
  const src = await load(o);
  let body: Buffer;
  let parsed: unknown;
  let topic: string;
  let sentVersion: string | undefined = o.version;
  if ("builtin" in src) {
    const version = o.version ?? "2021-11";
    sentVersion = version;
    const f = rechargeSample(src.builtin as RechargeSampleName, version);
    const resource = (f.body["order"] ?? f.body["checkout"]) as JsonObject;
    if ("order" in f.body) {
      // A fresh Recharge order id per invocation, so each send is a new order.
      resource["id"] = 900_000_000 + randomInt(100_000_000);
      say(`recharge ${src.builtin} (${version}): order id ${String(resource["id"])}`);
    } else {
      resource["token"] = randomBytes(16).toString("hex");
      resource["external_checkout_id"] = `cart_${randomBytes(4).toString("hex")}`;
      say(`recharge ${src.builtin} (${version}): checkout ${String(resource["token"])}, cart ${String(resource["external_checkout_id"])}`);
    }
    parsed = f.body;
    body = pretty(f.body);
    topic = o.topic ?? f.topic;
  } else {
    body = src.file;
    try {
      parsed = JSON.parse(body.toString("utf8")) as unknown;
    } catch {
      parsed = undefined;
    }
    topic = o.topic ?? (isObject(parsed) && isObject(parsed["checkout"]) ? "checkout/processed" : "order/created");
    say(`recharge ${o.what}: ${body.length} bytes as read`);
  }

  const delivery = (t: string, bytes: Buffer): Delivery => {
    const url = new URL(base);
    const path = url.pathname.replace(/\/+$/, "");
    const inPath = path === "" || path.endsWith(RECHARGE_PATH);
    if (inPath) url.pathname = `${path === "" ? RECHARGE_PATH : path}/${t.replace(/^\/+|\/+$/g, "")}`;
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      Accept: "application/json",
      "User-Agent": USER_AGENT,
      "X-Recharge-Hmac-Sha256": signRechargeLegacy(secret, bytes),
    };
    if (!inPath) headers["X-Recharge-Topic"] = t;
    if (sentVersion !== undefined) headers["X-Recharge-Version"] = sentVersion;
    return { url: url.toString(), headers, body: bytes, topic: t };
  };

  if (!o.outOfOrder) return [delivery(topic, body)];

  if (o.topic !== undefined) throw usage("--out-of-order sends order/updated and then order/created: leave out --topic.");
  const order = isObject(parsed) ? parsed["order"] : undefined;
  if (!isObject(order)) throw usage(`--out-of-order needs an order (${o.what} has no "order" object).`);
  // The update Recharge would send a few seconds later, delivered before the creation.
  const updated = structuredClone(parsed) as { order: Record<string, unknown> };
  updated.order["updated_at"] = later(order["updated_at"], 6);
  say(`out of order: order/updated (updated_at ${String(updated.order["updated_at"])}) first, then order/created`);
  return [delivery("order/updated", Buffer.from(JSON.stringify(updated, null, 2), "utf8")), delivery("order/created", body)];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** `ts` plus `seconds`, in the same format ("2024-05-01T10:00:03", "…+00:00", "…Z"); now when unreadable. */
function later(ts: unknown, seconds: number): string {
  const m = typeof ts === "string" ? /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(.*)$/.exec(ts) : null;
  const ms = m === null ? NaN : Date.parse(`${m[1]}Z`);
  if (m === null || Number.isNaN(ms)) return new Date(Date.now() + seconds * 1000).toISOString();
  return new Date(ms + seconds * 1000).toISOString().slice(0, 19) + m[2];
}

/**
 * Changes one byte, keeping the JSON valid where it can so the receiver's signature check (not its
 * parser) is what refuses it: the first digit goes up by one (a 9 becomes an 8), else the case of
 * the first letter flips, else the last byte changes.
 */
function tamper(body: Buffer): { body: Buffer; offset: number; from: string; to: string } {
  if (body.length === 0) throw usage("--tamper needs a body to change: this one is empty.");
  const out = Buffer.from(body);
  let offset = out.findIndex((b) => b >= 0x30 && b <= 0x39);
  if (offset !== -1) {
    const b = out[offset] as number;
    out[offset] = b === 0x39 ? 0x38 : b + 1;
  } else {
    offset = out.findIndex((b) => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a));
    if (offset === -1) offset = out.length - 1;
    out[offset] = (out[offset] as number) ^ 0x20;
  }
  const ch = (b: number): string => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`);
  return { body: out, offset, from: ch(body[offset] as number), to: ch(out[offset] as number) };
}

/** Runs fn(0…n-1), at most `concurrency` at a time; results in index order. */
async function pool<T>(n: number, concurrency: number, fn: (k: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let k = next++; k < n; k = next++) results[k] = await fn(k);
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
  return results;
}

const http = createHttpClient({ timeoutMs: TIMEOUT_MS, keepAlive: false });

async function post(i: number, d: Delivery): Promise<Result> {
  const start = performance.now();
  const ms = (): number => Math.round(performance.now() - start);
  const topic = d.topic === undefined ? {} : { topic: d.topic };
  try {
    const res = await http.request({ method: "POST", url: d.url, headers: d.headers, body: d.body });
    return { i, status: res.status, ms: res.ms, text: res.text, ...topic };
  } catch (e) {
    if (!(e instanceof OutboundFailure)) throw e;
    return { i, status: 0, ms: ms(), text: "", error: e.kind === "timeout" ? `no answer within ${TIMEOUT_MS / 1000} s` : e.message, ...topic };
  }
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  if (text.trim() === "") return { ok: false };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

function print(o: SendOptions, r: Result, url: string): void {
  const j = parseJson(r.text);
  if (o.json) {
    const line: Record<string, unknown> = {
      i: r.i,
      status: r.status,
      ms: r.ms,
      body: j.ok ? j.value : r.error !== undefined || r.text === "" ? null : r.text,
      ...(r.topic === undefined ? {} : { topic: r.topic }),
      ...(r.error === undefined ? {} : { error: r.error }),
    };
    o.out.write(`${JSON.stringify(line)}\n`);
    return;
  }
  const lines = [`→ POST ${url}  ${r.status} ${r.ms} ms`];
  if (r.error !== undefined) lines.push(`network error: ${r.error}`);
  else if (j.ok) lines.push(JSON.stringify(j.value, null, 2));
  else if (r.text !== "") lines.push(r.text.length > MAX_TEXT ? `${r.text.slice(0, MAX_TEXT)}… (${r.text.length} characters)` : r.text);
  o.out.write(`${lines.join("\n")}\n`);
}

/** Answers with the same status, error and bytes are the same answer. */
const answerKey = (r: { status: number; text: string; error?: string | undefined }): string => `${r.status}\u0000${r.error ?? ""}\u0000${r.text}`;

/**
 * What the copies came to: "20 identical answers, 1 order (ABC-1001)", or how many different
 * answers; the orders (Subscribe Pro's orderNumber) or events (Recharge's eventId) they name.
 */
export function describeCopies(results: readonly { status: number; text: string; error?: string }[]): string {
  const distinct = new Set(results.map(answerKey)).size;
  const answers = distinct === 1 ? `${results.length} identical answers` : `${distinct} different answers`;
  const named = (field: string): string[] => {
    const seen = new Set<string>();
    for (const r of results) {
      const j = parseJson(r.text);
      const v = j.ok && isObject(j.value) ? j.value[field] : undefined;
      if (typeof v === "string" && v !== "") seen.add(v);
    }
    return [...seen];
  };
  const orders = named("orderNumber");
  const events = named("eventId");
  const list = (xs: string[]): string => (xs.length <= 3 ? ` (${xs.join(", ")})` : "");
  if (orders.length > 0) return `${answers}, ${orders.length} order${orders.length === 1 ? "" : "s"}${list(orders)}`;
  if (events.length > 0) return `${answers}, ${events.length} event${events.length === 1 ? "" : "s"}${list(events)}`;
  return `${answers}, no order`;
}
