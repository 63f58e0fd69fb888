import { randomBytes, randomInt } from "node:crypto";
import { PayloadError } from "../../errors.js";
import type { Validator } from "../../validation/schemas.js";
import { send, type Answer, type Signature, type Target } from "./client.js";

// The checks of `orderbridge check` and how they judge a handler's answers
// (shared/spec/subscribe-pro-order-callback.md §2–§5).

export interface Ctx extends Target {
  /** Two SKUs the handler's platform sells. */
  known: [string, string];
  /** A SKU it does not know. */
  unknown: string;
  /** --safe: send nothing a handler could turn into an order. */
  safe: boolean;
  /** The lenient response schema's order answers (what Subscribe Pro accepts, not orderbridge's strict one). */
  schema: { placed: Validator<unknown>; notPlaced: Validator<unknown> };
}

export interface Outcome {
  ok: boolean;
  reason: string;
}

export interface Check {
  name: string;
  /**
   * What it places through a handler that gets it right: orders, and units of the two known SKUs in
   * them. A broken handler may place more (a retry it does not recognise, a request it should refuse).
   */
  places: { orders: number; units: [number, number] };
  /** Runs under --safe, and then sends nothing that can become an order, whatever the handler does. */
  safe: boolean;
  run(c: Ctx): Promise<Outcome>;
}

