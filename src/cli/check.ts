import { randomBytes, randomInt } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { PayloadError } from "../errors.js";
import { signSpHmac } from "../security/sp-hmac.js";
import { createSchemaRegistry, type Validator } from "../validation/schemas.js";

/**
 * `orderbridge check URL --secret S`: a conformance check of any Subscribe Pro order-callback
 * handler over HTTP (shared/spec/subscribe-pro-order-callback.md §2–§5, README "The order callback").
 * It places real orders on the handler's platform: point it at a test or staging system.
 */

export interface CheckOptions {
  url: string; // the handler's callback URL
  secret: string; // the shared secret to sign with
  timeoutMs: number; // per request (default used by the owner: 30000)
  junit?: string; // write JUnit XML to this file path
  out: NodeJS.WritableStream; // where the table goes (stdout)
  progress: boolean; // draw a one-line progress bar on `progressOut` while running (only when true)
  progressOut?: NodeJS.WritableStream; // default process.stderr
  /** SKUs the handler's platform sells (default ["RUBY-RED", "EARL-GREY"]) and one it does not know (default "NO-SUCH-SKU-<random>"). */
  skus?: { known: [string, string]; unknown?: string };
}

export interface CheckResult {
  name: string;
  ok: boolean;
  reason: string;
  ms: number;
}

interface Outcome {
  ok: boolean;
  reason: string;
}

interface Answer {
  status: number;
  contentType: string;
  raw: Buffer;
  text: string;
  ms: number;
}

interface Ctx {
  url: URL;
  secret: string;
  timeoutMs: number;
  known: [string, string];
  unknown: string;
  validate: Validator<unknown>;
}

interface Item {
  productSku: string;
  qty: string;
  subscription: { id: string };
}

const USER_AGENT = "orderbridge-check";
/** Answers larger than this are not read to the end (no order callback answer comes near it). */
const MAX_ANSWER_BYTES = 5 * 1024 * 1024;
const SNIPPET_CHARS = 120;
const BAR_WIDTH = 10;

// ---------------------------------------------------------------------------------------------
// Requests

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

type Signature = "valid" | "wrong" | "none";

function send(c: Ctx, body: string | Buffer, signature: Signature = "valid"): Promise<Answer> {
  const raw = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  const headers: Record<string, string> = {};
  if (signature === "valid") headers["Sp-Hmac"] = signSpHmac(c.secret, raw);
  // Well formed (64 lowercase hex digits) but made with another key.
  if (signature === "wrong") headers["Sp-Hmac"] = signSpHmac(`${c.secret}\u0000not-the-shared-secret`, raw);
  return post(c.url, raw, headers, c.timeoutMs);
}

// ---------------------------------------------------------------------------------------------
// Orders

const digits = (n: number): string => Array.from({ length: n }, (_, i) => String(randomInt(i === 0 ? 1 : 0, 10))).join("");
const newToken = (): string => randomBytes(16).toString("hex");

function item(sku: string, qty: string): Item {
  return { productSku: sku, qty, subscription: { id: digits(9) } };
}

const address = {
  firstName: "Jane",
  lastName: "Doe",
  company: "",
  street1: "100 Main St",
  street2: "Apt 4",
  city: "Springfield",
  region: "IL",
  postcode: "62701",
  country: "US",
  countryName: "United States",
  phone: "5555550100",
};

/** An order like §7.1 of the spec, with a fresh salesOrderToken. */
function makeOrder(items: Item[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...extra,
    customerId: digits(6),
    customerEmail: "orderbridge-check@example.com",
    platformCustomerId: `C-${digits(6)}`,
    salesOrderToken: newToken(),
    currency: "USD",
    shippingMethodCode: "ups_ground",
    payment: { paymentProfileId: digits(6) },
    billingAddress: { ...address },
    shippingAddress: { ...address },
    items,
  };
}

const subIds = (items: Item[]): string[] => items.map((i) => i.subscription.id);

// ---------------------------------------------------------------------------------------------
// Judging answers

