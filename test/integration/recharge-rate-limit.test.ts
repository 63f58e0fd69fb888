import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../src/logger.js";
import { JOB_PUT_ORDER, JOB_WEBHOOK } from "../../src/recharge/handlers.js";
import { createService, type Service } from "../../src/service.js";
import type { RecordedCall } from "../../tools/stand-ins/recharge-api.js";
import { rcFixture, startRechargeService, waitFor, type Json, type RechargeTestService } from "../helpers/recharge.js";
import { storeKinds } from "../helpers/stores.js";

/*
 * The shared Recharge rate limit under load (issue 13, items 1 and 2): write-backs never stop for
 * good, whatever the number of worker loops sharing a token or a long Retry-After, and placing orders
 * never waits for write-backs.
 */

let next = 810_000_000;
function freshOrder(): { id: number; body: Json } {
  const id = next++;
  const body = structuredClone(rcFixture("2021-11", "order-created"));
  body["order"]["id"] = id;
  return { id, body };
}

/** The PUTs that got a 2xx, in arrival order. */
const landed = (t: RechargeTestService): RecordedCall[] => t.recharge.succeeded().filter((c) => c.method === "PUT");

/**
 * Calls per second from call `from` to the last: the sustained rate, after the initial burst (or
 * after a pause) is left out.
 */
function rateFrom(calls: RecordedCall[], from: number): number {
  const first = calls[from];
  const last = calls[calls.length - 1];
  assert.ok(first !== undefined && last !== undefined && last.at > first.at, "enough calls to measure a rate");
  return ((calls.length - 1 - from) * 1000) / (last.at - first.at);
}

async function waitForWriteBacks(t: RechargeTestService, n: number, timeoutMs: number): Promise<void> {
  await waitFor(`${n} write-backs done`, async () => (await t.jobs({ kind: JOB_PUT_ORDER, state: "done" })).length >= n, timeoutMs);
}

