import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { JOB_PUT_CHARGE, JOB_PUT_ORDER } from "../../src/recharge/handlers.js";
import { queueMissingWriteBacks } from "../../src/recharge/catch-up.js";
import { rcFixture, startRechargeService, type Json, type RechargeTestService, type Version } from "../helpers/recharge.js";
import { storeKinds } from "../helpers/stores.js";

/*
 * Issue 14, item 4: a prepaid order whose payload has no charge (as in Recharge's own prepaid
 * example) still gets its charge written back: the charge id is read from Recharge's
 * GET /orders/{id}, under the same rate limit as the write-backs.
 */

const VERSIONS: Version[] = ["2021-11", "2021-01"];
const CHARGE = "377750000";

let next = 880_000_000;
/** The first shipment of a prepaid purchase, with a fresh id: as Recharge has it, and as the webhook came (no charge). */
function prepaidWithoutCharge(version: Version): { id: number; stored: Json; delivered: Json } {
  const id = next++;
  const stored = structuredClone(rcFixture(version, "order-created-prepaid-1")["order"]) as Json;
  stored["id"] = id;
  const delivered = structuredClone(stored);
  delete delivered["charge"];
  delete delivered["charge_id"];
  delete delivered["charge_status"];
  return { id, stored, delivered: { order: delivered } };
}

function withoutCharge(order: Json): Json {
  const copy = structuredClone(order);
  delete copy["charge"];
  delete copy["charge_id"];
  return copy;
}

const chargeBody = (version: Version, externalOrderId: string): Json =>
  version === "2021-11" ? { external_order_id: { ecommerce: externalOrderId } } : { external_order_id: externalOrderId };

async function placedOrder(t: RechargeTestService, rechargeId: number): Promise<Json> {
  const res = await t.admin(`/admin/orders?source=recharge&sourceOrderId=${rechargeId}`);
  assert.equal(res.status, 200);
  assert.equal(res.body.orders.length, 1, `one order for ${rechargeId}`);
  return res.body.orders[0] as Json;
}

