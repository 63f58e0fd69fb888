import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import request from "supertest";
import { JOB_PUT_ORDER } from "../../src/recharge/handlers.js";
import { close, listen } from "../../tools/stand-ins/loopback.js";
import { runCli } from "../helpers/process.js";
import { rcFixture, startRechargeService, waitFor, type RechargeTestService } from "../helpers/recharge.js";
import { ADMIN_TOKEN } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

// What the console can do is in the admin API and the CLI too: replay all that match a filter
// (with a dry run that counts), and mark a dead letter resolved without replaying it.

let next = 740_000_000;
for (const { kind, skip } of await storeKinds()) {
  describe(`admin API: bulk replay and resolve [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    before(async () => {
      t = await startRechargeService(kind);
    });
    after(() => t.stop());
    const post = (path: string) => request(t.app).post(path).set("Authorization", `Bearer ${ADMIN_TOKEN}`);
    const deadWriteBack = async (): Promise<string> => {
      await t.settle(20_000);
      t.recharge.queue({ status: 422, body: { errors: "refused" } });
      const id = next++;
      const body = structuredClone(rcFixture("2021-11", "order-created"));
      body["order"]["id"] = id;
      await t.webhook("order/created", body);
      return (await waitFor("a dead write-back", async () => (await t.jobs({ kind: JOB_PUT_ORDER })).find((j) => j.resource_id === String(id) && j.state === "dead"), 20_000)).id;
    };

    it("replays all that match after a dry run that counts, and refuses a replay without a filter", async () => {
      await deadWriteBack();
      await deadWriteBack();
      await t.settle(20_000);
      const dry = await post("/admin/events/replay?state=dead&dryRun=true");
      assert.equal(dry.status, 200);
      assert.deepEqual(dry.body, { matched: 2, replayed: 0, more: false });
      assert.equal((await t.jobs({ state: "dead" })).length, 2, "a dry run changes nothing");
      const r = await post(`/admin/events/replay?state=dead&kind=${JOB_PUT_ORDER}`);
      assert.equal(r.status, 202);
      assert.deepEqual(r.body, { matched: 2, replayed: 2, more: false });
      await t.settle(20_000);
      assert.equal((await t.jobs({ state: "dead" })).length, 0);
      // The list filters by topic and creation time too.
      const get = (path: string) => request(t.app).get(path).set("Authorization", `Bearer ${ADMIN_TOKEN}`);
      const created = (await get("/admin/events?topic=order%2Fcreated&limit=200")).body as { events: { topic: string }[] };
      assert.ok(created.events.length >= 2 && created.events.every((e) => e.topic === "order/created"));
      assert.equal(((await get(`/admin/events?from=${new Date(Date.now() + 60_000).toISOString()}`)).body as { events: unknown[] }).events.length, 0);
      assert.equal((await get("/admin/events?from=yesterday")).status, 400);
      const all = await post("/admin/events/replay");
      assert.equal(all.status, 400);
      assert.match(all.body.errorMessage, /Give a filter/);
    });

    it("marks a dead letter resolved: skipped with the note, never run again; anything else is refused", async () => {
      const id = await deadWriteBack();
      const calls = t.recharge.calls.length;
      const r = await post(`/admin/events/${id}/resolve?note=refunded`);
      assert.equal(r.status, 200);
      assert.equal(r.body.state, "skipped");
      assert.match(r.body.outcome, /resolved through the admin API without a replay: refunded/);
      await t.settle(5_000);
      assert.equal(t.recharge.calls.length, calls, "nothing was sent");
      assert.equal((await post(`/admin/events/${id}/resolve`)).status, 409);
      assert.equal((await post("/admin/events/evt_nope/resolve")).status, 404);
    });

    it("the CLI does both", { skip: kind !== "sqlite" && "store-independent" }, async () => {
      const id = await deadWriteBack();
      const server = http.createServer(t.app);
      const url = await listen(server);
      try {
        const env = { ORDERBRIDGE_URL: url, ADMIN_TOKEN };
        const dry = await runCli(["events", "replay-matching", "--state", "dead", "--dry-run"], env);
        assert.equal(dry.code, 0, dry.stderr);
        assert.equal(dry.stdout.trim(), "1 match");
        const resolved = await runCli(["events", "resolve", id, "--note", "by hand", "--json"], env);
        assert.equal(resolved.code, 0, resolved.stderr);
        assert.equal((JSON.parse(resolved.stdout) as { state: string }).state, "skipped");
        const none = await runCli(["events", "replay-matching", "--state", "dead"], env);
        assert.equal(none.stdout.trim(), "0 of 0 replayed");
      } finally {
        await close(server);
      }
    });
  });
}
