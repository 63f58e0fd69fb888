import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { JOB_PUT_ORDER, JOB_WEBHOOK } from "../../src/recharge/handlers.js";
import { signRechargeLegacy } from "../../src/security/recharge-signature.js";
import { createService, type Service } from "../../src/service.js";
import { runCli } from "../helpers/process.js";
import { RC_SECRET, rcFixture, sameDatabaseEnv, startRechargeService, waitFor, type Json, type RechargeTestService } from "../helpers/recharge.js";
import { storeKinds } from "../helpers/stores.js";

/*
 * Issue 16, items 2-4: Recharge deletes a webhook after 48 hours of failed deliveries, and anyone
 * with the token can remove one; the sweep lists the orders updated since its cursor and places
 * every successful one no webhook placed, once, and writes back those still without an external id.
 */

const silent = createLogger({ level: "error", format: "json", silent: true });
const nowIso = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, "+00:00");

/** A successful 2021-11 order as Recharge keeps it: not synced yet, updated now. */
function rcOrder(id: number): Json {
  const o = rcFixture("2021-11", "order-created")["order"] as Json;
  return { ...o, id, updated_at: nowIso(), external_order_id: { ecommerce: null }, external_order_number: { ecommerce: null } };
}

/** The service's environment for another instance on the same database (and the CLI). */
const sameDatabase = (t: RechargeTestService, extra: Record<string, string> = {}): Record<string, string> =>
  sameDatabaseEnv(t, { RECHARGE_TIMEOUT_MS: "2000", WORKER_POLL_MS: "50", ORDER_NUMBER_PREFIX: "ABC-", ORDER_NUMBER_START: "100271", ...extra });

async function placedIds(t: RechargeTestService): Promise<string[]> {
  const orders = (await t.admin("/admin/orders?source=recharge&limit=200")).body.orders as { sourceOrderId: string }[];
  return orders.map((o) => o.sourceOrderId).sort();
}

/** Every Recharge order with the external id of the platform order placed for it, and one PUT each. */
async function assertWrittenBackOnce(t: RechargeTestService, ids: number[]): Promise<void> {
  const orders = (await t.admin("/admin/orders?source=recharge&limit=200")).body.orders as { sourceOrderId: string; orderNumber: string }[];
  for (const id of ids) {
    const ext = (t.recharge.order(id)?.["external_order_number"] as Json | undefined)?.["ecommerce"];
    assert.equal(ext, orders.find((o) => o.sourceOrderId === String(id))?.orderNumber, `order ${id} written back with its order number`);
    assert.equal(t.recharge.succeeded().filter((c) => c.method === "PUT" && c.path === `/orders/${id}`).length, 1, `one write-back of ${id}`);
  }
}

const SWEEP_ENV = { RECHARGE_SWEEP_INTERVAL: "10m", RECHARGE_RATE_LIMIT_PER_SECOND: "20", RECHARGE_SWEEP_RATE_SHARE: "1" };

