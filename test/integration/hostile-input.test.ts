// Hostile input through both public endpoints: the Subscribe Pro order callback and the Recharge
// order/created webhook. Every request here is authenticated (the exact bytes sent are signed), so it
// reaches parsing and validation, which is where hostile input matters. The promise under test:
// bad input always gets a 4xx with a JSON `errorMessage` (Recharge's "ignored" 200 for empty test
// bodies aside), never a 5xx, a crash or a hang, nothing is stored, no prototype is polluted, and
// the service answers a valid request afterwards.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import request from "supertest";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { signRechargeLegacy } from "../../src/security/recharge-signature.js";
import { signSpHmac } from "../../src/security/sp-hmac.js";
import { openStore } from "../../src/store/db.js";
import { spawnServer, type RunningServer } from "../helpers/process.js";
import { RC_SECRET, rcFixture, startRechargeService, type RechargeTestService } from "../helpers/recharge.js";
import { ADMIN_TOKEN, CALLBACK, SECRET, minimalOrder } from "../helpers/service.js";
import { freshDatabase, storeKinds } from "../helpers/stores.js";

type Obj = Record<string, unknown>;
type Path = readonly (string | number)[];

/** The only statuses a refused request may get. */
const REFUSALS = new Set([400, 401, 403, 404, 405, 413, 415]);
/** Longer than any sane answer to a request held in memory: past it, the request counts as hung. */
const DEADLINE_MS = 15_000;
/** An answer slower than this is a failure even when it comes (in-process, a blocked loop cannot be cut short). */
const SLOW_MS = 5_000;
/** Property runs per property (8 properties per store kind). */
const RUNS = 60;

const PROTO_NAMES = Object.getOwnPropertyNames(Object.prototype).sort().join(",");

let seq = 0;
const unique = (): number => ++seq;
const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");
const nested = (depth: number, open: string, leaf: string, close: string): string => open.repeat(depth) + leaf + close.repeat(depth);

// ---------------------------------------------------------------------------------------------
// The two endpoints

interface Field {
  path: Path;
  /** Whether a (JSON) value has a type the schema accepts at this place. */
  accepts: (v: unknown) => boolean;
}

interface Endpoint {
  label: string;
  kind: "sp" | "rc";
  path: string;
  sigHeader: string;
  sign(raw: Buffer): string;
  /** A valid body, unique on each call (its own token or order id). */
  valid(): Obj;
  /** Fields of valid() and the JSON types they accept, for the wrong-type property. */
  fields: readonly Field[];
}

type JsonType = "null" | "boolean" | "integer" | "number" | "string" | "array" | "object";
const types =
  (...accepted: JsonType[]) =>
  (v: unknown): boolean => {
    if (v === null) return accepted.includes("null");
    if (Array.isArray(v)) return accepted.includes("array");
    switch (typeof v) {
      case "boolean":
        return accepted.includes("boolean");
      case "string":
        return accepted.includes("string");
      case "number":
        return accepted.includes("number") || (accepted.includes("integer") && Number.isInteger(v));
      case "object":
        return accepted.includes("object");
      default:
        return false;
    }
  };

const SP: Endpoint = {
  label: "Subscribe Pro callback",
  kind: "sp",
  path: CALLBACK,
  sigHeader: "Sp-Hmac",
  sign: (raw) => signSpHmac(SECRET, raw),
  valid: () =>
    minimalOrder(`hostile-${process.pid}-${unique()}`, [{ productSku: "RUBY-RED", qty: 1, subscription: { id: "s" } }], {
      allowSomeFailedItems: false,
      payment: { paymentToken: "tok" },
    }),
  fields: [
    { path: ["customerId"], accepts: types("string", "integer") },
    { path: ["customerEmail"], accepts: types("string") },
    { path: ["platformCustomerId"], accepts: types("string", "integer", "null") },
    { path: ["salesOrderToken"], accepts: types("string", "null") },
    { path: ["currency"], accepts: types("string") },
    { path: ["allowSomeFailedItems"], accepts: types("boolean", "null") },
    { path: ["payment"], accepts: types("object") },
    { path: ["payment", "paymentToken"], accepts: types("string", "null") },
    { path: ["shippingAddress"], accepts: types("object", "null") },
    { path: ["shippingAddress", "city"], accepts: types("string", "null") },
    { path: ["items"], accepts: types("array") },
    { path: ["items", 0], accepts: types("object") },
    { path: ["items", 0, "productSku"], accepts: types("string") },
    { path: ["items", 0, "qty"], accepts: types("string", "number") },
    { path: ["items", 0, "subscription"], accepts: types("object", "null") },
    { path: ["items", 0, "subscription", "id"], accepts: types("string", "integer") },
  ],
};

const RC_ORDER_ID_BASE = 700_000_000;
const RC: Endpoint = {
  label: "Recharge order/created",
  kind: "rc",
  path: "/webhooks/recharge/order/created",
  sigHeader: "X-Recharge-Hmac-Sha256",
  sign: (raw) => signRechargeLegacy(RC_SECRET, raw),
  valid: () => {
    const body = rcFixture("2021-11", "order-created") as Obj;
    (body["order"] as Obj)["id"] = RC_ORDER_ID_BASE + unique();
    return body;
  },
  fields: [
    { path: ["order"], accepts: types("object") },
    { path: ["order", "id"], accepts: types("integer", "string") },
    { path: ["order", "status"], accepts: types("string") },
    { path: ["order", "email"], accepts: types("string", "null") },
    { path: ["order", "currency"], accepts: types("string", "null") },
    { path: ["order", "is_prepaid"], accepts: (v) => v === true || v === false || v === 0 || v === 1 || v === null },
    { path: ["order", "customer"], accepts: types("object", "null") },
    { path: ["order", "billing_address"], accepts: types("object", "null") },
    { path: ["order", "note"], accepts: types("string", "null") },
    { path: ["order", "line_items"], accepts: types("array", "null") },
    { path: ["order", "line_items", 0], accepts: types("object") },
    { path: ["order", "line_items", 0, "quantity"], accepts: types("integer", "string") },
    { path: ["order", "line_items", 0, "sku"], accepts: types("string", "null") },
  ],
};

/** A minimal valid Recharge body, small enough for BODY_LIMIT=2kb. */
const smallRcBody = (): Obj => ({ order: { id: RC_ORDER_ID_BASE + unique(), status: "success", line_items: [] } });

function setPath(root: Obj, path: Path, value: unknown): void {
  let node: unknown = root;
  for (const key of path.slice(0, -1)) {
    if (node === null || typeof node !== "object") return;
    node = (node as Obj)[key as string];
  }
  if (node === null || typeof node !== "object") return;
  (node as Obj)[path[path.length - 1] as string] = value;
}