interface Item {
  productSku: string;
  qty: string;
  subscription: { id: string };
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

const SNIPPET_CHARS = 120;

/** One line, at most SNIPPET_CHARS characters, of a body for a reason. */
function snippet(text: string): string {
  const line = text
    // eslint-disable-next-line no-control-regex -- control characters are what this replaces
    .replace(/[\u0000-\u001f\u007f]+/g, " ")
    .replace(/\s+/g, " ")
    .trim();
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
/** An id as the lenient schema takes it: a non-empty string, or a whole number (PHP may send either). */
const idText = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : Number.isSafeInteger(v) ? String(v) : undefined);
const show = (v: unknown): string => (v === undefined ? "missing" : JSON.stringify(v));
const list = (xs: readonly string[]): string => `[${xs.join(", ")}]`;
const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");
const subscriptionOf = (v: unknown): string => {
  const id = isObject(v) ? v["subscriptionId"] : undefined;
  return typeof id === "string" || typeof id === "number" ? String(id) : show(id);
};

/**
 * A 4xx that is an order answer (a 409 listing errorItems): the handler processed the request
 * rather than refusing it as a whole.
 */
function isOrderAnswer(a: Answer): boolean {
  try {
    const v = JSON.parse(a.text) as unknown;
    return isObject(v) && ("errorItems" in v || "orderDetails" in v || "orderNumber" in v);
  } catch {
    return false;
  }
}

/** The schema's invalid fields, as one reason. */
function schemaProblem(validate: Validator<unknown>, value: unknown): string | undefined {
  try {
    validate(value);
    return undefined;
  } catch (e) {
    if (!(e instanceof PayloadError)) return `the response schema could not be applied: ${(e as Error).message}`;
    const text = e.fields
      .slice(0, 3)
      .map((f) => `${f.pointer || "(body)"} ${f.message}`)
      .join("; ");
    return `does not match the response schema: ${text}${e.fields.length > 3 ? ` (and ${e.fields.length - 3} more)` : ""}`;
  }
}

/** What is wrong with a 201/202 answer that should have ordered `ordered` and failed `failed`. */
function placedProblem(c: Ctx, value: unknown, ordered: string[], failed: string[]): string | undefined {
  if (!isObject(value)) return "the body is not a JSON object";
  if (idText(value["orderNumber"]) === undefined) return `orderNumber is ${show(value["orderNumber"])}, expected the order's number`;
  const details = value["orderDetails"];
  if (!isObject(details)) return `orderDetails is ${show(details)}, expected an object`;
  if (details["orderNumber"] !== value["orderNumber"]) {
    return `orderDetails.orderNumber is ${show(details["orderNumber"])}, not the orderNumber ${show(value["orderNumber"])}`;
  }
  const items = details["items"];
  if (!Array.isArray(items)) return `orderDetails.items is ${show(items)}, expected an array`;
  if (items.length !== ordered.length) return `orderDetails.items has ${items.length} entries, expected ${ordered.length} (one per ordered item)`;
  const ids: string[] = [];
  for (const [i, it] of items.entries()) {
    if (!isObject(it)) return `orderDetails.items[${i}] is not an object`;
    const id = idText(it["platformOrderItemId"]);
    if (id === undefined) return `orderDetails.items[${i}].platformOrderItemId is ${show(it["platformOrderItemId"])}, expected a non-empty string`;
    ids.push(id);
  }
  if (new Set(ids).size !== ids.length) return `the items' platformOrderItemId values are not distinct: ${list(ids)}`;
  const subs = items.map(subscriptionOf);
  if (!sameSet(subs, ordered)) return `orderDetails.items have subscriptionId ${list(subs)}, expected ${list(ordered)}`;
  // Subscribe Pro's own example and its Magento extension leave errorItems out when nothing failed.
  const errorItems = value["errorItems"];
  if (errorItems !== undefined || failed.length > 0) {
    if (!Array.isArray(errorItems)) return `errorItems is ${show(errorItems)}, expected an array${failed.length > 0 ? ` listing ${list(failed)}` : ""}`;
    const errorSubs = errorItems.map(subscriptionOf);
    if (failed.length === 0 && errorSubs.length > 0) return `errorItems is not empty: ${snippet(JSON.stringify(errorItems))}`;
    if (!sameSet(errorSubs, failed)) return `errorItems have subscriptionId ${list(errorSubs)}, expected ${list(failed)}`;
  }
  return schemaProblem(c.schema.placed, value);
}

/** What is wrong with a 409 answer that should list every one of `subs` and place nothing. */
function notPlacedProblem(c: Ctx, value: unknown, subs: string[]): string | undefined {
  if (!isObject(value)) return "the body is not a JSON object";
  if (value["orderNumber"] !== null) return `orderNumber is ${show(value["orderNumber"])}, expected null (no order)`;
  if (value["orderDetails"] !== null) return `orderDetails is ${snippet(show(value["orderDetails"]))}, expected null (no order)`;
  const errorItems = value["errorItems"];
  if (!Array.isArray(errorItems)) return `errorItems is ${show(errorItems)}, expected an array listing every item`;
  const listed = new Set(errorItems.map(subscriptionOf));
  const missing = subs.filter((s) => !listed.has(s));
  if (missing.length > 0) return `errorItems do not list subscription ${list(missing)} (every item must be listed)`;
  return schemaProblem(c.schema.notPlaced, value);
}

const pass = (reason: string): Outcome => ({ ok: true, reason });
const fail = (reason: string): Outcome => ({ ok: false, reason });
const isOutcome = (v: object): v is Outcome => "ok" in v;

const REWRITE_HINT = " (does the handler verify a re-serialisation instead of the raw bytes?)";

interface Placed {
  order: string;
  value: Record<string, unknown>;
}

/**
 * The answer of a request that must place an order: `status` (201, or 202 for a partial order), an
 * order answer that orders `ordered`, lists `failed` and matches the lenient schema. Every check
 * that gets a 2xx judges it here. `hint` is added when the handler refused the request as a whole.
 */
function expectPlaced(c: Ctx, a: Answer, status: 201 | 202, ordered: string[], failed: string[] = [], hint = ""): Placed | Outcome {
  if (a.status !== status) {
    const refusal = a.status === 401 || a.status === 403 || (a.status >= 400 && a.status < 500 && !isOrderAnswer(a));
    const partial = status === 201 && a.status === 202 ? " (nothing failed: expected 201)" : "";
    return fail(`${unexpected(String(status), a)}${refusal ? hint : partial}`);
  }
  const json = parseAnswer(a);
  if (!json.ok) return fail(json.reason);
  const problem = placedProblem(c, json.value, ordered, failed);
  if (problem !== undefined) return fail(`${status} but ${problem}`);
  const value = json.value as Record<string, unknown>;
  return { order: idText(value["orderNumber"]) ?? "", value };
}

/** subscriptionId=platformOrderItemId of every item of an order answer, sorted. */
function itemIds(value: Record<string, unknown>): string[] {
  const details = value["orderDetails"];
  const items = isObject(details) && Array.isArray(details["items"]) ? (details["items"] as unknown[]) : [];
  return items.map((it) => (isObject(it) ? `${subscriptionOf(it)}=${String(it["platformOrderItemId"])}` : "?")).sort();
}

/** Expects the request refused as a whole: a 4xx that is not an order answer. */
async function refused(c: Ctx, body: string, signature: Signature, what: string): Promise<{ a: Answer; outcome?: Outcome }> {
  const a = await send(c, body, signature);
  if (a.status >= 200 && a.status < 300) return { a, outcome: fail(`accepted ${what}: ${a.status} ${snippet(a.text)}`) };
  if (a.status >= 400 && a.status < 500) {
    if (isOrderAnswer(a)) return { a, outcome: fail(`processed ${what} instead of refusing it: ${a.status} ${snippet(a.text)}`) };
    return { a };
  }
  return { a, outcome: fail(unexpected("4xx", a)) };
}

// ---------------------------------------------------------------------------------------------
// The checks, in the order they are reported

const NOTHING = { orders: 0, units: [0, 0] as [number, number] };

export const CHECKS: readonly Check[] = [
  {
    name: "valid-order",
    places: { orders: 1, units: [2, 1] },
    safe: false,
    async run(c) {
      const items = [item(c.known[0], "2"), item(c.known[1], "1")];
      const a = await send(c, JSON.stringify(makeOrder(items)));
      const r = expectPlaced(c, a, 201, subIds(items));
      return isOutcome(r) ? r : pass(`201 in ${a.ms} ms, order #${r.order}`);
    },
  },
  {
    name: "partial-order",
    places: { orders: 1, units: [1, 0] },
    safe: false,
    async run(c) {
      const good = item(c.known[0], "1");
      const bad = item(c.unknown, "1");
      const a = await send(c, JSON.stringify(makeOrder([good, bad], { allowSomeFailedItems: true })));
      const r = expectPlaced(c, a, 202, [good.subscription.id], [bad.subscription.id]);
      return isOutcome(r) ? r : pass(`202 in ${a.ms} ms, order #${r.order} without ${c.unknown}`);
    },
  },
  {
    name: "impossible-order",
    places: NOTHING,
    safe: true,
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
    // Nothing, from a handler that gets it right; a broken one places the known item.
    places: NOTHING,
    safe: false,
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
    places: { orders: 1, units: [1, 3] },
    safe: false,
    async run(c) {
      const items = [item(c.known[0], "1"), item(c.known[1], "3")];
      const raw = Buffer.from(JSON.stringify(makeOrder(items)), "utf8");
      const a1 = await send(c, raw);
      const first = expectPlaced(c, a1, 201, subIds(items));
      if (isOutcome(first)) return fail(`first request: ${first.reason}`);
      const a2 = await send(c, raw);
      const second = expectPlaced(c, a2, 201, subIds(items));
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
    places: { orders: 1, units: [1, 0] },
    safe: false,
    async run(c) {
      const items = [item(c.known[0], "1")];
      const a = await send(c, JSON.stringify(makeOrder(items), null, 2));
      const r = expectPlaced(c, a, 201, subIds(items), [], REWRITE_HINT);
      return isOutcome(r) ? r : pass(`201 in ${a.ms} ms, order #${r.order}`);
    },
  },
  {
    name: "non-ascii",
    places: { orders: 1, units: [0, 1] },
    safe: false,
    async run(c) {
      const items = [item(c.known[1], "1")];
      const order = makeOrder(items);
      const addr = {
        ...address,
        firstName: "Zoë",
        lastName: "Ñúñez",
        company: "@@CAFE@@",
        street1: "Bahnhofstrasse 1/3",
        city: "Zürich",
        region: "ZH",
        postcode: "8001",
        country: "CH",
        countryName: "Schweiz",
      };
      order["billingAddress"] = addr;
      order["shippingAddress"] = { ...addr };
      // Literal UTF-8, `\/` (PHP's json_encode escapes slashes) and `\u00e9` escapes, all in one body.
      const body = JSON.stringify(order).replaceAll("1/3", "1\\/3").replaceAll("@@CAFE@@", "Caf\\u00e9 M\\u00fcller \\/ S\\u00f6hne");
      const a = await send(c, body);
      const r = expectPlaced(c, a, 201, subIds(items), [], REWRITE_HINT);
      return isOutcome(r) ? r : pass(`201 in ${a.ms} ms, order #${r.order}`);
    },
  },
  {
    name: "bad-signature",
    places: { orders: 1, units: [1, 0] },
    safe: true,
    async run(c) {
      // With --safe, an order nobody can place (and no correctly signed follow-up).
      const items = [item(c.safe ? c.unknown : c.known[0], "1")];
      const body = JSON.stringify(makeOrder(items));
      const { a, outcome } = await refused(c, body, "wrong", "an order with a wrong Sp-Hmac");
      if (outcome !== undefined) return outcome;
      if (c.safe) return pass(`refused with ${a.status} in ${a.ms} ms (--safe: the same order correctly signed is not sent)`);
      const b = await send(c, body);
      const r = expectPlaced(c, b, 201, subIds(items));
      if (isOutcome(r)) return fail(`refused with ${a.status}, but the same order correctly signed afterwards: ${r.reason} (did the refused request create or claim it?)`);
      return pass(`refused with ${a.status}; the same order correctly signed afterwards placed #${r.order}`);
    },
  },
  {
    name: "missing-signature",
    places: NOTHING,
    safe: true,
    async run(c) {
      // An order nobody can place: a handler that ignores the signature answers it with a 409 order answer.
      const { a, outcome } = await refused(c, JSON.stringify(makeOrder([item(c.unknown, "1")])), "none", "an order without Sp-Hmac");
      return outcome ?? pass(`refused with ${a.status} in ${a.ms} ms`);
    },
  },
  {
    name: "malformed-json",
    places: NOTHING,
    safe: true,
    async run(c) {
      const { a, outcome } = await refused(c, '{"customerId": ', "valid", "malformed JSON");
      return outcome ?? pass(`refused with ${a.status} in ${a.ms} ms`);
    },
  },
];

export const CHECK_NAMES: readonly string[] = CHECKS.map((c) => c.name);
