import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import request from "supertest";
import { JOB_PUT_ORDER } from "../../src/recharge/handlers.js";
import { rcFixture, startRechargeService, type Json, type RechargeTestService, type Version } from "../helpers/recharge.js";
import { createSchemaRegistry } from "../../src/validation/schemas.js";
import { storeKinds } from "../helpers/stores.js";

/*
 * Issue 14, item 3: merchants register every Recharge topic at one address. A signed delivery to
 * /webhooks/recharge that names its topic in neither the URL nor X-Recharge-Topic takes it from its
 * body, and is never refused for its topic (Recharge retries a 4xx and deletes the webhook after 20
 * failures).
 */

const VERSIONS: Version[] = ["2021-11", "2021-01"];

function withId(body: Json, id: number, extra: Json = {}): Json {
  const copy = structuredClone(body);
  Object.assign(copy["order"], { id }, extra);
  return copy;
}

async function ordersFor(t: RechargeTestService, rechargeId: number): Promise<Json[]> {
  const res = await t.admin(`/admin/orders?source=recharge&sourceOrderId=${rechargeId}`);
  assert.equal(res.status, 200);
  return res.body.orders as Json[];
}

/** The answer is what schemas/recharge/webhook-ack.schema.json (and the OpenAPI document) say. */
const validAck = createSchemaRegistry().validator("recharge/webhook-ack");

const payloadOf = (job: { payload: string }): Json => JSON.parse(job.payload) as Json;