/** `text` is a JSON object's text; returns it with `members` ('"k":v' text) added first or last. */
const withMembers = (text: string, members: string, at: "first" | "last" = "first"): string =>
  at === "first" ? `{${members},${text.slice(1)}` : `${text.slice(0, -1)},${members}}`;

// ---------------------------------------------------------------------------------------------
// Sending, and judging the answer

interface Answer {
  status: number;
  contentType: string;
  allow: string | undefined;
  text: string;
  json: unknown;
}

function toAnswer(status: number, headers: http.IncomingHttpHeaders | Record<string, string>, text: string): Answer {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const h = headers as Record<string, string | string[] | undefined>;
  const allow = h["allow"];
  return { status, contentType: String(h["content-type"] ?? ""), allow: Array.isArray(allow) ? allow.join(", ") : allow, text, json };
}

interface SendOptions {
  /** null: no Content-Type header at all (sent over raw HTTP: superagent may add one). */
  contentType?: string | null;
  sign?: boolean;
  headers?: Record<string, string>;
  method?: "post" | "get" | "put" | "delete" | "patch";
}

async function send(t: RechargeTestService, ep: Endpoint, raw: Buffer, o: SendOptions = {}): Promise<Answer> {
  let req = request(t.app)
    [o.method ?? "post"](ep.path)
    .serialize((x: unknown) => x as string)
    .timeout({ deadline: DEADLINE_MS });
  if (o.contentType !== null) req = req.set("Content-Type", o.contentType ?? "application/json");
  if (o.sign !== false) req = req.set(ep.sigHeader, ep.sign(raw));
  for (const [k, v] of Object.entries(o.headers ?? {})) req = req.set(k, v);
  const res = await req.send(raw);
  return toAnswer(res.status, res.headers as Record<string, string>, res.text);
}

interface RawOptions {
  path: string;
  method?: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
  /** Send the body in two chunks with Transfer-Encoding: chunked (no Content-Length). */
  chunked?: boolean;
}

/** Plain node:http, for what supertest cannot send: a header twice, no Content-Type, chunked bodies. */
function rawRequest(port: number, o: RawOptions): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = http.request({ host: "127.0.0.1", port, method: o.method ?? "POST", path: o.path, agent: false });
    const timer = setTimeout(() => {
      settled = true;
      req.destroy();
      reject(new Error(`no answer within ${DEADLINE_MS} ms`));
    }, DEADLINE_MS);
    for (const [k, v] of Object.entries(o.headers)) req.setHeader(k, v);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        settled = true;
        req.destroy();
        resolve(toAnswer(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString("utf8")));
      });
    });
    req.on("error", (e) => {
      // The server may close the connection after answering early (413): the answer counts.
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
    if (o.chunked === true) {
      const half = Math.floor(o.body.length / 2);
      req.write(o.body.subarray(0, half));
      req.end(o.body.subarray(half));
    } else {
      req.setHeader("Content-Length", String(o.body.length));
      req.end(o.body);
    }
  });
}

interface Snapshot {
  spCallbacks: number;
  localOrders: number;
  /** Jobs (an ignored event, e.g. Recharge's empty test body, is recorded on purpose, as an inbox event without a job). */
  jobsLive: number;
  /** Inbox events recorded as ignored. */
  jobsIgnored: number;
}

async function snapshot(t: RechargeTestService): Promise<Snapshot> {
  const db = t.store.db;
  const count = async (what: "ignored" | "live"): Promise<number> => {
    const row =
      what === "live"
        ? await db
            .selectFrom("jobs")
            .select((eb) => eb.fn.countAll<number>().as("n"))
            .executeTakeFirstOrThrow()
        : await db
            .selectFrom("recharge_inbox")
            .select((eb) => eb.fn.countAll<number>().as("n"))
            .where("ignored_reason", "is not", null)
            .executeTakeFirstOrThrow();
    return Number(row.n);
  };
  return {
    spCallbacks: await t.count("sp_callbacks"),
    localOrders: await t.count("local_orders"),
    jobsLive: await count("live"),
    jobsIgnored: await count("ignored"),
  };
}

function describeBytes(raw: Buffer): string {
  const head = raw.subarray(0, 120);
  const printable = /^[\x20-\x7e]*$/.test(head.toString("latin1"));
  return `${raw.length} bytes, starting ${printable ? JSON.stringify(head.toString("latin1")) : `hex ${head.toString("hex")}`}`;
}

/** Recharge treats a body that is blank or "{}" as its test webhook. */
const blankForRecharge = (raw: Buffer): boolean => ["", "{}"].includes(raw.toString("utf8").trim());

interface Allowances {
  /** The body may be valid data: a 201/202 (SP) or an accepted/duplicate 200 (Recharge) is fine too. */
  dataOk?: boolean;
  /**
   * A bad quantity is an item failure, not a malformed request: SP answers 409 with every item
   * failed (nothing placed); Recharge accepts the event (JSON reads 1e-400 as a plain 0, which the
   * schema admits) and processing dead-letters it with the reason, for replay (README).
   */
  itemFailureOk?: boolean;
}

/** Undefined when the answer keeps the promise; otherwise what went wrong. */
function judge(ep: Endpoint, raw: Buffer, a: Answer, was: Snapshot, now: Snapshot, allow: Allowances = {}): string | undefined {
  const problems: string[] = [];
  const body = (a.json ?? {}) as Obj;
  const unchanged = (keys: (keyof Snapshot)[]): void => {
    for (const k of keys) if (now[k] !== was[k]) problems.push(`${k} went from ${was[k]} to ${now[k]}: something was stored`);
  };
  if (({} as Obj)["polluted"] !== undefined || Object.getOwnPropertyNames(Object.prototype).sort().join(",") !== PROTO_NAMES) {
    problems.push("Object.prototype was polluted");
  }
  if (ep.kind === "rc" && a.status === 200 && body["status"] === "ignored") {
    if (!blankForRecharge(raw)) problems.push("answered 200 ignored for a body that is not empty");
    unchanged(["spCallbacks", "localOrders", "jobsLive"]);
    if (now.jobsIgnored - was.jobsIgnored > 1) problems.push("more than one ignored event stored");
  } else if (allow.dataOk === true && (ep.kind === "sp" ? a.status === 201 || a.status === 202 : a.status === 200 && ["accepted", "duplicate"].includes(String(body["status"])))) {
    // handled as data
  } else if (allow.itemFailureOk === true && ep.kind === "sp" && a.status === 409 && body["orderNumber"] === null && Array.isArray(body["errorItems"])) {
    unchanged(["localOrders", "jobsLive", "jobsIgnored"]);
  } else if (allow.itemFailureOk === true && ep.kind === "rc" && a.status === 200 && body["status"] === "accepted") {
    unchanged(["spCallbacks", "localOrders", "jobsIgnored"]);
  } else {
    if (!REFUSALS.has(a.status)) problems.push(`status ${a.status} is not a refusal (${[...REFUSALS].join(", ")})`);
    if (!/^application\/json/.test(a.contentType)) problems.push(`content-type is "${a.contentType}", not JSON`);
    if (typeof body["errorMessage"] !== "string" || body["errorMessage"].trim() === "") problems.push("no errorMessage in the body");
    unchanged(["spCallbacks", "localOrders", "jobsLive", "jobsIgnored"]);
  }
  if (problems.length === 0) return undefined;
  return `${ep.label} ← ${describeBytes(raw)}\n  → ${a.status} ${a.text.slice(0, 400)}\n  ${problems.join("\n  ")}`;
}

