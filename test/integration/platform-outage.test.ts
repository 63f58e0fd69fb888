import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { minimalOrder, startService, type TestService } from "../helpers/service.js";
import { StandInPlatform } from "../helpers/stand-in-platform.js";
import { storeKinds } from "../helpers/stores.js";

const order = (token: string) =>
  minimalOrder(token, [
    { productSku: "ANY-1", qty: 1, subscription: { id: "s1" } },
    { productSku: "ANY-2", qty: "2", subscription: { id: "s2" } },
  ]);

for (const { kind, skip } of await storeKinds()) {
  describe(`a remote platform that is down, slow or broken [${kind}]`, { skip }, () => {
    const platform = new StandInPlatform();
    let t: TestService;
    before(async () => {
      t = await startService(kind, { platform, env: { PLATFORM_DEADLINE_MS: "300" } });
    });
    after(() => t.stop());

    const state = async (token: string) => t.store.db.selectFrom("sp_callbacks").selectAll().where("idempotency_key", "=", `sp:${token}`).executeTakeFirstOrThrow();

    it("down: 503 with Retry-After and nothing final; the retry after it returns places the order", async () => {
      platform.mode = "down";
      const res = await t.callback(order("down-1"));
      assert.equal(res.status, 503);
      assert.equal(res.headers["retry-after"], "5");
      assert.equal(res.body.errorCode, "platform_error");
      assert.equal((await state("down-1")).state, "retryable");
      platform.mode = "up";
      const retry = await t.callback(order("down-1"));
      assert.equal(retry.status, 201);
      assert.equal(retry.body.orderNumber, "EXT-1");
      assert.equal((await state("down-1")).state, "done");
    });

    it("hanging: 503 at the deadline, then exactly one order when it recovers", async () => {
      platform.mode = "hang";
      const started = Date.now();
      const res = await t.callback(order("hang-1"));
      assert.equal(res.status, 503);
      assert.match(res.body.errorMessage, /did not answer within 300 ms/);
      assert.ok(Date.now() - started < 5_000);
      platform.mode = "up";
      const before = platform.placed.size;
      const retry = await t.callback(order("hang-1"));
      const again = await t.callback(order("hang-1"));
      assert.equal(retry.status, 201);
      assert.equal(again.text, retry.text);
      assert.equal(platform.placed.size, before + 1);
    });

    it("a placed order is answered from the store without calling the platform again", async () => {
      platform.mode = "up";
      const first = await t.callback(order("stored-1"));
      const calls = platform.calls;
      const second = await t.callback(order("stored-1"));
      assert.equal(second.text, first.text);
      assert.equal(platform.calls, calls);
      assert.equal(first.body.orderDetails.items.map((i: { platformOrderItemId: string }) => i.platformOrderItemId).length, 2);
    });

    it("a duplicate waits for a live owner, then answers 503 in_progress; a different body is refused at once", async () => {
      const now = Date.now();
      await t.store.db
        .insertInto("sp_callbacks")
        .values({
          idempotency_key: "sp:busy-1",
          body_hash: "another-body",
          state: "processing",
          attempt_id: "live-owner",
          lease_until: now + 60_000,
          status: null,
          response_body: null,
          order_number: null,
          request_id: null,
          created_at: now,
          updated_at: now,
        })
        .execute();
      const different = await t.callback(order("busy-1"));
      assert.equal(different.status, 409);
      assert.match(different.body.errorMessage, /busy-1 is being processed with a different order body/);

      // Now the same body as the live owner's: the duplicate waits for it.
      const { createHash } = await import("node:crypto");
      const { canonicalJson } = await import("../../src/orders/canonical-json.js");
      const hash = createHash("sha256")
        .update(canonicalJson(order("busy-1")))
        .digest("hex");
      await t.store.db.updateTable("sp_callbacks").set({ body_hash: hash }).where("idempotency_key", "=", "sp:busy-1").execute();
      const started = Date.now();
      const waited = await t.callback(order("busy-1"));
      assert.equal(waited.status, 503);
      assert.equal(waited.body.errorCode, "in_progress");
      assert.equal(waited.headers["retry-after"], "2");
      assert.ok(Date.now() - started >= 1_000, "it waited for the owner first");
      const row = await state("busy-1");
      assert.equal(row.attempt_id, "live-owner", "the live owner keeps its key");
    });

    it("a platform answer without line results is a platform error, not an order", async () => {
      platform.mode = "broken";
      const res = await t.callback(order("broken-1"));
      assert.equal(res.status, 503);
      assert.match(res.body.errorMessage, /reported no result for 2 line/);
      // It answered, so it may have placed the order: the token stays bound to this body.
      assert.equal((await state("broken-1")).state, "uncertain");
    });
  });
}
