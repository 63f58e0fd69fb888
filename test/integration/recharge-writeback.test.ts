import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { JOB_PUT_ORDER } from "../../src/recharge/handlers.js";
import { rcFixture, startRechargeService, waitFor, type Json, type RechargeTestService } from "../helpers/recharge.js";
import { storeKinds } from "../helpers/stores.js";

let next = 700_000_000;
/** A fresh successful 2021-11 order (its own id, so its own write-back). */
function freshOrder(): { id: number; body: Json } {
  const id = next++;
  const body = structuredClone(rcFixture("2021-11", "order-created"));
  body["order"]["id"] = id;
  return { id, body };
}

async function writeBackJob(t: RechargeTestService, rechargeId: number) {
  return waitFor(`the write-back job of ${rechargeId}`, async () => (await t.jobs({ kind: JOB_PUT_ORDER })).find((j) => j.resource_id === String(rechargeId)));
}

for (const { kind, skip } of await storeKinds()) {
  describe(`Recharge write-back under faults [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    before(async () => {
      t = await startRechargeService(kind, { env: { RECHARGE_TIMEOUT_MS: "300" } });
    });
    after(() => t.stop());

    it("429 with Retry-After: waits as told, then succeeds; the order is never placed again", async () => {
      t.recharge.queue({ status: 429, retryAfter: 1 });
      const { id, body } = freshOrder();
      await t.webhook("order/created", body);
      await t.settle();
      const calls = t.recharge.calls.filter((c) => c.path === `/orders/${id}`);
      assert.deepEqual(
        calls.map((c) => c.status),
        [429, 200],
      );
      const gap = (calls[1]?.at ?? 0) - (calls[0]?.at ?? 0);
      assert.ok(gap >= 950, `the retry honoured Retry-After: 1 (came after ${gap} ms)`);
      const job = await writeBackJob(t, id);
      assert.equal(job.state, "done");
      assert.equal(job.attempts, 2);
      const orders = await t.admin(`/admin/orders?source=recharge&sourceOrderId=${id}`);
      assert.equal(orders.body.orders.length, 1);
    });

    it("429 without Retry-After, 500, 409 and a hanging call are retried with backoff until done", async () => {
      t.recharge.queue({ status: 429 }, { status: 500 }, { status: 409 }, "hang");
      const { id, body } = freshOrder();
      await t.webhook("order/created", body);
      await t.settle();
      const statuses = t.recharge.calls.filter((c) => c.path === `/orders/${id}`).map((c) => c.status);
      assert.deepEqual(statuses, [429, 500, 409, 0, 200], "0: the hanging call, abandoned at RECHARGE_TIMEOUT_MS");
      const job = await writeBackJob(t, id);
      assert.equal(job.state, "done");
      assert.equal(job.attempts, 5);
    });

    it("422 goes straight to dead with its error; the admin API lists it, and a replay completes it", async () => {
      t.recharge.queue({ status: 422, body: { errors: { external_order_id: "is invalid" } } });
      const { id, body } = freshOrder();
      await t.webhook("order/created", body);
      await t.settle();
      const job = await writeBackJob(t, id);
      assert.equal(job.state, "dead");
      assert.equal(job.attempts, 1, "no retry for a 422");
      assert.match(job.last_error ?? "", /PUT \/orders\/\d+ → 422: \{"external_order_id":"is invalid"\}/);

      const dead = await t.admin("/admin/events?state=dead");
      assert.equal(dead.status, 200);
      const listed = (dead.body.events as Json[]).find((e) => e["id"] === job.id);
      assert.ok(listed, "the dead write-back is listed");
      assert.equal(listed["kind"], JOB_PUT_ORDER);
      assert.equal(listed["attempts"], 1);
      assert.match(listed["lastError"], /422/);

      const shown = await t.admin(`/admin/events/${job.id}`);
      assert.equal(shown.status, 200);
      assert.equal(shown.body.payload.rechargeOrderId, String(id));

      const replay = await t.adminPost(`/admin/events/${job.id}/replay`);
      assert.equal(replay.status, 202);
      assert.equal(replay.body.state, "pending");
      await t.settle();
      const after = await t.job(job.id);
      assert.equal(after.state, "done");
      assert.equal(after.last_error, null, "the replayed run succeeded: no error of the run before is shown");
      assert.equal(t.recharge.succeeded().filter((c) => c.path === `/orders/${id}`).length, 1);
      const orders = await t.admin(`/admin/orders?source=recharge&sourceOrderId=${id}`);
      assert.equal(orders.body.orders.length, 1, "a failed write-back never re-creates the order");
    });

    it("a dead inbox event (an order the platform refuses) is kept with its reason and replayed after the fix", async () => {
      // Its own service: a catalog where RUBY-RED is tracked and sold out.
      const { DEMO_CATALOG } = await import("../../src/platforms/local/catalog.js");
      const catalog = { ...DEMO_CATALOG, products: DEMO_CATALOG.products.map((p) => (p.sku === "RUBY-RED" ? { ...p, stock: 0 } : p)) };
      const s = await startRechargeService(kind, { catalog });
      try {
        const { id, body } = freshOrder();
        const res = await s.webhook("order/created", body);
        await s.settle();
        const event = await s.job(res.body.eventId);
        assert.equal(event.state, "dead");
        assert.equal(event.attempts, 1);
        assert.match(event.last_error ?? "", /RUBY-RED: Product RUBY-RED is out of stock/);
        assert.match(event.last_error ?? "", /not placed in part/);
        assert.equal((await s.admin(`/admin/orders?source=recharge&sourceOrderId=${id}`)).body.orders.length, 0);
        assert.equal(s.recharge.calls.length, 0);

        // The merchant restocks, then replays the event.
        await s.store.db.updateTable("local_stock").set({ available: 10 }).where("sku", "=", "RUBY-RED").execute();
        const replay = await s.adminPost(`/admin/events/${event.id}/replay`);
        assert.equal(replay.status, 202);
        await s.settle();
        assert.equal((await s.job(event.id)).state, "done");
        assert.equal((await s.admin(`/admin/orders?source=recharge&sourceOrderId=${id}`)).body.orders.length, 1);
        assert.equal(s.recharge.succeeded().length, 1);
        const stock = await s.store.db.selectFrom("local_stock").select("available").where("sku", "=", "RUBY-RED").executeTakeFirstOrThrow();
        assert.equal(Number(stock.available), 6, "4 taken, once");
      } finally {
        await s.stop();
      }
    });

    it("the events API validates its query, pages newest first, and answers 404 for unknown ids", async () => {
      const bad = await t.admin("/admin/events?state=bogus&limit=0");
      assert.equal(bad.status, 400);
      assert.deepEqual((bad.body.errors as Json[]).map((e) => e["pointer"]).sort(), ["/query/limit", "/query/state"]);
      const page1 = await t.admin("/admin/events?limit=2");
      assert.equal(page1.body.events.length, 2);
      assert.ok(page1.body.nextCursor);
      const page2 = await t.admin(`/admin/events?limit=2&cursor=${page1.body.nextCursor}`);
      assert.equal(page2.body.events.length, 2);
      const ids = [...page1.body.events, ...page2.body.events].map((e: Json) => e["id"]);
      assert.equal(new Set(ids).size, 4);
      const created = [...page1.body.events, ...page2.body.events].map((e: Json) => Date.parse(e["createdAt"]));
      assert.deepEqual(
        created,
        [...created].sort((a, b) => b - a),
      );
      assert.equal((await t.admin("/admin/events/evt_nope")).status, 404);
      assert.equal((await t.adminPost("/admin/events/evt_nope/replay")).status, 404);
      const unauth = await (await import("supertest")).default(t.app).get("/admin/events");
      assert.equal(unauth.status, 401);
    });
  });

  describe(`Recharge write-back: a 429 storm [${kind}]`, { skip }, () => {
    it("keeps under the bucket it is told about, and gets every write-back done when Recharge's bucket is smaller", async () => {
      // Our bucket (5 at once, 20/s) is larger than Recharge's (2 at once, 4/s): some calls get 429,
      // with Retry-After; each is retried after it and every order is written back exactly once.
      const t = await startRechargeService(kind, {
        standIn: { bucket: { size: 2, leakPerSecond: 4, retryAfter: true } },
        env: { RECHARGE_RATE_LIMIT_BURST: "5", RECHARGE_RATE_LIMIT_PER_SECOND: "20", JOB_MAX_ATTEMPTS: "30" },
      });
      try {
        const ids: number[] = [];
        for (let i = 0; i < 12; i++) {
          const { id, body } = freshOrder();
          ids.push(id);
          await t.webhook("order/created", body);
        }
        await t.settle(30_000);
        assert.ok(t.recharge.bucketRejections > 0, "the storm happened");
        for (const id of ids) assert.equal(t.recharge.succeeded().filter((c) => c.path === `/orders/${id}`).length, 1, `order ${id}`);
        assert.equal((await t.jobs({ kind: JOB_PUT_ORDER, state: "done" })).length, 12);
      } finally {
        await t.stop();
      }

      // With our bucket no larger than Recharge's, nothing is refused at all.
      const calm = await startRechargeService(kind, {
        standIn: { bucket: { size: 4, leakPerSecond: 10 } },
        env: { RECHARGE_RATE_LIMIT_BURST: "3", RECHARGE_RATE_LIMIT_PER_SECOND: "8" },
      });
      try {
        for (let i = 0; i < 12; i++) await calm.webhook("order/created", freshOrder().body);
        await calm.settle(30_000);
        assert.equal(calm.recharge.bucketRejections, 0);
        assert.equal(calm.recharge.succeeded().length, 12);
      } finally {
        await calm.stop();
      }
    });
  });
}

describe("a job slower than its lease", () => {
  it("keeps its lease while it runs: no other worker loop takes it over and repeats the call", async () => {
    // The write-back hangs for RECHARGE_TIMEOUT_MS (1500 ms), three times the lease (500 ms); a
    // second worker loop polls every 50 ms for jobs whose lease ran out.
    const t = await startRechargeService("sqlite", { env: { RECHARGE_TIMEOUT_MS: "1500", JOB_LEASE_MS: "500", WORKER_CONCURRENCY: "2" } });
    try {
      t.recharge.queue("hang");
      const { id, body } = freshOrder();
      await t.webhook("order/created", body);
      await t.settle(10_000);
      const statuses = t.recharge.calls.filter((c) => c.path === `/orders/${id}`).map((c) => c.status);
      assert.deepEqual(statuses, [0, 200], "the hanging call, abandoned at its timeout, then one retry: no call while it hung");
      const job = await writeBackJob(t, id);
      assert.equal(job.state, "done");
      assert.equal(job.attempts, 2);
    } finally {
      await t.stop();
    }
  });
});