for (const { kind, skip } of await storeKinds()) {
  for (const version of VERSIONS) {
    describe(`Recharge prepaid orders without a charge in the payload, API ${version} [${kind}]`, { skip }, () => {
      let t: RechargeTestService;
      before(async () => {
        t = await startRechargeService(kind);
      });
      after(() => t.stop());

      it("reads the charge id with GET /orders/{id}, then writes the charge back with PUT /charges/{id}", async () => {
        const { id, stored, delivered } = prepaidWithoutCharge(version);
        t.recharge.storeOrder(stored);
        const res = await t.webhook("order/created", delivered);
        assert.equal(res.status, 200);
        await t.settle();
        const order = await placedOrder(t, id);

        const calls = t.recharge.calls.filter((c) => c.path === `/orders/${id}` || c.path === `/charges/${CHARGE}`);
        const get = calls.find((c) => c.method === "GET");
        const put = calls.find((c) => c.method === "PUT" && c.path === `/charges/${CHARGE}`);
        assert.ok(get, "the order was read");
        assert.ok(put, "the charge was written back");
        assert.equal(get.status, 200);
        assert.equal(get.path, `/orders/${id}`);
        assert.equal(get.headers["x-recharge-version"], version, "read in the payload's version, explicitly");
        assert.equal(get.headers["x-recharge-access-token"], "rc_api_token_for_tests");
        assert.ok(calls.indexOf(get) < calls.indexOf(put), "read before the write");
        assert.equal(put.status, 200);
        assert.equal(put.headers["x-recharge-version"], version);
        assert.deepEqual(put.body, chargeBody(version, String(order["platformOrderId"])));

        const [job, ...more] = (await t.jobs({ kind: JOB_PUT_CHARGE })).filter((j) => j.resource_id === String(id));
        assert.equal(more.length, 0);
        assert.equal(job?.state, "done");
        assert.match(job?.outcome ?? "", new RegExp(`^PUT /charges/${CHARGE} → 200 \\(external order ABC-\\d+, charge id from GET /orders/${id}\\)$`));
        const sync = await t.store.db.selectFrom("recharge_orders").select("charge_id").where("recharge_order_id", "=", String(id)).executeTakeFirstOrThrow();
        assert.equal(sync.charge_id, CHARGE, "the learnt charge id is kept with the order");
        assert.equal(t.recharge.succeeded().filter((c) => c.path === `/orders/${id}` && c.method === "PUT").length, 1, "and the order's own write-back");

        // A later delivery that does carry the charge, and the catch-up of `orderbridge recharge
        // writeback`, queue no second charge write-back for the order.
        await t.webhook("order/updated", { order: { ...stored, updated_at: "2024-05-01T14:20:00+00:00" } });
        await t.settle();
        const again = await queueMissingWriteBacks(t.store.handle, { since: 0, maxAttempts: 3, dryRun: false, now: Date.now() });
        assert.equal(again.queued, 0, JSON.stringify(again));
        assert.equal((await t.jobs({ kind: JOB_PUT_CHARGE })).filter((j) => j.resource_id === String(id)).length, 1);
        assert.equal(t.recharge.calls.filter((c) => c.method === "PUT" && c.path === `/charges/${CHARGE}`).length, 1, "the charge is written once");
        assert.equal(t.recharge.calls.filter((c) => c.method === "GET" && c.path === `/orders/${id}`).length, 1, "the order is read once");
      });

      it("when Recharge's order has no charge either, the charge write-back is skipped and says why (job outcome and a warning)", async () => {
        const { id, stored, delivered } = prepaidWithoutCharge(version);
        t.recharge.storeOrder(withoutCharge(stored));
        const before = t.recharge.calls.filter((c) => c.method === "PUT" && c.path.startsWith("/charges/")).length;
        await t.webhook("order/created", delivered);
        await t.settle();
        await placedOrder(t, id);
        const [job] = (await t.jobs({ kind: JOB_PUT_CHARGE })).filter((j) => j.resource_id === String(id));
        assert.equal(job?.state, "skipped");
        assert.equal(job?.outcome, `PUT /charges skipped: the charge of prepaid Recharge order ${id} is unknown (neither its webhook nor GET /orders/${id} names one)`);
        assert.equal(t.recharge.calls.filter((c) => c.method === "GET" && c.path === `/orders/${id}`).length, 1);
        assert.equal(t.recharge.calls.filter((c) => c.method === "PUT" && c.path.startsWith("/charges/")).length, before, "no charge write-back");
        const warning = t.logs
          .map((l) => JSON.parse(l) as Json)
          .find((l) => l["message"] === "Recharge charge write-back skipped: the charge is unknown" && l["rechargeOrderId"] === String(id));
        assert.equal(warning?.["level"], "warn");
        assert.equal((await t.jobs({ kind: JOB_PUT_ORDER })).find((j) => j.resource_id === String(id))?.state, "done", "the order's write-back is not held up");
      });

      it("an order Recharge does not know (404) sends the charge write-back to dead with Recharge's answer", async () => {
        const { id, delivered } = prepaidWithoutCharge(version);
        await t.webhook("order/created", delivered);
        await t.settle();
        const [job] = (await t.jobs({ kind: JOB_PUT_CHARGE })).filter((j) => j.resource_id === String(id));
        assert.equal(job?.state, "dead");
        assert.match(job?.last_error ?? "", new RegExp(`^GET /orders/${id} → 404: Not Found$`));
      });
    });
  }

  describe(`Recharge charge write-backs queued before their key was the order's [${kind}]`, { skip }, () => {
    it("count as there: the catch-up queues no second one", async () => {
      const t = await startRechargeService(kind);
      try {
        const body = rcFixture("2021-11", "order-created-prepaid-1");
        const id = next++;
        body["order"]["id"] = id;
        await t.webhook("order/created", body);
        await t.settle();
        const [job] = (await t.jobs({ kind: JOB_PUT_CHARGE })).filter((j) => j.resource_id === String(id));
        assert.equal(job?.state, "done");
        // As an earlier release keyed it.
        await t.store.db
          .updateTable("jobs")
          .set({ dedupe_key: `recharge:put-charge:${CHARGE}:${id}` })
          .where("id", "=", job.id)
          .execute();
        const r = await queueMissingWriteBacks(t.store.handle, { since: 0, maxAttempts: 3, dryRun: false, now: Date.now() });
        assert.deepEqual({ queued: r.queued, existing: r.existing }, { queued: 0, existing: { done: 2 } });
        assert.equal((await t.jobs({ kind: JOB_PUT_CHARGE })).length, 1);
      } finally {
        await t.stop();
      }
    });
  });

  describe(`Recharge prepaid charge look-ups under a small bucket [${kind}]`, { skip }, () => {
    it("each GET /orders/{id} takes a slot of the shared rate limit like a PUT: every write-back lands, 0 × 429", { timeout: 60_000 }, async () => {
      // Recharge's bucket holds 3 and leaks 4/s; ours is told the same. Six prepaid orders without
      // a charge make 18 calls (6 order PUTs, 6 GETs, 6 charge PUTs): a GET sent outside the bucket
      // would overflow Recharge's.
      const t = await startRechargeService(kind, {
        standIn: { bucket: { size: 3, leakPerSecond: 4, retryAfter: true } },
        env: { RECHARGE_RATE_LIMIT_BURST: "3", RECHARGE_RATE_LIMIT_PER_SECOND: "4", RECHARGE_WRITEBACK_CONCURRENCY: "4", JOB_MAX_ATTEMPTS: "30" },
      });
      try {
        const ids: number[] = [];
        for (let i = 0; i < 6; i++) {
          const { id, stored, delivered } = prepaidWithoutCharge("2021-11");
          t.recharge.storeOrder(stored);
          ids.push(id);
          assert.equal((await t.webhook("order/created", delivered)).status, 200);
        }
        await t.settle(40_000);
        assert.equal(t.recharge.bucketRejections, 0, "no call found Recharge's bucket full");
        assert.equal(t.recharge.calls.length, 18, t.recharge.calls.map((c) => `${c.method} ${c.path} ${c.status}`).join("; "));
        for (const id of ids) {
          assert.equal(t.recharge.succeeded().filter((c) => c.method === "GET" && c.path === `/orders/${id}`).length, 1, `GET ${id}`);
          assert.equal(t.recharge.succeeded().filter((c) => c.method === "PUT" && c.path === `/orders/${id}`).length, 1, `PUT ${id}`);
        }
        assert.equal(t.recharge.succeeded().filter((c) => c.method === "PUT" && c.path === `/charges/${CHARGE}`).length, 6);
        assert.equal((await t.jobs({ kind: JOB_PUT_CHARGE, state: "done" })).length, 6);
      } finally {
        await t.stop();
      }
    });
  });
}