/** The endpoint still places / accepts a fresh valid request. */
async function assertStillServes(t: RechargeTestService, ep: Endpoint, body: Obj = ep.valid()): Promise<void> {
  const a = await send(t, ep, utf8(JSON.stringify(body)));
  if (ep.kind === "sp") assert.equal(a.status, 201, `a valid callback afterwards: ${a.status} ${a.text}`);
  else {
    assert.equal(a.status, 200, `a valid webhook afterwards: ${a.status} ${a.text}`);
    assert.equal((a.json as Obj)["status"], "accepted", a.text);
  }
}

interface Case extends Allowances {
  name: string;
  raw: Buffer;
  /** How to send it; signed POST as application/json by default. */
  send?: (raw: Buffer) => Promise<Answer>;
  /** This exact refusal status is expected (on top of the general promise). */
  status?: number;
  /** ...and this Allow header. */
  allowHeader?: string;
  /** ...and this errorCode, with this pointer among its `errors`. */
  errorCode?: string;
  pointer?: string;
}

/**
 * Runs every case (all of them, even after a failure), then checks the endpoint still serves.
 * `refusal`: the status expected of cases that are neither data nor Recharge's ignored test body.
 */
async function runCases(t: RechargeTestService, ep: Endpoint, cases: Case[], refusal?: number): Promise<void> {
  const failures: string[] = [];
  for (const c of cases) {
    const was = await snapshot(t);
    const started = Date.now();
    let a: Answer;
    try {
      a = await (c.send ?? ((raw: Buffer) => send(t, ep, raw)))(c.raw);
    } catch (e) {
      failures.push(`[${c.name}] ${ep.label} ← ${describeBytes(c.raw)}\n  → no answer: ${(e as Error).message}`);
      continue;
    }
    const took = Date.now() - started;
    const problem = judge(ep, c.raw, a, was, await snapshot(t), c);
    const ignored = ep.kind === "rc" && a.status === 200 && (a.json as Obj | undefined)?.["status"] === "ignored";
    const expected = c.status ?? (c.dataOk === true || c.itemFailureOk === true || ignored ? undefined : refusal);
    if (problem !== undefined) failures.push(`[${c.name}] ${problem}`);
    else if (expected !== undefined && a.status !== expected) failures.push(`[${c.name}] ${ep.label}: ${a.status} instead of ${expected}: ${a.text.slice(0, 300)}`);
    else if (c.allowHeader !== undefined && a.allow !== c.allowHeader) failures.push(`[${c.name}] ${ep.label}: Allow: ${String(a.allow)} instead of ${c.allowHeader}`);
    else {
      const wrong = refusalMismatch(a, c);
      if (wrong !== undefined) failures.push(`[${c.name}] ${ep.label}: ${wrong}`);
    }
    if (took > SLOW_MS) failures.push(`[${c.name}] ${ep.label} ← ${describeBytes(c.raw)}: took ${took} ms (the event loop was blocked that long)`);
  }
  await assertStillServes(t, ep, ep.kind === "rc" && t.config.bodyLimitBytes < 8192 ? smallRcBody() : ep.valid());
  if (failures.length > 0) assert.fail(`${failures.length} of ${cases.length} case(s) broke the promise:\n\n${failures.join("\n\n")}`);
}

/** What differs from the errorCode and pointer a case expects, or undefined. */
function refusalMismatch(a: Answer, c: { errorCode?: string; pointer?: string }): string | undefined {
  const body = (a.json ?? {}) as Obj;
  if (c.errorCode !== undefined && body["errorCode"] !== c.errorCode) return `errorCode ${String(body["errorCode"])} instead of ${c.errorCode}: ${a.text.slice(0, 300)}`;
  const pointers = Array.isArray(body["errors"]) ? (body["errors"] as Obj[]).map((e) => e["pointer"]) : [];
  if (c.pointer !== undefined && !pointers.includes(c.pointer)) return `no error with pointer ${JSON.stringify(c.pointer)} (got ${JSON.stringify(pointers)})`;
  return undefined;
}