/** One line, at most SNIPPET_CHARS characters, of a body for a reason. */
function snippet(text: string): string {
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, " ").replace(/\s+/g, " ").trim();
  if (line === "") return "(empty body)";
  return line.length > SNIPPET_CHARS ? `${line.slice(0, SNIPPET_CHARS)}...` : line;
}

function unexpected(expected: string, a: Answer): string {
  return `expected ${expected}, got ${a.status}: ${snippet(a.text)}`;
}

type Json = { ok: true; value: unknown } | { ok: false; reason: string };

function parseAnswer(a: Answer): Json {
  if (!/^application\/([\w.+-]+\+)?json\b/i.test(a.contentType.trim())) {
    return { ok: false, reason: `${a.status} with Content-Type "${a.contentType || "(none)"}", expected application/json: ${snippet(a.text)}` };
  }
  try {
    return { ok: true, value: JSON.parse(a.text) as unknown };
  } catch {
    return { ok: false, reason: `${a.status} with a body that is not JSON: ${snippet(a.text)}` };
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === "string" && v !== "";
const show = (v: unknown): string => (v === undefined ? "missing" : JSON.stringify(v));
const list = (xs: readonly string[]): string => `[${xs.join(", ")}]`;
const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");

/**
 * The schema's invalid fields, without the complaints of the anyOf branches the answer is not
 * meant to take (a 201 is not expected to be an error object).
 */
function schemaProblem(c: Ctx, value: unknown, shape: "placed" | "notPlaced"): string | undefined {
  try {
    c.validate(value);
    return undefined;
  } catch (e) {
    if (!(e instanceof PayloadError)) return `the response schema could not be applied: ${(e as Error).message}`;
    const irrelevant = (pointer: string, message: string): boolean =>
      ((pointer === "/errorMessage" || pointer === "/errorClass") && message === "is required") ||
      (shape === "placed" && (pointer === "/orderNumber" || pointer === "/orderDetails") && message === "must be null") ||
      (shape === "placed" && pointer === "/errorItems" && message.includes("fewer than")) ||
      (shape === "notPlaced" && (pointer.startsWith("/orderDetails/") || /^\/orderNumber$|^\/orderDetails$/.test(pointer)) && message !== "is required");
    const all = e.fields;
    const relevant = all.filter((f) => !irrelevant(f.pointer, f.message));
    const fields = relevant.length > 0 ? relevant : all;
    const text = fields
      .slice(0, 3)
      .map((f) => `${f.pointer || "(body)"} ${f.message}`)
      .join("; ");
    return `does not match the response schema: ${text}${fields.length > 3 ? ` (and ${fields.length - 3} more)` : ""}`;
  }
}

/** What is wrong with a 201/202 answer that should have ordered `ordered` and failed `failed`. */
function placedProblem(c: Ctx, value: unknown, ordered: string[], failed: string[]): string | undefined {
  if (!isObject(value)) return "the body is not a JSON object";
  if (!nonEmpty(value["orderNumber"])) return `orderNumber is ${show(value["orderNumber"])}, expected the order's number`;
  const details = value["orderDetails"];
  if (!isObject(details)) return `orderDetails is ${show(details)}, expected an object`;
  if (details["orderNumber"] !== value["orderNumber"]) {
    return `orderDetails.orderNumber is ${show(details["orderNumber"])}, not the orderNumber ${show(value["orderNumber"])}`;
  }
  const items = details["items"];
  if (!Array.isArray(items)) return `orderDetails.items is ${show(items)}, expected an array`;
  if (items.length !== ordered.length) return `orderDetails.items has ${items.length} entries, expected ${ordered.length} (one per ordered item)`;
  const ids: string[] = [];
  const subs: string[] = [];
  for (const [i, it] of items.entries()) {
    if (!isObject(it)) return `orderDetails.items[${i}] is not an object`;
    if (!nonEmpty(it["platformOrderItemId"])) return `orderDetails.items[${i}].platformOrderItemId is ${show(it["platformOrderItemId"])}, expected a non-empty string`;
    ids.push(it["platformOrderItemId"]);
    subs.push(typeof it["subscriptionId"] === "string" ? it["subscriptionId"] : show(it["subscriptionId"]));
  }
  if (new Set(ids).size !== ids.length) return `the items' platformOrderItemId values are not distinct: ${list(ids)}`;
  if (!sameSet(subs, ordered)) return `orderDetails.items have subscriptionId ${list(subs)}, expected ${list(ordered)}`;
  const errorItems = value["errorItems"];
  if (!Array.isArray(errorItems)) return `errorItems is ${show(errorItems)}, expected an array`;
  const errorSubs = errorItems.map((e) => (isObject(e) && typeof e["subscriptionId"] === "string" ? e["subscriptionId"] : show(isObject(e) ? e["subscriptionId"] : e)));
  if (failed.length === 0 && errorSubs.length > 0) return `errorItems is not empty: ${snippet(JSON.stringify(errorItems))}`;
  if (!sameSet(errorSubs, failed)) return `errorItems have subscriptionId ${list(errorSubs)}, expected ${list(failed)}`;
  return schemaProblem(c, value, "placed");
}

/** What is wrong with a 409 answer that should list every one of `subs` and place nothing. */
function notPlacedProblem(c: Ctx, value: unknown, subs: string[]): string | undefined {
  if (!isObject(value)) return "the body is not a JSON object";
  if (value["orderNumber"] !== null) return `orderNumber is ${show(value["orderNumber"])}, expected null (no order)`;
  if (value["orderDetails"] !== null) return `orderDetails is ${snippet(show(value["orderDetails"]))}, expected null (no order)`;
  const errorItems = value["errorItems"];
  if (!Array.isArray(errorItems)) return `errorItems is ${show(errorItems)}, expected an array listing every item`;
  const listed = new Set(errorItems.map((e) => (isObject(e) ? e["subscriptionId"] : undefined)));
  const missing = subs.filter((s) => !listed.has(s));
  if (missing.length > 0) return `errorItems do not list subscription ${list(missing)} (every item must be listed)`;
  return schemaProblem(c, value, "notPlaced");
}

const pass = (reason: string): Outcome => ({ ok: true, reason });
const fail = (reason: string): Outcome => ({ ok: false, reason });

const REWRITE_HINT = " (does the handler verify a re-serialisation instead of the raw bytes?)";

/** 201 with an order number: the order of a request that must simply succeed. */
function expectCreated(a: Answer, hint = ""): { order: string; value: Record<string, unknown> } | Outcome {
  if (a.status !== 201) return fail(`${unexpected("201", a)}${a.status === 401 || a.status === 403 ? hint : ""}`);
  const json = parseAnswer(a);
  if (!json.ok) return fail(json.reason);
  if (!isObject(json.value) || !nonEmpty(json.value["orderNumber"])) {
    return fail(`201 but orderNumber is ${show(isObject(json.value) ? json.value["orderNumber"] : undefined)}: ${snippet(a.text)}`);
  }
  return { order: json.value["orderNumber"], value: json.value };
}

const isOutcome = (v: object): v is Outcome => "ok" in v;

/** subscriptionId=platformOrderItemId of every item of an order answer, sorted. */
function itemIds(value: Record<string, unknown>): string[] {
  const details = value["orderDetails"];
  const items = isObject(details) && Array.isArray(details["items"]) ? (details["items"] as unknown[]) : [];
  return items.map((it) => (isObject(it) ? `${String(it["subscriptionId"])}=${String(it["platformOrderItemId"])}` : "?")).sort();
}

// ---------------------------------------------------------------------------------------------
// The checks

interface Check {
  name: string;
  run(c: Ctx): Promise<Outcome>;
}

async function refused(c: Ctx, body: string, signature: Signature, what: string): Promise<{ a: Answer; outcome?: Outcome }> {
  const a = await send(c, body, signature);
  if (a.status >= 400 && a.status < 500) return { a };
  if (a.status >= 200 && a.status < 300) return { a, outcome: fail(`accepted ${what}: ${a.status} ${snippet(a.text)}`) };
  return { a, outcome: fail(unexpected("4xx", a)) };
}

const CHECKS: readonly Check[] = [
  {
    name: "valid-order",
    async run(c) {
      const items = [item(c.known[0], "2"), item(c.known[1], "1")];
      const a = await send(c, JSON.stringify(makeOrder(items)));
      if (a.status !== 201) return fail(unexpected("201", a));
      const json = parseAnswer(a);
      if (!json.ok) return fail(json.reason);
      const problem = placedProblem(c, json.value, subIds(items), []);
      if (problem !== undefined) return fail(`201 but ${problem}`);
      return pass(`201 in ${a.ms} ms, order #${String((json.value as Record<string, unknown>)["orderNumber"])}`);
    },
  },
  {
    name: "partial-order",
    async run(c) {
      const good = item(c.known[0], "1");
      const bad = item(c.unknown, "1");
      const a = await send(c, JSON.stringify(makeOrder([good, bad], { allowSomeFailedItems: true })));
      if (a.status !== 202) return fail(unexpected("202", a));
      const json = parseAnswer(a);
      if (!json.ok) return fail(json.reason);
      const problem = placedProblem(c, json.value, [good.subscription.id], [bad.subscription.id]);
      if (problem !== undefined) return fail(`202 but ${problem}`);
      return pass(`202 in ${a.ms} ms, order #${String((json.value as Record<string, unknown>)["orderNumber"])} without ${c.unknown}`);
    },
  },
  {
    name: "impossible-order",
    async run(c) {
      const bad = item(c.unknown, "1");
      const a = await send(c, JSON.stringify(makeOrder([bad])));
      if (a.status !== 409) return fail(unexpected("409", a));
      const json = parseAnswer(a);
      if (!json.ok) return fail(json.reason);
      const problem = notPlacedProblem(c, json.value, [bad.subscription.id]);
      if (problem !== undefined) return fail(`409 but ${problem}`);
      return pass(`409 in ${a.ms} ms, no order, ${c.unknown} listed`);
    },
  },
  {
    name: "all-or-nothing",
    async run(c) {
      const items = [item(c.known[0], "1"), item(c.unknown, "1")];
      const a = await send(c, JSON.stringify(makeOrder(items)));
      if (a.status !== 409) {
        const hint = a.status === 201 || a.status === 202 ? " (an item failed and allowSomeFailedItems is absent, i.e. false: nothing may be ordered)" : "";
        return fail(`${unexpected("409", a)}${hint}`);
      }
      const json = parseAnswer(a);
      if (!json.ok) return fail(json.reason);
      const problem = notPlacedProblem(c, json.value, subIds(items));
      if (problem !== undefined) return fail(`409 but ${problem}`);
      return pass(`409 in ${a.ms} ms, no order, both items listed`);
    },
  },
  {
    name: "idempotent-retry",
    async run(c) {
      const raw = Buffer.from(JSON.stringify(makeOrder([item(c.known[0], "1"), item(c.known[1], "3")])), "utf8");
      const a1 = await send(c, raw);
      const first = expectCreated(a1);
      if (isOutcome(first)) return fail(`first request: ${first.reason}`);
      const a2 = await send(c, raw);
      const second = expectCreated(a2);
      if (isOutcome(second)) return fail(`retry of order #${first.order}: ${second.reason}`);
      if (first.order !== second.order) return fail(`not idempotent: the retry created order #${second.order} (the first was #${first.order})`);
      const ids1 = itemIds(first.value);
      const ids2 = itemIds(second.value);
      if (ids1.join("\n") !== ids2.join("\n")) {
        return fail(`the retry answered order #${first.order} with other item ids: ${list(ids2)}, first ${list(ids1)}`);
      }
      if (!a1.raw.equals(a2.raw)) return pass(`201 twice, same order #${first.order} and item ids, body differs (${a1.ms}/${a2.ms} ms)`);
      return pass(`201 twice, same order #${first.order}, identical body (${a1.ms}/${a2.ms} ms)`);
    },
  },
  {
    name: "pretty-printed",
    async run(c) {
      const a = await send(c, JSON.stringify(makeOrder([item(c.known[0], "1")]), null, 2));
      const r = expectCreated(a, REWRITE_HINT);
      if (isOutcome(r)) return r;
      return pass(`201 in ${a.ms} ms, order #${r.order}`);
    },
  },
  {
    name: "non-ascii",
    async run(c) {
      const order = makeOrder([item(c.known[1], "1")]);
      const addr = { ...address, firstName: "Zoë", lastName: "Ñúñez", company: "@@CAFE@@", street1: "Bahnhofstrasse 1/3", city: "Zürich", region: "ZH", postcode: "8001", country: "CH", countryName: "Schweiz" };
      order["billingAddress"] = addr;
      order["shippingAddress"] = { ...addr };
      // Literal UTF-8, `\/` (PHP's json_encode escapes slashes) and `\u00e9` escapes, all in one body.
      const body = JSON.stringify(order).replaceAll("1/3", "1\\/3").replaceAll("@@CAFE@@", "Caf\\u00e9 M\\u00fcller \\/ S\\u00f6hne");
      const a = await send(c, body);
      const r = expectCreated(a, REWRITE_HINT);
      if (isOutcome(r)) return r;
      return pass(`201 in ${a.ms} ms, order #${r.order}`);
    },
  },
  {
    name: "bad-signature",
    async run(c) {
      const body = JSON.stringify(makeOrder([item(c.known[0], "1")]));
      const { a, outcome } = await refused(c, body, "wrong", "an order with a wrong Sp-Hmac");
      if (outcome !== undefined) return outcome;
      const b = await send(c, body);
      const r = expectCreated(b);
      if (isOutcome(r)) return fail(`refused with ${a.status}, but the same order correctly signed afterwards: ${r.reason} (did the refused request create or claim it?)`);
      return pass(`refused with ${a.status}; the same order correctly signed afterwards placed #${r.order}`);
    },
  },
  {
    name: "missing-signature",
    async run(c) {
      const { a, outcome } = await refused(c, JSON.stringify(makeOrder([item(c.known[0], "1")])), "none", "an order without Sp-Hmac");
      return outcome ?? pass(`refused with ${a.status} in ${a.ms} ms`);
    },
  },
  {
    name: "malformed-json",
    async run(c) {
      const { a, outcome } = await refused(c, '{"customerId": ', "valid", "malformed JSON");
      return outcome ?? pass(`refused with ${a.status} in ${a.ms} ms`);
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Output

function table(results: readonly CheckResult[]): string {
  const head = ["result", "check", "time (ms)", "reason"];
  const rows = results.map((r) => [r.ok ? "PASS" : "FAIL", r.name, String(r.ms), oneLine(r.reason)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const rule = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+`;
  const line = (cells: string[], rightAligned: number): string =>
    `| ${cells.map((cell, i) => ((i === rightAligned ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))).join(" | ")} |`;
  return [rule, line(head, -1), rule, ...rows.map((row) => line(row, 2)), rule].join("\n") + "\n";
}

// XML 1.0 allows neither control characters (other than tab, LF, CR) nor lone surrogates.
const XML_INVALID = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

function xmlEscape(s: string): string {
  return s
    .replace(XML_INVALID, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    .replace(/\n/g, "&#10;")
    .replace(/\r/g, "&#13;")
    .replace(/\t/g, "&#9;");
}

/** A network error's message (Node's AggregateError for a refused dual-stack connect has none). */
function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  if (e.message !== "") return e.message;
  const inner = e instanceof AggregateError ? e.errors.map((x) => (x instanceof Error ? x.message : String(x))).filter(Boolean) : [];
  const code = (e as NodeJS.ErrnoException).code;
  return inner.length > 0 ? inner.join("; ") : (code ?? e.name);
}

const oneLine = (s: string): string => s.replace(/[\u0000-\u001f\u007f]+/g, " ");

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

function junitXml(results: readonly CheckResult[], totalMs: number): string {
  const failures = results.filter((r) => !r.ok).length;
  const cases = results.map((r) => {
    const open = `  <testcase classname="orderbridge.check" name="${xmlEscape(r.name)}" time="${seconds(r.ms)}"`;
    if (r.ok) return `${open}/>`;
    return `${open}>\n    <failure message="${xmlEscape(r.reason)}">${xmlEscape(r.reason)}</failure>\n  </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuite name="orderbridge check" tests="${results.length}" failures="${failures}" errors="0" time="${seconds(totalMs)}">`,
    ...cases,
    "</testsuite>",
    "",
  ].join("\n");
}

function progressBar(out: NodeJS.WritableStream) {
  let drawn = 0;
  return {
    draw(done: number, total: number, label: string): void {
      const filled = total === 0 ? BAR_WIDTH : Math.round((done / total) * BAR_WIDTH);
      const text = `[${"=".repeat(filled)}${" ".repeat(BAR_WIDTH - filled)}] ${done}/${total} ${label}`;
      out.write(`\r${text}${" ".repeat(Math.max(0, drawn - text.length))}`);
      drawn = text.length;
    },
    clear(): void {
      if (drawn > 0) out.write(`\r${" ".repeat(drawn)}\r`);
      drawn = 0;
    },
  };
}

// ---------------------------------------------------------------------------------------------

/**
 * Runs every check in order against `o.url`, writes the table and the summary line to `o.out`
 * (and JUnit XML to `o.junit`). A check never throws: a network error or timeout is a failed check.
 * Throws only for options that cannot work (not an http(s) URL, a timeout that is not positive) or
 * when the JUnit file cannot be written.
 */
export async function runCheck(o: CheckOptions): Promise<{ results: CheckResult[]; passed: number; failed: number; unreachable: boolean }> {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new Error(`not a URL: ${o.url}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`not an http(s) URL: ${o.url}`);
  if (!Number.isFinite(o.timeoutMs) || o.timeoutMs <= 0) throw new Error(`the timeout must be a positive number of milliseconds, not ${o.timeoutMs}`);

  const ctx: Ctx = {
    url,
    secret: o.secret,
    timeoutMs: o.timeoutMs,
    known: o.skus?.known ?? ["RUBY-RED", "EARL-GREY"],
    unknown: o.skus?.unknown ?? `NO-SUCH-SKU-${randomBytes(4).toString("hex").toUpperCase()}`,
    validate: createSchemaRegistry().validator<unknown>("subscribe-pro/order-callback-response"),
  };

  const bar = o.progress ? progressBar(o.progressOut ?? process.stderr) : undefined;
  const results: CheckResult[] = [];
  let unanswered = 0; // checks that got no HTTP answer at all (refused, unresolvable, timed out)
  const started = performance.now();
  for (const check of CHECKS) {
    bar?.draw(results.length, CHECKS.length, check.name);
    const t0 = performance.now();
    let outcome: Outcome;
    try {
      outcome = await check.run(ctx);
    } catch (e) {
      outcome = fail(`request failed: ${errorText(e)}`);
      unanswered++;
    }
    results.push({ name: check.name, ok: outcome.ok, reason: outcome.reason, ms: Math.round(performance.now() - t0) });
  }
  bar?.draw(results.length, CHECKS.length, "done");
  bar?.clear();
  const totalMs = performance.now() - started;

  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  o.out.write(`${table(results)}${passed} passed, ${failed} failed\n`);
  if (o.junit !== undefined) {
    fs.mkdirSync(path.dirname(path.resolve(o.junit)), { recursive: true });
    fs.writeFileSync(o.junit, junitXml(results, totalMs));
  }
  return { results, passed, failed, unreachable: unanswered === results.length };
}