for (const { kind, skip } of await storeKinds()) {
  describe(`Recharge sweep [${kind}]`, { skip }, () => {
    it(
      "a webhook deleted while orders are created: the sweep places each missed order once and writes it back; a late webhook places nothing more",
      { timeout: 60_000 },
      async () => {
        const t = await startRechargeService(kind, { env: SWEEP_ENV, startRechargeTasks: false, standIn: { bucket: { size: 40, leakPerSecond: 20 } } });
        try {
          const sweeper = t.rechargeTasks.sweeper;
          assert.ok(sweeper, "RECHARGE_API_TOKEN and an interval: the sweep exists");
          // Delivered while the webhook still existed.
          for (const id of [910_001, 910_002]) {
            const o = rcOrder(id);
            t.recharge.storeOrder(o);
            assert.equal((await t.webhook("order/created", { order: o })).status, 200);
          }
          await t.settle();
          // The webhook is deleted; three more orders, no deliveries. One not successful, one another system's.
          for (const id of [910_003, 910_004, 910_005]) t.recharge.storeOrder(rcOrder(id));
          t.recharge.storeOrder({ ...rcOrder(910_006), status: "queued" });
          t.recharge.storeOrder({ ...rcOrder(910_007), external_order_id: { ecommerce: "OTHER-1" } });

          const r = await sweeper.run();
          assert.ok(r);
          assert.equal(r.complete, true);
          assert.equal(r.placed, 3, JSON.stringify(r.orders));
          await t.settle();
          assert.deepEqual(await placedIds(t), ["910001", "910002", "910003", "910004", "910005"]);
          await assertWrittenBackOnce(t, [910_001, 910_002, 910_003, 910_004, 910_005]);
          const list = t.recharge.calls.find((c) => c.path.startsWith("/orders?"));
          assert.ok(list);
          const q = new URL(list.path, "http://x").searchParams;
          assert.equal(q.get("limit"), "250", "the largest page");
          assert.equal(q.get("status"), "success");
          assert.ok(q.get("updated_at_min") && q.get("updated_at_max"));
          const swept = (await t.jobs({ kind: JOB_WEBHOOK })).filter((j) => j.source === "sweep");
          assert.deepEqual(swept.map((j) => j.resource_id).sort(), ["910003", "910004", "910005"], "marked as coming from the sweep");

          // Recharge delivers the deleted webhook's order late (a re-registered webhook, a retry).
          const late = rcOrder(910_004);
          assert.equal((await t.webhook("order/created", { order: { ...late, updated_at: "2026-01-01T00:00:00+00:00" } })).status, 200);
          await t.settle();
          assert.equal((await placedIds(t)).length, 5, "no second order");
          const lateJob = (await t.jobs({ kind: JOB_WEBHOOK })).at(-1);
          assert.match(lateJob?.outcome ?? "", /already placed/);

          // The next run starts at the cursor: all written back, nothing to do.
          const again = await sweeper.run();
          assert.equal(again?.placed, 0);
          assert.equal(again?.writeBacksQueued, 0);
          assert.equal(t.recharge.bucketRejections, 0);
        } finally {
          await t.stop();
        }
      },
    );

    it("placed with write-back off, or its write-back dead: the sweep gives it its write-back", { timeout: 60_000 }, async () => {
      const t = await startRechargeService(kind, { env: { ...SWEEP_ENV, JOB_MAX_ATTEMPTS: "1" }, startRechargeTasks: false });
      try {
        const a = rcOrder(920_001);
        const b = rcOrder(920_002);
        for (const o of [a, b]) t.recharge.storeOrder(o);
        // a: its write-back dies (a 422); b: placed by an instance with write-back off.
        t.recharge.queue({ status: 422 });
        assert.equal((await t.webhook("order/created", { order: a })).status, 200);
        await t.settle();
        assert.equal((await t.jobs({ kind: JOB_PUT_ORDER }))[0]?.state, "dead");
        const off = await createService(loadConfig(sameDatabase(t, { RECHARGE_WRITEBACK: "off" })), silent);
        try {
          assert.equal(off.rechargeTasks.sweeper, undefined, "no token: no sweep");
          const raw = JSON.stringify({ order: b });
          const res = await request(off.app)
            .post("/webhooks/recharge/order/created")
            .set("Content-Type", "application/json")
            .set("X-Recharge-Hmac-Sha256", signRechargeLegacy(RC_SECRET, raw))
            .send(raw);
          assert.equal(res.status, 200);
          await waitFor("b placed", async () => (await placedIds(t)).includes("920002"));
        } finally {
          await off.close();
        }
        assert.equal((await t.jobs({ kind: JOB_PUT_ORDER })).length, 1);

        const r = await t.rechargeTasks.sweeper?.run();
        assert.equal(r?.writeBacksQueued, 1, JSON.stringify(r?.orders));
        assert.equal(r?.writeBacksReplayed, 1);
        await t.settle();
        await assertWrittenBackOnce(t, [920_002]);
        assert.equal(t.recharge.succeeded().filter((c) => c.path === "/orders/920001").length, 1, "the dead one replayed, and landed");
        assert.equal((await placedIds(t)).length, 2, "nothing placed twice");
      } finally {
        await t.stop();
      }
    });

    it("sweep and write-backs together under the shared bucket: 0 x 429, every order placed and written back once", { timeout: 120_000 }, async () => {
      const t = await startRechargeService(kind, {
        env: { RECHARGE_SWEEP_INTERVAL: "10m", RECHARGE_RATE_LIMIT_BURST: "10", RECHARGE_RATE_LIMIT_PER_SECOND: "10", RECHARGE_SWEEP_RATE_SHARE: "0.3" },
        startRechargeTasks: false,
        standIn: { bucket: { size: 10, leakPerSecond: 10 }, pageCap: 3 },
      });
      try {
        const delivered = Array.from({ length: 20 }, (_, i) => 930_001 + i);
        const missed = Array.from({ length: 15 }, (_, i) => 931_001 + i);
        for (const id of [...delivered, ...missed]) t.recharge.storeOrder(rcOrder(id));
        for (const id of delivered) assert.equal((await t.webhook("order/created", { order: rcOrder(id) })).status, 200);
        // The sweep pages (3 a page; the missed ones, newest ids, first) while the 20 write-backs go out.
        const r = await t.rechargeTasks.sweeper?.run();
        assert.equal(r?.complete, true);
        await t.settle(60_000);
        await waitFor("all written back", async () => t.recharge.succeeded().filter((c) => c.method === "PUT").length >= 35, 60_000);
        await t.settle(60_000);
        assert.deepEqual(await placedIds(t), [...delivered, ...missed].map(String).sort());
        await assertWrittenBackOnce(t, [...delivered, ...missed]);
        assert.equal(t.recharge.bucketRejections, 0, "0 x 429");
        assert.ok(t.recharge.calls.filter((c) => c.path.startsWith("/orders?")).length >= 5, "the missed orders took 5 pages");
      } finally {
        await t.stop();
      }
    });

    it("restarted mid-sweep: the next instance goes on from the stored cursor; two instances: one sweeper at a time", { timeout: 60_000 }, async () => {
      // The first instance places nothing (no worker): the stand-in's scripted answer meets its second page.
      const t = await startRechargeService(kind, { env: SWEEP_ENV, startRechargeTasks: false, startWorker: false, standIn: { pageCap: 2 } });
      const others: Service[] = [];
      try {
        const ids = Array.from({ length: 6 }, (_, i) => 940_001 + i);
        for (const id of ids) t.recharge.storeOrder(rcOrder(id));
        t.recharge.queue({ until: Promise.resolve(), then: "ok" }, { status: 422, body: { errors: "stand-in: the instance dies here" } });
        const first = await t.rechargeTasks.sweeper?.run();
        assert.equal(first?.complete, false);
        assert.equal(first?.pages, 1);
        const state = await t.store.db.selectFrom("recharge_sweep_state").selectAll().where("name", "=", "orders").executeTakeFirstOrThrow();
        assert.ok(state.page_cursor, "the cursor of the page after the first is stored");
        assert.equal(state.watermark, null, "the run is not finished");

        // "Restart": other instances on the same database; both try at once, one sweeps.
        const env = sameDatabase(t, SWEEP_ENV);
        // Their workers start after the sweep: a write-back's call must not take the scripted answer meant for the sweep's.
        for (let i = 0; i < 2; i++) others.push(await createService(loadConfig(env), silent, { startRechargeTasks: false, startWorker: false }));
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        const before = t.recharge.calls.length;
        t.recharge.queue({ until: held, then: "ok" });
        const a = others[0]?.rechargeTasks.sweeper?.run();
        await t.recharge.waitForCalls(before + 1);
        const b = await others[1]?.rechargeTasks.sweeper?.run();
        assert.equal(b, undefined, "the lease is held: the second instance does not sweep");
        release();
        const r = await a;
        assert.equal(r?.resumed, true);
        assert.equal(r?.complete, true);
        const resumedCall = t.recharge.calls[before];
        assert.match(resumedCall?.path ?? "", /[?&]cursor=/, "it went on from the stored cursor");
        assert.doesNotMatch(resumedCall?.path ?? "", /updated_at_min/);
        for (const o of others) o.worker.start();
        await waitFor("6 placed", async () => (await placedIds(t)).length === 6);
        await waitFor("6 written back", async () => t.recharge.succeeded().filter((c) => c.method === "PUT").length === 6);
        assert.deepEqual(await placedIds(t), ids.map(String));
        // Each order fed once: page 1's by the first instance, the rest by the second.
        assert.equal((await t.jobs({ kind: JOB_WEBHOOK })).length, 6);
        const done = await t.store.db.selectFrom("recharge_sweep_state").selectAll().where("name", "=", "orders").executeTakeFirstOrThrow();
        assert.equal(done.page_cursor, null);
        assert.ok(done.watermark !== null && done.last_finished_at !== null);
      } finally {
        for (const s of others) await s.close();
        await t.stop();
      }
    });

    it("orderbridge recharge sweep --since prints what it found and feeds the missed orders; again, nothing", { timeout: 90_000 }, async () => {
      const t = await startRechargeService(kind, { env: SWEEP_ENV, startRechargeTasks: false });
      try {
        for (const id of [950_001, 950_002]) t.recharge.storeOrder(rcOrder(id));
        const env = sameDatabase(t);
        const dry = await runCli(["recharge", "sweep", "--since", "2h", "--dry-run", "--json"], env);
        assert.equal(dry.code, 0, dry.stderr);
        const d = JSON.parse(dry.stdout) as { placed: number; orders: { id: string; action: string }[] };
        assert.equal(d.placed, 2);
        assert.deepEqual(
          d.orders.map((o) => [o.id, o.action]),
          [
            ["950002", "place"],
            ["950001", "place"],
          ],
        );
        assert.equal((await t.jobs({ kind: JOB_WEBHOOK })).length, 0, "a dry run feeds nothing");
        const run = await runCli(["recharge", "sweep", "--since", "2h"], env);
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /2 successful Recharge order\(s\) updated .*: place 2 missed/);
        assert.match(run.stdout, /950001 +place/);
        await t.settle();
        assert.deepEqual(await placedIds(t), ["950001", "950002"]);
        const again = await runCli(["recharge", "sweep", "--since", "2h", "--json"], env);
        assert.equal(JSON.parse(again.stdout).placed, 0);
        const none = await runCli(["recharge", "sweep", "--since", "2h"], { ...env, RECHARGE_API_TOKEN: "", RECHARGE_WRITEBACK: "off" });
        assert.equal(none.code, 78);
        assert.match(none.stderr, /RECHARGE_API_TOKEN is not set/);
      } finally {
        await t.stop();
      }
    });
  });
}