for (const { kind, skip } of await storeKinds()) {
  describe(`the Recharge rate limit under load [${kind}]`, { skip }, () => {
    it("two instances with 8 write-back loops at 4/s: every write-back lands, at the configured rate, 0 × 429", { timeout: 60_000 }, async () => {
      // 8 loops × 250 ms is far beyond the longest wait a call sleeps through: before the fix each
      // deferred call kept the slot it had reserved, the bucket ran ahead of the clock, and no PUT
      // was sent after the first few.
      const perSecond = 4;
      const burst = 4;
      const t = await startRechargeService(kind, {
        standIn: { bucket: { size: burst, leakPerSecond: perSecond } },
        env: {
          RECHARGE_RATE_LIMIT_BURST: String(burst),
          RECHARGE_RATE_LIMIT_PER_SECOND: String(perSecond),
          RECHARGE_WRITEBACK_CONCURRENCY: "4",
          JOB_LEASE_MS: "2000",
          JOB_MAX_ATTEMPTS: "30",
        },
      });
      let second: Service | undefined;
      try {
        second = await createService(t.config, createLogger({ level: "error", format: "json", silent: true }));
        const n = 40;
        for (let i = 0; i < n; i++) await t.webhook("order/created", freshOrder().body);
        await waitForWriteBacks(t, n, 40_000);
        const calls = landed(t);
        assert.equal(calls.length, n, "each write-back landed once");
        assert.equal(new Set(calls.map((c) => c.path)).size, n);
        assert.equal(t.recharge.bucketRejections, 0, "no call found Recharge's bucket full");
        const rate = rateFrom(calls, burst - 1);
        assert.ok(rate >= 0.95 * perSecond, `sustained ${rate.toFixed(2)}/s, configured ${perSecond}/s`);
      } finally {
        await second?.close();
        await t.stop();
      }
    });

    it("a 429 with Retry-After longer than any call waits, with a backlog: a pause, then every write-back at the configured rate", { timeout: 60_000 }, async () => {
      const perSecond = 4;
      const burst = 4;
      const t = await startRechargeService(kind, {
        standIn: { bucket: { size: burst, leakPerSecond: perSecond } },
        env: {
          RECHARGE_RATE_LIMIT_BURST: String(burst),
          RECHARGE_RATE_LIMIT_PER_SECOND: String(perSecond),
          RECHARGE_WRITEBACK_CONCURRENCY: "8",
          JOB_LEASE_MS: "2000",
          JOB_MAX_ATTEMPTS: "30",
        },
      });
      try {
        t.recharge.queue({ status: 429, retryAfter: 3 });
        const n = 40;
        for (let i = 0; i < n; i++) await t.webhook("order/created", freshOrder().body);
        await waitForWriteBacks(t, n, 40_000);
        const puts = t.recharge.calls.filter((c) => c.method === "PUT");
        const refused = puts.findIndex((c) => c.status === 429);
        assert.ok(refused >= 0, "the 429 was answered");
        const refusedAt = (puts[refused] as RecordedCall).at;
        // Calls of the first burst were already on their way when the 429 was answered; after
        // that, nothing until the Retry-After has passed.
        const inFlight = (c: RecordedCall): boolean => c.at - refusedAt < 250;
        const afterRefusal = puts.slice(refused + 1).filter((c) => !inFlight(c));
        const firstAfter = afterRefusal[0];
        assert.ok(firstAfter !== undefined);
        assert.ok(firstAfter.at - refusedAt >= 2_950, `nothing sent during the Retry-After (next call after ${firstAfter.at - refusedAt} ms)`);
        assert.equal(landed(t).length, n, "each write-back landed once");
        assert.equal(t.recharge.bucketRejections, 0);
        // After the pause Recharge's bucket counts as full: one call per interval, no burst.
        const rate = rateFrom(afterRefusal, 0);
        assert.ok(rate >= 0.95 * perSecond, `sustained ${rate.toFixed(2)}/s after the pause, configured ${perSecond}/s`);
      } finally {
        await t.stop();
      }
    });

    it("placing orders never waits for write-backs: a burst is placed while the write-backs trickle out at 0.25/s", { timeout: 60_000 }, async () => {
      // Before the lanes, write-backs waiting for a slot held the worker loops (up to 20 s each),
      // and the orders behind them waited too.
      const t = await startRechargeService(kind, {
        standIn: { bucket: { size: 2, leakPerSecond: 0.25 } },
        env: { RECHARGE_RATE_LIMIT_BURST: "2", RECHARGE_RATE_LIMIT_PER_SECOND: "0.25", WORKER_CONCURRENCY: "4", JOB_MAX_ATTEMPTS: "30" },
      });
      try {
        const n = 20;
        for (let i = 0; i < n; i++) await t.webhook("order/created", freshOrder().body);
        const events = await waitFor(
          `${n} orders placed`,
          async () => {
            const done = await t.jobs({ kind: JOB_WEBHOOK, state: "done" });
            return done.length >= n && done;
          },
          45_000,
        );
        // One write-back at once, then one per 4 s: the fourth slot is 12 s after the first. Every
        // order is placed well before it, whatever the write-backs wait for.
        const span = Math.max(...events.map((e) => e.updated_at)) - Math.min(...events.map((e) => e.created_at));
        assert.ok(span < 12_000, `the ${n} orders were placed within ${span} ms, before a 4th write-back could go out`);
        assert.ok(t.recharge.calls.filter((c) => c.method === "PUT").length < 4, "the write-backs were still waiting their turn");
        const orders = await t.admin("/admin/orders?source=recharge&limit=200");
        assert.equal(orders.body.orders.length, n);
      } finally {
        await t.stop();
      }
    });

    it("while a burst of orders is placed, write-backs keep to the sustained rate and leave Recharge's burst for later", { timeout: 60_000 }, async () => {
      // Before, the 40-call burst went out while the orders were being placed, taking database and
      // CPU time from them (placing 300 orders took 1.2-1.6x as long with write-back on).
      const perSecond = 2;
      const t = await startRechargeService(kind, {
        standIn: { bucket: { size: 40, leakPerSecond: perSecond } },
        env: { RECHARGE_RATE_LIMIT_BURST: "40", RECHARGE_RATE_LIMIT_PER_SECOND: String(perSecond), WORKER_CONCURRENCY: "1", JOB_MAX_ATTEMPTS: "30" },
      });
      try {
        const n = 60;
        const bodies = Array.from({ length: n }, () => freshOrder().body);
        for (let i = 0; i < n; i += 20) await Promise.all(bodies.slice(i, i + 20).map((b) => t.webhook("order/created", b)));
        const events = await waitFor(
          `${n} orders placed`,
          async () => {
            const done = await t.jobs({ kind: JOB_WEBHOOK, state: "done" });
            return done.length >= n && done;
          },
          45_000,
        );
        const firstPlaced = Math.min(...events.map((e) => e.updated_at));
        const lastPlaced = Math.max(...events.map((e) => e.updated_at));
        const during = t.recharge.calls.filter((c) => c.method === "PUT" && c.at <= lastPlaced).length;
        const allowed = Math.floor(((lastPlaced - firstPlaced) * perSecond) / 1000) + 2;
        assert.ok(during <= allowed, `${during} write-backs sent while ${n} orders were placed over ${lastPlaced - firstPlaced} ms (at most ${allowed} at ${perSecond}/s)`);
        // Once the orders are placed, the burst is there for the rest.
        await waitForWriteBacks(t, n, 45_000);
        assert.equal(landed(t).length, n, "each write-back landed once");
        assert.equal(t.recharge.bucketRejections, 0);
      } finally {
        await t.stop();
      }
    });
  });
}

describe("a write-back lane that waits holds no job", () => {
  let t: RechargeTestService;
  before(async () => {
    t = await startRechargeService("sqlite", {
      standIn: { bucket: { size: 2, leakPerSecond: 0.5 } },
      env: { RECHARGE_RATE_LIMIT_BURST: "2", RECHARGE_RATE_LIMIT_PER_SECOND: "0.5", RECHARGE_WRITEBACK_CONCURRENCY: "4" },
    });
  });
  after(() => t.stop());

  it("while the next slot is seconds away, the backlog stays pending (not running), its attempts unspent", async () => {
    for (let i = 0; i < 6; i++) await t.webhook("order/created", freshOrder().body);
    await waitFor("6 write-back jobs", async () => (await t.jobs({ kind: JOB_PUT_ORDER })).length >= 6);
    await waitFor("the first write-back", async () => t.recharge.calls.length >= 1);
    await new Promise((r) => setTimeout(r, 300));
    const jobs = await t.jobs({ kind: JOB_PUT_ORDER });
    assert.ok(jobs.filter((j) => j.state === "running").length <= 1, `at most the call in flight is running: ${jobs.map((j) => j.state).join(", ")}`);
    assert.ok(jobs.filter((j) => j.state === "pending").length >= 4);
    for (const j of jobs.filter((x) => x.state === "pending")) assert.equal(j.attempts, 0, "waiting spends no attempt");
  });
});
