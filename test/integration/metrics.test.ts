import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import request from "supertest";
import { rcFixture, startRechargeService, type RechargeTestService } from "../helpers/recharge.js";
import { minimalOrder, startService } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

/** The value of one sample line of the Prometheus text, or 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return 0;
}

for (const { kind, skip } of await storeKinds()) {
  describe(`GET /metrics [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    before(async () => {
      t = await startRechargeService(kind);
    });
    after(() => t.stop());
    const scrape = async (): Promise<string> => {
      const res = await request(t.app).get("/metrics");
      assert.equal(res.status, 200);
      assert.match(String(res.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
      return res.text;
    };

    it("counts callback outcomes (201, 409 nothing ordered, 4xx refused), requests by route, and platform latency", async () => {
      assert.equal((await t.callback(minimalOrder("m-201"))).status, 201);
      assert.equal((await t.callback(minimalOrder("m-409", [{ productSku: "NOPE", qty: 1, subscription: { id: "s" } }]))).status, 409);
      assert.equal((await t.callback(minimalOrder("m-401"), { secret: "wrong" })).status, 401);
      const text = await scrape();
      assert.equal(sample(text, "orderbridge_callback_outcomes_total", { outcome: "201" }), 1);
      assert.equal(sample(text, "orderbridge_callback_outcomes_total", { outcome: "409" }), 1);
      assert.equal(sample(text, "orderbridge_callback_outcomes_total", { outcome: "4xx" }), 1);
      assert.equal(sample(text, "orderbridge_http_requests_total", { route: "/callbacks/subscribe-pro/order", status: "401" }), 1);
      assert.equal(sample(text, "orderbridge_platform_duration_seconds_count", { platform: "local", outcome: "placed" }), 1);
      assert.ok(sample(text, "process_cpu_user_seconds_total") > 0, "default process metrics");
    });

    it("counts webhooks by topic and result, jobs by state, attempts, dead letters and Recharge calls by status", async () => {
      const body = rcFixture("2021-11", "order-created");
      body["order"]["id"] = 880001;
      await t.webhook("order/created", body);
      await t.webhook("order/created", body); // duplicate
      await t.webhook("order/created", "");  // test webhook
      await t.webhook("order/created", body, { secret: "wrong" }); // refused
      t.recharge.queue({ status: 422 });
      const second = rcFixture("2021-11", "order-created");
      second["order"]["id"] = 880002;
      await t.webhook("order/created", second);
      await t.settle();
      const text = await scrape();
      assert.equal(sample(text, "orderbridge_webhooks_total", { topic: "order/created", result: "accepted" }), 2);
      assert.equal(sample(text, "orderbridge_webhooks_total", { topic: "order/created", result: "duplicate" }), 1);
      assert.equal(sample(text, "orderbridge_webhooks_total", { topic: "order/created", result: "ignored" }), 1);
      assert.equal(sample(text, "orderbridge_webhooks_total", { result: "refused" }), 1);
      assert.equal(sample(text, "orderbridge_queue_jobs", { kind: "recharge.webhook", state: "done" }), 2);
      assert.equal(sample(text, "orderbridge_queue_jobs", { kind: "recharge.order_writeback", state: "dead" }), 1, "the dead letter");
      assert.equal(sample(text, "orderbridge_job_attempts_total", { kind: "recharge.order_writeback", result: "dead" }), 1);
      assert.equal(sample(text, "orderbridge_job_attempts_total", { kind: "recharge.order_writeback", result: "done" }), 1);
      assert.equal(sample(text, "orderbridge_recharge_api_requests_total", { status: "200" }), 1);
      assert.equal(sample(text, "orderbridge_recharge_api_requests_total", { status: "422" }), 1);
      assert.equal(sample(text, "orderbridge_queue_oldest_due_age_seconds", { kind: "recharge.webhook" }), 0);
    });
  });
}

describe("correlation id", () => {
  it("every log line about one Recharge order carries the same correlationId, from receipt to write-back", async () => {
    const t = await startRechargeService("sqlite");
    try {
      const body = rcFixture("2021-11", "order-created");
      body["order"]["id"] = 880100;
      const res = await t.webhook("order/created", body, { headers: { "X-Request-Id": "corr-880100" } });
      assert.equal(res.headers["x-request-id"], "corr-880100");
      await t.settle();
      const lines = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
      const about = lines.filter((l) => l["correlationId"] === "corr-880100");
      const messages = about.map((l) => String(l["message"]));
      assert.ok(messages.includes("Recharge webhook accepted"), messages.join(" | "));
      assert.ok(messages.includes("request"), "the access log line");
      const finished = about.filter((l) => l["message"] === "job finished").map((l) => l["kind"]);
      assert.deepEqual(finished.sort(), ["recharge.order_writeback", "recharge.webhook"]);
    } finally {
      await t.stop();
    }
  });
});

describe("METRICS_TOKEN", () => {
  it("protects GET /metrics when set", async () => {
    const t = await startService("sqlite", { env: { METRICS_TOKEN: "metrics-token-0123456789" } });
    try {
      const open = await request(t.app).get("/metrics");
      assert.equal(open.status, 401);
      assert.match(open.body.errorMessage, /METRICS_TOKEN/);
      const ok = await request(t.app).get("/metrics").set("Authorization", "Bearer metrics-token-0123456789");
      assert.equal(ok.status, 200);
      assert.match(ok.text, /orderbridge_http_requests_total/);
    } finally {
      await t.stop();
    }
  });
});