/** One property run: send signed, judge, throw (for fast-check to shrink) when the promise breaks. */
async function probe(t: RechargeTestService, ep: Endpoint, raw: Buffer): Promise<void> {
  const was = await snapshot(t);
  const a = await send(t, ep, raw);
  const problem = judge(ep, raw, a, was, await snapshot(t));
  if (problem !== undefined) throw new Error(problem);
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** A JSON-round-tripped fc.anything() (no functions, no bigints), whose JSON type `field` refuses. */
function wrongValue(field: Field): fc.Arbitrary<unknown> {
  return fc
    .anything({ withBigInt: false, withMap: false, withSet: false, withTypedArray: false, withSparseArray: false })
    .map((v) => {
      const text = JSON.stringify(v) as string | undefined;
      return text === undefined ? undefined : (JSON.parse(text) as unknown);
    })
    .filter((v) => v !== undefined && !field.accepts(v));
}

/** The valid body with 1 to 4 of its fields replaced by values of a wrong type. */
function wrongTypes(ep: Endpoint): fc.Arbitrary<Buffer> {
  const replacement = fc.oneof(...ep.fields.map((f) => fc.tuple(fc.constant(f.path), wrongValue(f))));
  return fc.array(replacement, { minLength: 1, maxLength: 4 }).map((replacements) => {
    const body = ep.valid();
    for (const [path, value] of replacements) setPath(body, path, value);
    return utf8(JSON.stringify(body));
  });
}

const jsonText = (value: fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> =>
  fc.tuple(value, fc.constantFrom(0, 2)).map(([v, indent]) => utf8(JSON.stringify(v, null, indent) ?? "null"));

function truncations(ep: Endpoint): fc.Arbitrary<Buffer> {
  const whole = utf8(JSON.stringify(ep.valid()));
  return fc.integer({ min: 0, max: whole.length - 1 }).map((n) => whole.subarray(0, n));
}

// ---------------------------------------------------------------------------------------------
// Fixed cases, per endpoint

function fixedCases(ep: Endpoint): Record<string, Case[]> {
  const sp = ep.kind === "sp";
  const validText = (): string => JSON.stringify(ep.valid());
  const wrongEverywhere: Obj = sp
    ? {
        customerId: true,
        customerEmail: 5,
        platformCustomerId: [],
        salesOrderToken: {},
        currency: 1.5,
        allowSomeFailedItems: "yes",
        payment: "card",
        billingAddress: 7,
        shippingAddress: [null],
        shippingMethodCodes: "ground",
        couponCodes: { a: 1 },
        items: [{ productSku: 1, qty: true, subscription: [], requiresShipping: "no", fixedPrice: {} }, "item", null],
      }
    : {
        order: {
          id: 1.5,
          status: 5,
          is_prepaid: "yes",
          email: [],
          currency: 840,
          customer: "c",
          billing_address: 1,
          line_items: [{ quantity: -1.5, sku: {}, properties: 7 }, 3, null],
          shipping_lines: {},
          discounts: "none",
          tax_lines: [1],
          note: true,
          external_order_id: [],
        },
      };
  const inValid = (path: Path, valueText: string): Buffer => {
    // Put raw JSON text at `path` of a valid body (so the text is not re-serialised).
    const marker = `__hostile_${unique()}__`;
    const body = ep.valid();
    setPath(body, path, marker);
    return utf8(JSON.stringify(body).replace(JSON.stringify(marker), valueText));
  };
  const knownDeepField: Path = sp ? ["payment"] : ["order", "line_items"];
  const boundedText: Path = sp ? ["customerEmail"] : ["order", "email"];
  const idField: Path = sp ? ["customerId"] : ["order", "id"];
  const nestedId: Path = sp ? ["items", 0, "subscription", "id"] : ["order", "customer", "id"];
  const quantity: Path = sp ? ["items", 0, "qty"] : ["order", "line_items", 0, "quantity"];
  const item: Path = sp ? ["items", 0] : ["order", "line_items", 0];
  const address: Path = sp ? ["shippingAddress"] : ["order", "shipping_address"];
  const pollute = '{"polluted":"yes"}';
  const deep = 100_000;

  return {
    malformed: [
      ...[
        '{"a":}',
        "{'a':1}",
        '{"a":1,}',
        "{a:1}",
        "NaN",
        "undefined",
        '{"a":01}',
        '{"a":"\u0001"}',
        '{"a":"\\x41"}',
        "[1,2",
        "}",
        "\u0000",
        "{} {}",
        '{"a":1}garbage',
        "/* c */ {}",
        '"unterminated',
      ].map((text) => ({ name: `malformed JSON ${JSON.stringify(text)}`, raw: utf8(text) })),
      { name: "a valid body followed by a second JSON value", raw: utf8(`${validText()} {}`) },
      { name: "a valid body with a trailing comma", raw: utf8(`${validText().slice(0, -1)},}`) },
      { name: "a valid body with a comment", raw: utf8(validText().replace(/^\{/, "{/* hi */")) },
      { name: "a valid body as a JSON string", raw: utf8(JSON.stringify(validText())) },
      { name: "a valid body in an array", raw: utf8(`[${validText()}]`) },
      { name: "NUL bytes", raw: Buffer.alloc(64) },
    ],
    truncated: [0.99, 0.75, 0.5, 0.1].map((f) => {
      const text = validText();
      return { name: `valid body cut at ${Math.round(f * 100)} %`, raw: utf8(text.slice(0, Math.floor(text.length * f))) };
    }),
    deepNesting: [
      { name: `${deep} nested arrays`, raw: utf8(nested(deep, "[", "", "]")) },
      { name: `${deep} nested objects`, raw: utf8(nested(deep, '{"a":', "1", "}")) },
      { name: `${deep} unclosed arrays`, raw: utf8("[".repeat(deep)) },
      { name: `${deep} nested arrays in a known field`, raw: inValid(knownDeepField, nested(deep, "[", "", "]")) },
      { name: `${deep} nested objects in a known text field`, raw: inValid(boundedText, nested(deep, '{"a":', "1", "}")) },
      // Unknown properties are kept (README), so this may be accepted as data; but never a 5xx.
      { name: `${deep} nested arrays in an unknown field of a valid body`, raw: inValid(["extra"], nested(deep, "[", "", "]")), dataOk: true },
      { name: `${deep} nested objects in an unknown field of a valid body`, raw: inValid(["extra"], nested(deep, '{"a":', "1", "}")), dataOk: true },
    ],
    hugeStrings: [
      { name: "a 900 kB string in a bounded text field", raw: inValid(boundedText, JSON.stringify("a".repeat(900_000))) },
      { name: "a 900 kB string in the id", raw: inValid(idField, JSON.stringify("9".repeat(900_000))) },
      { name: "a 900 kB string of multi-byte characters", raw: inValid(boundedText, JSON.stringify("é€".repeat(180_000))) },
      { name: "a 900 kB string of \\u escapes", raw: inValid(boundedText, `"${"\\u0000".repeat(150_000)}"`) },
      { name: "a 900 kB key", raw: utf8(withMembers(validText(), `${JSON.stringify("k".repeat(900_000))}:1`)), dataOk: true },
      { name: "a 900 kB string as the whole body", raw: utf8(JSON.stringify("x".repeat(900_000))) },
    ],
    // Arrays whose items are each invalid are in "huge arrays (own process)" below: they can block
    // the event loop, which an in-process test cannot time out.
    hugeArrays: [
      { name: "a top-level array of 200 000 numbers", raw: utf8(`[${"1,".repeat(199_999)}1]`) },
      { name: "a top-level array of 200 000 objects", raw: utf8(`[${"{},".repeat(199_999)}{}]`) },
      {
        name: "200 000 strings in a bounded list",
        raw: inValid(sp ? ["couponCodes"] : ["order", "discount_codes"], `[${'"a",'.repeat(199_999)}"a"]`),
      },
    ],
    numbers: [
      ...["1e400", "-1e400", "1e-400", "12345678901234567890123"].flatMap((n) => [
        { name: `${n} as the ${idField.join(".")}`, raw: inValid(idField, n) },
        { name: `${n} as ${nestedId.join(".")}`, raw: inValid(nestedId, n) },
        // A quantity that is not a whole number from 1 to 100000 is an item failure (see Allowances).
        { name: `${n} as ${quantity.join(".")}`, raw: inValid(quantity, n), itemFailureOk: true },
      ]),
      { name: "1e400 as the whole body", raw: utf8("1e400") },
    ],
    prototypeKeys: [
      { name: "__proto__ at the top level", raw: utf8(withMembers(validText(), `"__proto__":${pollute}`)), dataOk: true },
      { name: "__proto__ spelled with an escape", raw: utf8(withMembers(validText(), `"\\u005f_proto__":${pollute}`)), dataOk: true },
      { name: "constructor.prototype at the top level", raw: utf8(withMembers(validText(), `"constructor":{"prototype":${pollute}}`)), dataOk: true },
      { name: "prototype at the top level", raw: utf8(withMembers(validText(), `"prototype":${pollute}`)), dataOk: true },
      { name: "__proto__: null at the top level", raw: utf8(withMembers(validText(), `"__proto__":null`)), dataOk: true },
      {
        name: "__proto__ in an item",
        raw: inValid(
          item,
          JSON.stringify({ ...(sp ? { productSku: "RUBY-RED", qty: 1, subscription: { id: "s" } } : { quantity: 1, sku: "RUBY-RED" }) }).replace(/^\{/, `{"__proto__":${pollute},`),
        ),
        dataOk: true,
      },
      { name: "constructor.prototype in the address", raw: inValid(address, `{"city":"X","constructor":{"prototype":${pollute}}}`), dataOk: true },
      { name: "__proto__ in the address", raw: inValid(address, `{"city":"X","__proto__":${pollute}}`), dataOk: true },
      { name: "only __proto__", raw: utf8(`{"__proto__":${pollute}}`) },
      {
        name: "every required field hidden in __proto__",
        raw: utf8(sp ? `{"__proto__":${validText()}}` : `{"__proto__":${JSON.stringify(ep.valid()["order"] as Obj)}}`),
      },
      ...(sp ? [] : [{ name: "order fields hidden in order.__proto__", raw: utf8(`{"order":{"__proto__":${JSON.stringify(ep.valid()["order"])}}}`) }]),
    ],
    encoding: [
      { name: "invalid UTF-8 (C3 28) inside a string", raw: Buffer.concat([utf8('{"a":"'), Buffer.from([0xc3, 0x28]), utf8('"}')]) },
      {
        name: "invalid UTF-8 (C3 28) in a valid body's text field",
        raw: (() => {
          const text = validText();
          const i = text.indexOf("@example.com");
          return Buffer.concat([utf8(text.slice(0, i)), Buffer.from([0xc3, 0x28]), utf8(text.slice(i))]);
        })(),
      },
      { name: "only C3 28", raw: Buffer.from([0xc3, 0x28]) },
      { name: "overlong encoding (C0 AF)", raw: Buffer.concat([utf8(validText().slice(0, -1)), utf8(',"x":"'), Buffer.from([0xc0, 0xaf]), utf8('"}')]) },
      { name: "an encoded surrogate (ED A0 80)", raw: Buffer.concat([utf8(validText().slice(0, -1)), utf8(',"x":"'), Buffer.from([0xed, 0xa0, 0x80]), utf8('"}')]) },
      { name: "a truncated sequence at the end (E2 82)", raw: Buffer.concat([utf8(validText()), Buffer.from([0xe2, 0x82])]) },
      { name: "FF FE bytes", raw: Buffer.concat([Buffer.from([0xff, 0xfe]), utf8(validText())]) },
      { name: "UTF-16LE text", raw: Buffer.from(validText(), "utf16le") },
      // A leading BOM is tolerated (src/validation/json.ts): accepted as data, or refused; never a 5xx.
      { name: "a UTF-8 BOM before a valid body", raw: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8(validText())]), dataOk: true },
      { name: "a UTF-8 BOM before malformed JSON", raw: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8('{"a":')]) },
      { name: "two UTF-8 BOMs before a valid body", raw: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), utf8(validText())]) },
      { name: "only a UTF-8 BOM", raw: Buffer.from([0xef, 0xbb, 0xbf]) },
    ],
    duplicateKeys: [
      { name: '{"a":1,"a":2}', raw: utf8('{"a":1,"a":2}') },
      { name: "a required field repeated, the last one of a wrong type", raw: utf8(withMembers(validText(), sp ? '"customerEmail":5' : '"order":5', "last")) },
      { name: "the item list repeated, the last one empty", raw: utf8(withMembers(validText(), sp ? '"items":[]' : '"order":{}', "last")) },
      ...(sp ? [] : [{ name: "the order id repeated inside the order", raw: utf8(validText().replace(/"id":(\d+)/, '"id":$1,"id":"abc"')) }]),
      // JSON.parse keeps the last of duplicated keys: a wrong value first, then a valid one, is data.
      { name: "a wrong value first, then the valid one", raw: utf8(withMembers(validText(), sp ? '"customerEmail":5' : '"order":5')), dataOk: true },
    ],
    // JSON.parse accepts "\u0000" and lone surrogates, but neither store keeps them faithfully
    // (PostgreSQL refuses them, SQLite keeps or alters them): refused at once, alike on both, with
    // the pointer of the value or property name that holds one.
    unstorableText: [
      ...[
        { what: "NUL", text: '"a\\u0000@example.com"' },
        { what: "NUL alone", text: '"\\u0000"' },
        { what: "a lone high surrogate", text: '"a\\ud800@example.com"' },
        { what: "a lone low surrogate", text: '"\\udc00"' },
        { what: "a surrogate pair in the wrong order", text: '"\\ude00\\ud83d"' },
      ].map(({ what, text }) => ({ name: `${what} in ${boundedText.join(".")}`, raw: inValid(boundedText, text), pointer: `/${boundedText.join("/")}` })),
      sp
        ? { name: "NUL in salesOrderToken", raw: inValid(["salesOrderToken"], `"tok-${unique()}\\u0000"`), pointer: "/salesOrderToken" }
        : { name: "NUL in the order id (a string)", raw: inValid(["order", "id"], `"${RC_ORDER_ID_BASE + unique()}\\u0000"`), pointer: "/order/id" },
      sp
        ? { name: "NUL in an item's SKU", raw: inValid(["items", 0, "productSku"], '"RUBY-RED\\u0000"'), pointer: "/items/0/productSku" }
        : { name: "NUL in a line item's SKU", raw: inValid(["order", "line_items", 0, "sku"], '"RUBY-RED\\u0000"'), pointer: "/order/line_items/0/sku" },
      { name: "NUL in an unknown property (kept with the order)", raw: inValid(["extra"], '{"note":["ok","x\\u0000"]}'), pointer: "/extra/note/1" },
      { name: "NUL in a property name", raw: utf8(withMembers(validText(), '"a\\u0000b":1')), pointer: "/a\u0000b" },
      { name: "NUL in a property name with / and ~ (escaped in the pointer)", raw: utf8(withMembers(validText(), '"a/b~\\u0000":1')), pointer: "/a~1b~0\u0000" },
      { name: "a lone surrogate in a nested property name", raw: inValid(address, '{"city":"X","\\ud800":"y"}'), pointer: `/${address.join("/")}/\ud800` },
      { name: "NUL in a string as the whole body", raw: utf8('"\\u0000"'), pointer: "" },
    ].map((c): Case => ({ ...c, errorCode: "schema_violation" })),
    // A character beyond U+FFFF, written as its escaped surrogate pair, is ordinary text.
    wellFormedText: [
      {
        name: "an escaped surrogate pair (U+1F600) in a text field",
        raw: inValid(sp ? ["shippingAddress", "city"] : ["order", "note"], '"tea \\ud83d\\ude00"'),
        dataOk: true,
        status: sp ? 201 : 200,
      },
      { name: "U+1F600 in a property name", raw: utf8(withMembers(validText(), '"\\ud83d\\ude00":1')), dataOk: true, status: sp ? 201 : 200 },
    ],
    wrongTypes: [
      { name: "wrong types everywhere", raw: utf8(JSON.stringify(wrongEverywhere)) },
      { name: "null", raw: utf8("null") },
      { name: "true", raw: utf8("true") },
      { name: "a number", raw: utf8("42") },
      { name: "a string", raw: utf8('"order"') },
      { name: "an empty array", raw: utf8("[]") },
      {
        name: "strings for every number and object",
        raw: utf8(JSON.stringify(sp ? { ...ep.valid(), payment: "{}", items: "[]" } : { order: JSON.stringify(ep.valid()["order"]) })),
      },
      { name: "the item as a list", raw: inValid(item, "[[1]]") },
    ],
  };
}