for (const { kind, skip } of await storeKinds()) {
  describe(`Recharge webhooks at one URL for every topic [${kind}]`, { skip }, () => {
    describe("receiving", () => {
      let t: RechargeTestService;
      before(async () => {
        t = await startRechargeService(kind, { startWorker: false });
      });
      after(() => t.stop());

      it("an order without a topic in the URL or a header is accepted as an order topic, and the event says the payload told it", async () => {
        const res = await t.webhook(null, withId(rcFixture("2021-11", "order-created"), 870_000_001));
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.status, "accepted");
        assert.equal(res.body.topic, "order/created");
        assert.equal(res.body.topicSource, "payload");
        validAck(res.body);
        const job = await t.job(res.body.eventId);
        assert.equal(job.topic, "order/created");
        assert.equal(job.state, "pending");
        assert.equal(job.resource_id, "870000001");
        assert.equal(job.topic_source, "payload");
        assert.deepEqual(payloadOf(job), { eventId: job.id }, "its job names the event");
        const shown = await t.admin(`/admin/events/${job.id}`);
        assert.equal(shown.body.topicSource, "payload", "operators see where the topic came from");
        assert.equal(shown.body.source, "webhook");
        assert.ok(
          t.logs.some((l) => l.includes('"Recharge webhook accepted"') && l.includes('"topicSource":"payload"')),
          "the log line says where the topic came from",
        );

        const byPath = await t.webhook("order/created", withId(rcFixture("2021-11", "order-created"), 870_000_002));
        assert.equal(byPath.body.topicSource, "path");
        assert.equal((await t.job(byPath.body.eventId)).topic_source, "path");
        const byHeader = await t.webhook(null, withId(rcFixture("2021-11", "order-created"), 870_000_003), { headers: { "X-Recharge-Topic": "order/processed" } });
        assert.equal(byHeader.body.topic, "order/processed", "a header still names the topic");
        assert.equal(byHeader.body.topicSource, "header");
      });

      it("the same order delivered again without a topic is a duplicate of the first", async () => {
        const body = withId(rcFixture("2021-11", "order-created"), 870_000_010);
        const first = await t.webhook(null, body);
        const again = await t.webhook(null, body);
        assert.equal(first.body.status, "accepted");
        assert.equal(again.body.status, "duplicate");
        assert.equal(again.body.eventId, first.body.eventId);
      });

      it("a charge, or any other resource, gets 200 ignored with the reason recorded; nothing is refused for its topic", async () => {
        const charge = await t.webhook(null, { charge: { id: 377750000, status: "success" } });
        assert.equal(charge.status, 200, charge.text);
        assert.equal(charge.body.status, "ignored");
        assert.equal(charge.body.topic, null);
        assert.equal(charge.body.topicSource, "payload");
        validAck(charge.body);
        assert.match(charge.body.reason, /no topic in the URL or X-Recharge-Topic, and the payload is a charge: charge topics are not handled/);
        const job = await t.job(charge.body.eventId);
        assert.equal(job.state, "ignored");
        assert.equal(job.outcome, charge.body.reason);
        assert.equal(job.body, JSON.stringify({ charge: { id: 377750000, status: "success" } }), "kept as it came");

        const subscription = await t.webhook(null, { subscription: { id: 1 } });
        assert.equal(subscription.status, 200);
        assert.equal(subscription.body.status, "ignored");
        assert.match(subscription.body.reason, /neither an order nor a checkout \(keys "subscription"\)/);
        const list = await t.webhook(null, "[1,2]");
        assert.equal(list.status, 200);
        assert.match(list.body.reason, /is not a JSON object/);
        // Text a handled topic would refuse is no reason to refuse one that is not handled.
        const odd = await t.webhook(null, '{"customer": {"note": "\\u0000"}}');
        assert.equal(odd.status, 200, odd.text);
        assert.equal(odd.body.status, "ignored");

        const metrics = await request(t.app).get("/metrics");
        assert.match(metrics.text, /orderbridge_recharge_webhooks_total\{topic="\(other\)",result="ignored"\} [1-9]/);
        assert.match(metrics.text, /orderbridge_recharge_webhooks_total\{topic="order\/created",result="accepted"\} [1-9]/);
        assert.doesNotMatch(metrics.text, /topic="charge|topic="subscription/);
      });

      it("signatures are still required (401), and a body that is not JSON or breaks the order schema is still 400", async () => {
        const count = (await t.jobs()).length;
        const body = withId(rcFixture("2021-11", "order-created"), 870_000_020);
        const unsigned = await t.webhook(null, body, { sign: "none" });
        assert.equal(unsigned.status, 401);
        assert.equal(unsigned.body.errorCode, "signature_missing");
        const wrong = await t.webhook(null, body, { secret: "another-secret" });
        assert.equal(wrong.status, 401);
        const notJson = await t.webhook(null, "order please");
        assert.equal(notJson.status, 400);
        assert.equal(notJson.body.errorCode, "json_malformed");
        const invalid = await t.webhook(null, { order: { id: "abc", status: "success" } });
        assert.equal(invalid.status, 400);
        assert.equal(invalid.body.errorCode, "schema_violation");
        assert.ok((invalid.body.errors as Json[]).some((e) => e["pointer"] === "/order/id"));
        assert.equal((await t.jobs()).length, count, "nothing stored");

        // Recharge's test call, signed, on the one URL: answered and recorded as before.
        const empty = await t.webhook(null, "");
        assert.equal(empty.status, 200);
        assert.equal(empty.body.status, "ignored");
        assert.equal(empty.body.topicSource, null);
      });
    });

    for (const version of VERSIONS) {
      describe(`processing, API ${version}`, () => {
        let t: RechargeTestService;
        before(async () => {
          t = await startRechargeService(kind);
        });
        after(() => t.stop());

        it("order/created, order/updated and order/processed at one URL without a header: one order, written back once, as at their own URLs", async () => {
          const id = 871_000_001;
          const created = withId(rcFixture(version, "order-created"), id);
          const res = await t.webhook(null, created);
          assert.equal(res.status, 200);
          await t.settle();
          const event = await t.job(res.body.eventId);
          assert.equal(event.state, "done");
          assert.match(event.outcome ?? "", /^placed order ABC-/);
          const [order, ...more] = await ordersFor(t, id);
          assert.ok(order);
          assert.equal(more.length, 0);
          assert.equal(t.recharge.succeeded().filter((c) => c.path === `/orders/${id}`).length, 1);

          // The order/updated that the write-back causes, and an order/processed of the same order.
          const echoIds =
            version === "2021-11"
              ? { external_order_id: { ecommerce: order["platformOrderId"] }, external_order_number: { ecommerce: order["orderNumber"] } }
              : { external_order_id: order["platformOrderId"], external_order_number: order["orderNumber"] };
          const echo = await t.webhook(null, withId(created, id, { ...echoIds, updated_at: "2024-05-01T14:00:09+00:00" }));
          const processed = await t.webhook(null, withId(created, id, { updated_at: "2024-05-01T14:30:00+00:00" }));
          await t.settle();
          assert.match((await t.job(echo.body.eventId)).outcome ?? "", /echo of our write-back/);
          assert.match((await t.job(processed.body.eventId)).outcome ?? "", /already placed as ABC-/);
          assert.equal((await ordersFor(t, id)).length, 1);
          assert.equal((await t.jobs({ kind: JOB_PUT_ORDER })).filter((j) => j.resource_id === String(id)).length, 1);
        });

        it("a queued prepaid shipment at one URL is skipped by its status, and placed when its order/processed comes", async () => {
          const queued = rcFixture(version, "order-created-prepaid-2");
          const res = await t.webhook(null, queued);
          await t.settle();
          const event = await t.job(res.body.eventId);
          assert.equal(event.state, "skipped");
          assert.match(event.outcome ?? "", /status is queued/);
          const later = await t.webhook(null, rcFixture(version, "order-processed-prepaid-2"));
          await t.settle();
          assert.equal((await t.job(later.body.eventId)).state, "done");
          assert.equal((await ordersFor(t, Number(queued["order"]["id"]))).length, 1);
        });

        it("checkout/processed at one URL without a header clears the cart", async () => {
          const res = await t.webhook(null, rcFixture(version, "checkout-processed"));
          assert.equal(res.status, 200);
          assert.equal(res.body.topic, "checkout/processed");
          await t.settle();
          const event = await t.job(res.body.eventId);
          assert.equal(event.state, "done");
          assert.equal(event.outcome, "cleared cart cart_7f3c9a21");
          const carts = await t.store.db.selectFrom("local_cleared_carts").selectAll().execute();
          assert.deepEqual(
            carts.map((c) => c.cart_id),
            ["cart_7f3c9a21"],
          );
        });

        it("a charge at one URL is answered 200, recorded as ignored, and changes nothing", async () => {
          const calls = t.recharge.calls.length;
          const res = await t.webhook(null, { charge: { id: 377750000, status: version === "2021-11" ? "success" : "SUCCESS" } });
          assert.equal(res.status, 200);
          await t.settle();
          assert.equal((await t.job(res.body.eventId)).state, "ignored");
          assert.equal(t.recharge.calls.length, calls);
        });
      });
    }
  });
}
