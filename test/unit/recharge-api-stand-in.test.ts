import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { startRechargeStandIn } from "../../tools/stand-ins/recharge-api.js";
import type { RechargeStandIn, RechargeStandInOptions } from "../../tools/stand-ins/recharge-api.js";

const TOKEN = "test-token";
const HEADERS: Record<string, string> = {
  "X-Recharge-Access-Token": TOKEN,
  "X-Recharge-Version": "2021-11",
  "Content-Type": "application/json",
  Accept: "application/json",
};

let current: RechargeStandIn | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function start(opts: Partial<RechargeStandInOptions> = {}): Promise<RechargeStandIn> {
  current = await startRechargeStandIn({ token: TOKEN, ...opts });
  return current;
}

function put(api: RechargeStandIn, path: string, body: unknown, headers: Record<string, string> = HEADERS, signal?: AbortSignal): Promise<Response> {
  const init: RequestInit = { method: "PUT", headers, body: JSON.stringify(body) };
  if (signal !== undefined) init.signal = signal;
  return fetch(`${api.url}${path}`, init);
}

test("ok path answers the merged order and records body and headers", async () => {
  const api = await start();
  const body = { external_order_id: { ecommerce: "100271" } };
  const res = await put(api, "/orders/512340001", body);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(await res.json(), { order: { id: 512340001, external_order_id: { ecommerce: "100271" } } });

  const charge = await put(api, "/charges/77", { external_order_id: "100271" });
  assert.deepEqual(await charge.json(), { charge: { id: 77, external_order_id: "100271" } });
  const other = await put(api, "/customers/1", {});
  assert.equal(other.status, 404);
  assert.deepEqual(await other.json(), { errors: "Not Found" });

  assert.equal(api.calls.length, 3);
  const [first] = api.calls;
  assert.ok(first);
  assert.equal(first.method, "PUT");
  assert.equal(first.path, "/orders/512340001");
  assert.deepEqual(first.body, body);
  assert.equal(first.status, 200);
  assert.equal(first.headers["x-recharge-access-token"], TOKEN);
  assert.equal(first.headers["x-recharge-version"], "2021-11");
  assert.equal(api.succeeded().length, 2);
});

test("GET /orders/{id} answers a stored order, else 404, under the token and version checks and the bucket", async () => {
  const api = await start({ bucket: { size: 2, leakPerSecond: 0.5 } });
  api.storeOrder({ id: 512350001, charge: { id: 377750000 }, is_prepaid: true });
  const get = (path: string, headers: Record<string, string> = HEADERS): Promise<Response> => fetch(`${api.url}${path}`, { headers });
  const res = await get("/orders/512350001");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { order: { id: 512350001, charge: { id: 377750000 }, is_prepaid: true } });
  assert.equal((await get("/orders/1", { ...HEADERS, "X-Recharge-Access-Token": "nope" })).status, 401);
  assert.equal((await get("/orders/1", { "X-Recharge-Access-Token": TOKEN })).status, 426);
  const unknown = await get("/orders/1");
  assert.equal(unknown.status, 404);
  assert.deepEqual(await unknown.json(), { errors: "Not Found" });
  assert.equal((await get("/orders/512350001")).status, 429, "a read fills the bucket like a write");
  assert.deepEqual(
    api.calls.map((c) => [c.method, c.status]),
    [
      ["GET", 200],
      ["GET", 401],
      ["GET", 426],
      ["GET", 404],
      ["GET", 429],
    ],
  );
});

test("wrong token → 401, missing version → 426, non-JSON body → 415", async () => {
  const api = await start();
  const bad = await put(api, "/orders/1", {}, { ...HEADERS, "X-Recharge-Access-Token": "nope" });
  assert.equal(bad.status, 401);
  const badBody: unknown = await bad.json();
  assert.ok(typeof badBody === "object" && badBody !== null && "errors" in badBody);

  const { "X-Recharge-Version": _omitted, ...noVersion } = HEADERS;
  const old = await put(api, "/orders/1", {}, noVersion);
  assert.equal(old.status, 426);
  assert.deepEqual(await old.json(), { errors: "Invalid API version" });

  const text = await fetch(`${api.url}/orders/1`, { method: "PUT", headers: HEADERS, body: "not json" });
  assert.equal(text.status, 415);
  assert.deepEqual(
    api.calls.map((c) => c.status),
    [401, 426, 415],
  );
  assert.equal(api.calls[2]?.body, "not json");
});

test("queued replies are used first, then the default", async () => {
  const api = await start();
  api.queue({ status: 429, retryAfter: 3 }, { status: 500 });
  const r1 = await put(api, "/orders/1", { a: 1 });
  assert.equal(r1.status, 429);
  assert.equal(r1.headers.get("retry-after"), "3");
  const r2 = await put(api, "/orders/1", { a: 1 });
  assert.equal(r2.status, 500);
  const r3 = await put(api, "/orders/1", { a: 1 });
  assert.equal(r3.status, 200);
  assert.deepEqual(
    api.calls.map((c) => c.status),
    [429, 500, 200],
  );
  assert.equal(api.bucketRejections, 0);
});