// ---------------------------------------------------------------------------------------------

for (const { kind, skip } of await storeKinds()) {
  describe(`hostile input [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    let server: http.Server;
    let port: number;
    before(async () => {
      // One service serves both endpoints; no worker, so this is what receiving alone stores.
      t = await startRechargeService(kind, { startWorker: false });
      server = http.createServer(t.app);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      port = (server.address() as AddressInfo).port;
    });
    after(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await t.stop();
    });

    for (const ep of [SP, RC]) {
      describe(ep.label, () => {
        describe("property-based (each body signed)", () => {
          it("arbitrary JSON values are refused", async () => {
            const values = ep.kind === "rc" ? fc.oneof(fc.jsonValue(), fc.record({ order: fc.jsonValue() })) : fc.jsonValue();
            await fc.assert(
              fc.asyncProperty(jsonText(values), (raw) => probe(t, ep, raw)),
              { numRuns: RUNS },
            );
            await assertStillServes(t, ep);
          });

          it("the valid body with fields of wrong types (fc.anything) is refused", async () => {
            await fc.assert(
              fc.asyncProperty(wrongTypes(ep), (raw) => probe(t, ep, raw)),
              { numRuns: RUNS },
            );
            await assertStillServes(t, ep);
          });

          it("random bytes are refused", async () => {
            await fc.assert(
              fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), (bytes) => probe(t, ep, Buffer.from(bytes))),
              { numRuns: RUNS },
            );
            await assertStillServes(t, ep);
          });

          it("the valid body cut at any position is refused", async () => {
            await fc.assert(
              fc.asyncProperty(truncations(ep), (raw) => probe(t, ep, raw)),
              { numRuns: RUNS },
            );
            await assertStillServes(t, ep);
          });
        });

        describe("fixed cases (each body signed)", () => {
          const groups = fixedCases(ep);
          const titles: Record<string, string> = {
            malformed: "malformed JSON is refused with 400",
            truncated: "truncated JSON is refused with 400",
            deepNesting: "100 000 levels of nesting do not overflow the stack: 400 (or data, never 5xx)",
            hugeStrings: "900 kB strings are refused quickly",
            hugeArrays: "200 000-item arrays that the schema refuses early are refused",
            numbers: "numbers out of range (1e400, -1e400, 1e-400, 12345678901234567890123) are refused, never silently rounded",
            prototypeKeys: "__proto__ / constructor / prototype keys are data or refused, and pollute nothing",
            encoding: "invalid UTF-8, a BOM, and non-UTF-8 text are refused (a single leading BOM may be tolerated)",
            duplicateKeys: "duplicated keys are refused, or read as JSON.parse does",
            wrongTypes: "wrong types everywhere are refused with 400",
            unstorableText: "U+0000 and unpaired surrogates, in any string or property name, are refused with 400 and their pointer",
            wellFormedText: "characters beyond U+FFFF (escaped surrogate pairs) are accepted",
          };
          for (const [group, title] of Object.entries(titles)) {
            it(title, async () => {
              await runCases(t, ep, groups[group] ?? assert.fail(`no cases for ${group}`), 400);
            });
          }

          it("Content-Type missing, text/plain, or not UTF-8", async () => {
            // Subscribe Pro's callback insists on JSON in UTF-8 (415) even for a valid body; Recharge
            // takes any content type, so a malformed body must still be refused by the parser (400).
            const raw = sp(ep) ? utf8(JSON.stringify(ep.valid())) : utf8('{"order":{"id":');
            const cases: Case[] = [
              {
                name: "no Content-Type",
                raw,
                send: (r) => rawRequest(port, { path: ep.path, headers: { [ep.sigHeader]: ep.sign(r) }, body: r }),
              },
              ...[
                "text/plain",
                "application/json; charset=latin1",
                "application/json; charset=utf-16",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/jsonx",
                "",
              ].map((type): Case => ({ name: `Content-Type "${type}"`, raw, send: (r) => send(t, ep, r, { contentType: type }) })),
              ...(sp(ep) ? [] : [{ name: "text/plain with invalid UTF-8", raw: Buffer.from([0xc3, 0x28]), send: (r: Buffer) => send(t, ep, r, { contentType: "text/plain" }) }]),
            ];
            await runCases(t, ep, cases, sp(ep) ? 415 : 400);
          });

          it("signature missing, repeated, or joined: 401", async () => {
            const raw = utf8(JSON.stringify(ep.valid()));
            const sig = ep.sign(raw);
            const wrong = "0".repeat(64);
            const twice = (values: string[]) => (r: Buffer) =>
              rawRequest(port, { path: ep.path, headers: { "Content-Type": "application/json", [ep.sigHeader]: values }, body: r });
            await runCases(
              t,
              ep,
              [
                { name: "no signature header", raw, send: (r) => send(t, ep, r, { sign: false }) },
                { name: "an empty signature header", raw, send: (r) => send(t, ep, r, { sign: false, headers: { [ep.sigHeader]: "" } }) },
                { name: "the valid signature sent twice (two header lines)", raw, send: twice([sig, sig]) },
                { name: "a wrong, then the valid signature (two header lines)", raw, send: twice([wrong, sig]) },
                { name: "the valid, then a wrong signature (two header lines)", raw, send: twice([sig, wrong]) },
                { name: "the valid signature twice, comma-joined", raw, send: (r) => send(t, ep, r, { sign: false, headers: { [ep.sigHeader]: `${sig}, ${sig}` } }) },
                { name: "the valid signature in upper case with spaces", raw, send: (r) => send(t, ep, r, { sign: false, headers: { [ep.sigHeader]: ` ${sig.toUpperCase()}x` } }) },
                { name: "the signature of other bytes", raw, send: (r) => send(t, ep, r, { sign: false, headers: { [ep.sigHeader]: ep.sign(utf8(`${r.toString("utf8")} `)) } }) },
              ],
              401,
            );
          });

          it("methods other than POST: 405 with Allow: POST", async () => {
            const raw = utf8(JSON.stringify(ep.valid()));
            await runCases(
              t,
              ep,
              (["get", "put", "delete", "patch"] as const).map((method) => ({
                name: method.toUpperCase(),
                raw,
                send: (r: Buffer) => send(t, ep, r, { method }),
                status: 405,
                allowHeader: "POST",
              })),
            );
          });
        });
      });
    }

    describe("paths and query parameters: malformed percent-encoding and %00", () => {
      interface PathCase {
        name: string;
        method?: "GET" | "POST";
        path: string;
        headers?: Record<string, string>;
        body?: Buffer;
        errorCode: string;
        pointer: string;
      }
      const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
      const signedRc = (): { headers: Record<string, string>; body: Buffer } => {
        const body = utf8(JSON.stringify(RC.valid()));
        return { headers: { "Content-Type": "application/json", [RC.sigHeader]: RC.sign(body) }, body };
      };
      const cursor = (text: string): string => Buffer.from(text, "utf8").toString("base64url");

      async function runPathCases(cases: PathCase[]): Promise<void> {
        const failures: string[] = [];
        for (const c of cases) {
          const was = await snapshot(t);
          const errorsBefore = t.logs.filter((l) => (JSON.parse(l) as { level: string }).level === "error").length;
          const a = await rawRequest(port, { path: c.path, method: c.method ?? "GET", headers: c.headers ?? {}, body: c.body ?? Buffer.alloc(0) });
          const now = await snapshot(t);
          const body = (a.json ?? {}) as Obj;
          const problems: string[] = [];
          if (a.status !== 400) problems.push(`status ${a.status}, not 400`);
          if (!/^application\/json/.test(a.contentType)) problems.push(`content-type "${a.contentType}"`);
          if (typeof body["errorMessage"] !== "string" || body["errorMessage"] === "") problems.push("no errorMessage");
          const wrong = refusalMismatch(a, c);
          if (wrong !== undefined) problems.push(wrong);
          for (const k of Object.keys(now) as (keyof Snapshot)[]) if (now[k] !== was[k]) problems.push(`${k} went from ${was[k]} to ${now[k]}`);
          const errorsAfter = t.logs.filter((l) => (JSON.parse(l) as { level: string }).level === "error").length;
          if (errorsAfter !== errorsBefore) problems.push(`${errorsAfter - errorsBefore} error-level log line(s): ${t.logs.at(-1)?.slice(0, 300) ?? ""}`);
          if (problems.length > 0) failures.push(`[${c.name}] ${c.method ?? "GET"} ${c.path} → ${a.status} ${a.text.slice(0, 300)}\n  ${problems.join("\n  ")}`);
        }
        if (failures.length > 0) assert.fail(`${failures.length} of ${cases.length} case(s) broke the promise:\n\n${failures.join("\n\n")}`);
      }

      it("malformed percent-encoding anywhere in a path is refused with 400 (no error-level log)", async () => {
        const bad = { errorCode: "query_invalid", pointer: "/path" };
        await runPathCases([
          { name: "an unauthenticated webhook at %FF", method: "POST", path: "/webhooks/recharge/%FF", body: utf8("{}"), ...bad },
          { name: "a signed webhook whose topic ends in a truncated sequence", method: "POST", path: "/webhooks/recharge/order/created%E2%82", ...signedRc(), ...bad },
          { name: "a % without two hex digits", method: "POST", path: "/webhooks/recharge/order%zzcreated", ...signedRc(), ...bad },
          { name: "an overlong encoding of /", method: "POST", path: "/webhooks/recharge/order%C0%AFcreated", ...signedRc(), ...bad },
          { name: "an encoded surrogate", method: "POST", path: "/webhooks/recharge/%ED%A0%80", ...signedRc(), ...bad },
          { name: "the order callback", method: "POST", path: "/callbacks/subscribe-pro/order%FF", body: utf8("{}"), ...bad },
          { name: "an admin event id", path: "/admin/events/%FF", headers: admin, ...bad },
          { name: "an admin event id, without the token", path: "/admin/events/%FF", ...bad },
          { name: "an admin order number", path: "/admin/orders/OB-%FF1", headers: admin, ...bad },
          { name: "an admin replay", method: "POST", path: "/admin/events/evt_%FF/replay", headers: admin, ...bad },
          { name: "a path no route has", path: "/no/such/%FF", ...bad },
        ]);
      });

      it("%00 in a path parameter or a query filter: 400 query_invalid with its pointer, on both stores", async () => {
        const q = (name: string) => ({ errorCode: "query_invalid", pointer: `/query/${name}` });
        await runPathCases([
          { name: "a signed webhook whose topic is %00", method: "POST", path: "/webhooks/recharge/%00", ...signedRc(), errorCode: "query_invalid", pointer: "/path/topic" },
          {
            name: "a signed webhook of an ignored topic with %00",
            method: "POST",
            path: "/webhooks/recharge/shop/up%00date",
            ...signedRc(),
            errorCode: "query_invalid",
            pointer: "/path/topic",
          },
          { name: "an admin event id", path: "/admin/events/evt_%00", headers: admin, errorCode: "query_invalid", pointer: "/path/id" },
          { name: "an admin replay", method: "POST", path: "/admin/events/%00/replay", headers: admin, errorCode: "query_invalid", pointer: "/path/id" },
          { name: "an admin order number", path: "/admin/orders/OB-1%00", headers: admin, errorCode: "query_invalid", pointer: "/path/orderNumber" },
          { name: "orders by salesOrderToken", path: "/admin/orders?salesOrderToken=tok%00", headers: admin, ...q("salesOrderToken") },
          { name: "orders by sourceOrderId", path: "/admin/orders?sourceOrderId=%00", headers: admin, ...q("sourceOrderId") },
          { name: "events by kind", path: "/admin/events?kind=recharge.webhook%00", headers: admin, ...q("kind") },
          { name: "events by resourceId", path: "/admin/events?resourceId=1%00", headers: admin, ...q("resourceId") },
          { name: "a forged cursor holding a NUL", path: `/admin/events?cursor=${cursor("1:evt_\u0000")}`, headers: admin, ...q("cursor") },
          { name: "a forged cursor with a time no bigint holds", path: `/admin/events?cursor=${cursor("99999999999999999999999:evt_x")}`, headers: admin, ...q("cursor") },
        ]);
      });

      it("a signed webhook of an ignored topic with a NUL byte in its body is refused, not stored", async () => {
        const raw = Buffer.concat([utf8('{"shop":"'), Buffer.from([0]), utf8('"}')]);
        const ignoredTopic: Endpoint = { ...RC, path: "/webhooks/recharge/shop/update" };
        await runCases(t, RC, [{ name: "NUL byte, topic shop/update", raw, send: (r) => send(t, ignoredTopic, r), status: 400, errorCode: "json_malformed" }]);
      });
    });

    describe("a body over BODY_LIMIT=2kb: 413", () => {
      let small: RechargeTestService;
      let smallServer: http.Server;
      let smallPort: number;
      before(async () => {
        small = await startRechargeService(kind, { startWorker: false, env: { BODY_LIMIT: "2kb" } });
        smallServer = http.createServer(small.app);
        await new Promise<void>((resolve) => smallServer.listen(0, "127.0.0.1", resolve));
        smallPort = (smallServer.address() as AddressInfo).port;
      });
      after(async () => {
        await new Promise<void>((resolve) => smallServer.close(() => resolve()));
        await small.stop();
      });
      for (const ep of [SP, RC]) {
        it(ep.label, async () => {
          const big = ep.valid();
          setPath(big, sp(ep) ? ["note"] : ["order", "note"], "n".repeat(3000));
          const raw = utf8(JSON.stringify(big));
          const headers = (r: Buffer): Record<string, string> => ({ "Content-Type": "application/json", [ep.sigHeader]: ep.sign(r) });
          const huge = Buffer.alloc(5_000_000, 0x20);
          await runCases(small, ep, [
            { name: "3 kB with Content-Length", raw, status: 413 },
            { name: "3 kB chunked, no Content-Length", raw, send: (r) => rawRequest(smallPort, { path: ep.path, headers: headers(r), body: r, chunked: true }), status: 413 },
            { name: "5 MB with Content-Length", raw: huge, send: (r) => rawRequest(smallPort, { path: ep.path, headers: headers(r), body: r }), status: 413 },
            { name: "5 MB chunked", raw: huge, send: (r) => rawRequest(smallPort, { path: ep.path, headers: headers(r), body: r, chunked: true }), status: 413 },
          ]);
        });
      }
    });
  });
}

function sp(ep: Endpoint): boolean {
  return ep.kind === "sp";
}

// ---------------------------------------------------------------------------------------------
// Huge arrays of invalid items, in a server process of their own: validating them is synchronous,
// so if it takes minutes it blocks the event loop, and only a separate process lets the test give
// up after a deadline (and kill it) instead of hanging with it. Validation runs before the
// database is touched, so one (SQLite) pass says all there is to say.

const HUGE_DEADLINE_MS = 5_000;

describe("huge arrays of invalid items, answered within 5 s [sqlite, own process]", () => {
  let db: ReturnType<typeof freshDatabase> | undefined;
  let env: Record<string, string> = {};
  let server: RunningServer | undefined;
  const running = async (): Promise<RunningServer> => (server ??= await spawnServer(env));
  before(() => {
    db = freshDatabase("sqlite");
    env = { ...db.env, SP_HMAC_SECRETS: SECRET, RECHARGE_CLIENT_SECRETS: RC_SECRET, RECHARGE_WRITEBACK: "off", WORKER_CONCURRENCY: "0", ADMIN_TOKEN };
  });
  after(async () => {
    await server?.stop("SIGKILL");
    await db?.cleanup();
  });

  async function counts(): Promise<Snapshot> {
    const store = await openStore(loadConfig(env).database, createLogger({ level: "error", format: "json", silent: true }));
    try {
      const n = async (table: "sp_callbacks" | "local_orders" | "jobs"): Promise<number> =>
        Number(
          (
            await store.db
              .selectFrom(table)
              .select((eb) => eb.fn.countAll<number>().as("n"))
              .executeTakeFirstOrThrow()
          ).n,
        );
      return { spCallbacks: await n("sp_callbacks"), localOrders: await n("local_orders"), jobsLive: await n("jobs"), jobsIgnored: 0 };
    } finally {
      await store.close();
    }
  }

  async function post(s: RunningServer, ep: Endpoint, raw: Buffer, timeoutMs: number): Promise<Answer> {
    const res = await fetch(`http://127.0.0.1:${s.port}${ep.path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", [ep.sigHeader]: ep.sign(raw) },
      body: raw,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return toAnswer(res.status, Object.fromEntries(res.headers), await res.text());
  }

  const N = 200_000;
  const cases: { ep: Endpoint; name: string; path: Path; items: string }[] = [
    { ep: SP, name: `${N} empty objects as items`, path: ["items"], items: "{}" },
    { ep: SP, name: `${N} numbers as items`, path: ["items"], items: "1" },
    { ep: RC, name: `${N} empty objects as line_items`, path: ["order", "line_items"], items: "{}" },
    { ep: RC, name: `${N} numbers as line_items`, path: ["order", "line_items"], items: "1" },
  ];
  for (const c of cases) {
    it(`${c.ep.label}: ${c.name} (${c.items === "{}" ? "600" : "400"} kB)`, async () => {
      const s = await running();
      const body = c.ep.valid();
      const marker = "__items__";
      setPath(body, c.path, marker);
      const raw = utf8(JSON.stringify(body).replace(JSON.stringify(marker), `[${`${c.items},`.repeat(N - 1)}${c.items}]`));
      const was = await counts();
      const started = Date.now();
      let a: Answer;
      try {
        a = await post(s, c.ep, raw, HUGE_DEADLINE_MS);
      } catch (e) {
        // Is the whole process stuck, or only this request?
        const health = await fetch(`http://127.0.0.1:${s.port}/healthz`, { signal: AbortSignal.timeout(1_000) }).then(
          (r) => `GET /healthz answered ${r.status}`,
          () => "GET /healthz did not answer within 1 s either: the event loop is blocked",
        );
        // Kill it so the next case gets a fresh process.
        await s.stop("SIGKILL");
        server = undefined;
        assert.fail(`${c.ep.label} ← ${describeBytes(raw)}: no answer within ${HUGE_DEADLINE_MS} ms (${(e as Error).name}); ${health}`);
      }
      const problem = judge(c.ep, raw, a, was, await counts());
      assert.equal(problem, undefined, problem);
      assert.ok(Date.now() - started < HUGE_DEADLINE_MS);
      // Still serving.
      const ok = await post(s, c.ep, utf8(JSON.stringify(c.ep.valid())), HUGE_DEADLINE_MS);
      assert.equal(ok.status, sp(c.ep) ? 201 : 200, ok.text);
    });
  }
});
