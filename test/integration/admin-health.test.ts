import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import request from "supertest";
import { ADMIN_TOKEN, minimalOrder, startService, type TestService } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

const order = (n: number) => minimalOrder(`adm-${n}`, [{ productSku: "MILK-1", qty: n, subscription: { id: `s${n}` } }], { shippingMethodCode: "flat_rate" });

for (const { kind, skip } of await storeKinds()) {
  describe(`admin API and health [${kind}]`, { skip }, () => {
    let t: TestService;
    before(async () => {
      t = await startService(kind);
      for (let n = 1; n <= 5; n++) assert.equal((await t.callback(order(n))).status, 201);
    });
    after(() => t.stop());

    it("needs the bearer token", async () => {
      const none = await request(t.app).get("/admin/orders");
      assert.equal(none.status, 401);
      assert.equal(none.body.errorCode, "unauthorized");
      const wrong = await request(t.app).get("/admin/orders").set("Authorization", "Bearer nope");
      assert.equal(wrong.status, 401);
      const ok = await request(t.app).get("/admin/orders").set("Authorization", `Bearer ${ADMIN_TOKEN}`);
      assert.equal(ok.status, 200);
    });

    it("lists orders newest first, with items, and pages through them", async () => {
      const page1 = await t.admin("/admin/orders?limit=2");
      assert.equal(page1.status, 200);
      assert.deepEqual(
        page1.body.orders.map((o: { salesOrderToken: string }) => o.salesOrderToken),
        ["adm-5", "adm-4"],
      );
      assert.equal(page1.body.orders[0].items[0].quantity, 5);
      assert.equal(page1.body.orders[0].shippingTotal, "5.00");
      assert.equal(page1.body.orders[0].total, "65.00");
      const page2 = await t.admin(`/admin/orders?limit=2&cursor=${page1.body.nextCursor}`);
      assert.deepEqual(
        page2.body.orders.map((o: { salesOrderToken: string }) => o.salesOrderToken),
        ["adm-3", "adm-2"],
      );
      const page3 = await t.admin(`/admin/orders?limit=2&cursor=${page2.body.nextCursor}`);
      assert.equal(page3.body.orders.length, 1);
      assert.equal(page3.body.nextCursor, null);
      assert.equal(page3.body.nextBefore, null);
    });

    it("still pages with the deprecated before / nextBefore (one release), never with both forms at once", async () => {
      const page1 = await t.admin("/admin/orders?limit=2");
      assert.match(page1.body.nextBefore, /^\d+$/);
      const page2 = await t.admin(`/admin/orders?limit=2&before=${page1.body.nextBefore}`);
      assert.deepEqual(
        page2.body.orders.map((o: { salesOrderToken: string }) => o.salesOrderToken),
        ["adm-3", "adm-2"],
      );
      const both = await t.admin(`/admin/orders?limit=2&before=${page1.body.nextBefore}&cursor=${page1.body.nextCursor}`);
      assert.equal(both.status, 400);
      assert.deepEqual(
        both.body.errors.map((e: { pointer: string }) => e.pointer),
        ["/query/before"],
      );
      // The cursor is the orders list's own: an events cursor, or anything made up, is refused.
      for (const forged of [Buffer.from("1700000000000:evt_x").toString("base64url"), "nope", Buffer.from("order:0").toString("base64url")]) {
        const res = await t.admin(`/admin/orders?cursor=${forged}`);
        assert.equal(res.status, 400, forged);
        assert.equal(res.body.errors[0].pointer, "/query/cursor");
      }
    });

    it("filters by salesOrderToken and shows one order by number", async () => {
      const list = await t.admin("/admin/orders?salesOrderToken=adm-3");
      assert.equal(list.body.orders.length, 1);
      const number = list.body.orders[0].orderNumber as string;
      const one = await t.admin(`/admin/orders/${encodeURIComponent(number)}`);
      assert.equal(one.status, 200);
      assert.equal(one.body.salesOrderToken, "adm-3");
      assert.equal(one.body.items.length, 1);
      const missing = await t.admin("/admin/orders/OB-999999999");
      assert.equal(missing.status, 404);
      assert.equal(missing.body.errorCode, "not_found");
    });

    it("rejects bad query parameters with a pointer to each", async () => {
      const res = await t.admin("/admin/orders?limit=0&before=x");
      assert.equal(res.status, 400);
      assert.deepEqual(
        res.body.errors.map((e: { pointer: string }) => e.pointer),
        ["/query/limit", "/query/before"],
      );
      // A parameter the endpoint does not take would otherwise silently not filter.
      const unknown = await t.admin("/admin/orders?limit[]=1&salesOrderTokn=x");
      assert.equal(unknown.status, 400);
      assert.deepEqual(
        unknown.body.errors.map((e: { pointer: string }) => e.pointer),
        ["/query/limit[]", "/query/salesOrderTokn"],
      );
      assert.match(unknown.body.errors[1].message, /is not a parameter of this endpoint \(it takes limit, cursor, before, salesOrderToken, source, sourceOrderId\)/);
      const events = await t.admin("/admin/events?state[x]=dead");
      assert.equal(events.status, 400);
      assert.equal(events.body.errors[0].pointer, "/query/state[x]");
    });

    it("health: /healthz is up, /readyz reflects the database", async () => {
      assert.deepEqual((await request(t.app).get("/healthz")).body, { status: "ok" });
      const ready = await request(t.app).get("/readyz");
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, "ready");
    });

    it("logs scrapes and probes at debug, every other request at info", async () => {
      const ids: Record<string, string> = { "/metrics": "q-metrics", "/healthz": "q-healthz", "/readyz": "q-readyz", "/admin/orders": "q-admin", "/nope": "q-nope" };
      for (const [path, id] of Object.entries(ids)) {
        const r = request(t.app).get(path).set("X-Request-Id", id);
        await (path.startsWith("/admin") ? r.set("Authorization", `Bearer ${ADMIN_TOKEN}`) : r);
      }
      const levelOf = (id: string): unknown =>
        t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l["requestId"] === id && l["message"] === "request")?.["level"];
      assert.deepEqual(Object.fromEntries(Object.entries(ids).map(([path, id]) => [path, levelOf(id)])), {
        "/metrics": "debug",
        "/healthz": "debug",
        "/readyz": "debug",
        "/admin/orders": "info",
        "/nope": "info",
      });
    });

    it("answers unknown paths with a JSON 404 and sets security headers", async () => {
      const res = await request(t.app).get("/nope");
      assert.equal(res.status, 404);
      assert.equal(res.body.errorMessage, "No such endpoint.");
      assert.equal(res.headers["x-content-type-options"], "nosniff");
      assert.equal(res.headers["x-powered-by"], undefined);
      assert.match(String(res.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
    });

    it("honours a sane X-Request-Id and logs each request with it", async () => {
      const res = await request(t.app).get("/healthz").set("X-Request-Id", "trace-abc.123");
      assert.equal(res.headers["x-request-id"], "trace-abc.123");
      const line = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l["requestId"] === "trace-abc.123");
      assert.ok(line, "an access-log line with the request id");
      assert.equal(line["route"], "/healthz");
      assert.equal(line["status"], 200);
      assert.equal(typeof line["latencyMs"], "number");
      const forged = await request(t.app).get("/healthz").set("X-Request-Id", "bad id\twith spaces");
      assert.notEqual(forged.headers["x-request-id"], "bad id\twith spaces");
    });
  });
}

describe("admin API without ADMIN_TOKEN", () => {
  it("is disabled (404)", async () => {
    const t = await startService("sqlite", { env: { ADMIN_TOKEN: "" } });
    try {
      const res = await request(t.app).get("/admin/orders").set("Authorization", `Bearer ${ADMIN_TOKEN}`);
      assert.equal(res.status, 404);
    } finally {
      await t.stop();
    }
  });
});

describe("database down", () => {
  it("readyz and the callback answer 503 with Retry-After", async () => {
    const t = await startService("sqlite");
    try {
      await t.store.close();
      const ready = await request(t.app).get("/readyz");
      assert.equal(ready.status, 503);
      const res = await t.callback(order(1));
      assert.equal(res.status, 503);
      assert.equal(res.body.errorCode, "store_unavailable");
      assert.equal(res.headers["retry-after"], "5");
    } finally {
      await t.stop().catch(() => undefined);
    }
  });
});