test("leaky bucket rejects requests over the limit", async () => {
  const api = await start({ bucket: { size: 3, leakPerSecond: 1, retryAfter: true } });
  const statuses: number[] = [];
  let lastLimit: string | null = null;
  let retryAfter: string | null = null;
  for (let i = 0; i < 5; i++) {
    const res = await put(api, `/orders/${i + 1}`, { n: i });
    statuses.push(res.status);
    lastLimit = res.headers.get("x-recharge-limit");
    if (res.status === 429) retryAfter = res.headers.get("retry-after");
  }
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  assert.equal(api.bucketRejections, 2);
  assert.equal(lastLimit, "3/3");
  assert.equal(retryAfter, "1");
  assert.equal(api.succeeded().length, 3);
});

test('"hang" holds the request until the caller gives up; close() still resolves promptly', async () => {
  const api = await start();
  api.defaultReply = "hang";
  await assert.rejects(put(api, "/orders/1", { a: 1 }, HEADERS, AbortSignal.timeout(200)), (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.equal(err.name, "TimeoutError");
    return true;
  });
  // A second hanging call still held when close() runs.
  const held = put(api, "/orders/2", { a: 2 }).then(
    () => "answered",
    () => "failed",
  );
  const calls = await api.waitForCalls(2);
  assert.deepEqual(
    calls.map((c) => c.status),
    [0, 0],
  );
  const t0 = Date.now();
  await api.close();
  await api.close(); // idempotent
  assert.ok(Date.now() - t0 < 1000, "close() should not wait for hanging requests");
  assert.equal(await held, "failed");
});

test("waitForCalls resolves on arrival and rejects with the calls so far on timeout", async () => {
  const api = await start();
  const waiting = api.waitForCalls(1, 2000);
  setTimeout(() => void put(api, "/orders/9", { x: 1 }), 30);
  const calls = await waiting;
  assert.equal(calls.length, 1);
  await assert.rejects(api.waitForCalls(2, 50), /got 1: #1 PUT \/orders\/9 → 200/);
});

test("GET /orders: filtered, newest id first, at most 250 a page, cursor pagination (cursor or page_info) under the bucket", async () => {
  const api = await start({ bucket: { size: 40, leakPerSecond: 2 } });
  for (let i = 1; i <= 7; i++) {
    api.storeOrder({ id: 100 + i, status: i === 3 ? "queued" : "success", updated_at: `2026-12-01T10:0${i}:00+00:00`, external_order_id: { ecommerce: i === 5 ? "X" : null } });
  }
  const get = async (path: string): Promise<{ status: number; body: { orders: { id: number }[]; next_cursor: string | null } }> => {
    const res = await fetch(`${api.url}${path}`, { headers: HEADERS });
    return { status: res.status, body: (await res.json()) as { orders: { id: number }[]; next_cursor: string | null } };
  };
  const first = await get("/orders?status=success&updated_at_min=2026-12-01T10:02:00Z&limit=2");
  assert.equal(first.status, 200);
  assert.deepEqual(
    first.body.orders.map((o) => o.id),
    [107, 106],
  );
  assert.ok(first.body.next_cursor);
  const second = await get(`/orders?limit=2&cursor=${first.body.next_cursor}`);
  assert.deepEqual(
    second.body.orders.map((o) => o.id),
    [105, 104],
  );
  const third = await get(`/orders?limit=2&page_info=${second.body.next_cursor ?? ""}`);
  assert.deepEqual(
    third.body.orders.map((o) => o.id),
    [102],
  );
  assert.equal(third.body.next_cursor, null);
  assert.deepEqual(
    (await get("/orders?has_external_order=false&updated_at_max=2026-12-01T10:06:00%2B00:00")).body.orders.map((o) => o.id),
    [106, 104, 103, 102, 101],
  );
  assert.equal((await get("/orders?limit=251")).status, 422);
  // A write-back lands on the stored order, and is an update of it.
  assert.equal((await put(api, "/orders/101", { external_order_id: { ecommerce: "9" } })).status, 200);
  assert.deepEqual(api.order(101)?.["external_order_id"], { ecommerce: "9" });
  assert.notEqual(api.order(101)?.["updated_at"], "2026-12-01T10:01:00+00:00");
  assert.equal(api.bucketRejections, 0);
});

test("webhooks: GET lists, POST creates (the store's default version when none is given), PUT changes, DELETE removes", async () => {
  const api = await start();
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> => {
    const res = await fetch(`${api.url}${path}`, { method, headers: HEADERS, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, body: res.status === 204 ? null : await res.json() };
  };
  const other = api.addWebhook({ address: "https://other.example/hook", topic: "order/created", version: "2021-11" });
  const created = await call("POST", "/webhooks", { address: "https://a.example/webhooks/recharge/order/created", topic: "order/created" });
  assert.equal(created.status, 200);
  const id = (created.body as { webhook: { id: number; version: string } }).webhook.id;
  assert.equal((created.body as { webhook: { version: string } }).webhook.version, "2021-01");
  assert.equal((await call("PUT", `/webhooks/${id}`, { version: "2021-11" })).status, 200);
  assert.deepEqual(((await call("GET", "/webhooks")).body as { webhooks: unknown[] }).webhooks, [
    other,
    { id, address: "https://a.example/webhooks/recharge/order/created", topic: "order/created", version: "2021-11" },
  ]);
  assert.equal((await call("DELETE", `/webhooks/${id}`)).status, 204);
  assert.equal((await call("DELETE", `/webhooks/${id}`)).status, 404);
  assert.equal((await call("POST", "/webhooks", { topic: "order/created" })).status, 422);
  assert.deepEqual(
    api.webhooks.map((w) => w.id),
    [other.id],
  );
});
