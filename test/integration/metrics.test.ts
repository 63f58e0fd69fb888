import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CompiledQuery, type Kysely } from "kysely";
import request from "supertest";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { HANDLED_TOPICS } from "../../src/recharge/order.js";
import { QUEUE_STATES } from "../../src/metrics.js";
import { queueQuery } from "../../src/store/counts.js";
import { JOB_KINDS } from "../../src/recharge/handlers.js";
import { signSpHmac } from "../../src/security/sp-hmac.js";
import { openStore } from "../../src/store/db.js";
import type { Database } from "../../src/store/schema.js";
import { killAll, spawnServer, type RunningServer } from "../helpers/process.js";
import { rcFixture, startRechargeService, type RechargeTestService } from "../helpers/recharge.js";
import { ADMIN_TOKEN, CALLBACK, SECRET, minimalOrder, startService } from "../helpers/service.js";
import { freshDatabase, storeKinds } from "../helpers/stores.js";

const silent = createLogger({ level: "error", format: "json", silent: true });

/** The value of one sample line of the Prometheus text, or 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  return series(text, name, labels) ?? 0;
}

/** The value of one sample line of the Prometheus text, or undefined when there is no such line. */
function series(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return undefined;
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

    it("labels every admin answer, errors too, with its full route pattern (the /admin prefix kept)", async () => {
      const admin = (method: "get" | "post", url: string, token = ADMIN_TOKEN) =>
        (method === "get" ? request(t.app).get(url) : request(t.app).post(url)).set("Authorization", `Bearer ${token}`).then((r) => r);
      assert.equal((await admin("get", "/admin/events")).status, 200);
      assert.equal((await admin("get", "/admin/events/evt_missing")).status, 404);
      assert.equal((await admin("post", "/admin/events/evt_missing/replay")).status, 404);
      assert.equal((await admin("get", "/admin/events?state=nope")).status, 400);
      assert.equal((await admin("get", "/admin/orders", "wrong-token-wrong-token")).status, 401);
      const text = await scrape();
      assert.equal(sample(text, "orderbridge_http_requests_total", { route: "/admin/events", status: "200" }), 1);
      assert.equal(sample(text, "orderbridge_http_requests_total", { route: "/admin/events/:id", status: "404" }), 1);
      assert.equal(sample(text, "orderbridge_http_requests_total", { route: "/admin/events/:id/replay", status: "404" }), 1);
      assert.equal(sample(text, "orderbridge_http_requests_total", { route: "/admin/events", status: "400" }), 1);
      assert.equal(sample(text, "orderbridge_http_requests_total", { route: "/admin/orders", status: "401" }), 1);
      const routes = new Set([...text.matchAll(/^orderbridge_http_requests_total\{[^}]*route="([^"]*)"/gm)].map((m) => m[1]));
      for (const r of ["/events", "/events/:id", "/events/:id/replay", "/orders"]) assert.ok(!routes.has(r), `route="${r}" without its prefix`);
    });

    it("says which build runs: orderbridge_build_info with version, node_version and commit, value 1", async () => {
      const text = await scrape();
      assert.equal(sample(text, "orderbridge_build_info", { version: "0.1.0", node_version: process.version, commit: "" }), 1);
    });

    it("tells the platform's replays and the sender's mistakes from new orders and platform errors", async () => {
      const before = await scrape();
      const count = (text: string, outcome: string): number => sample(text, "orderbridge_platform_duration_seconds_count", { platform: "local", outcome });
      const order = minimalOrder("m-replay");
      assert.equal((await t.callback(order)).status, 201);
      assert.equal((await t.callback(order)).status, 201, "the retry is answered with the stored order");
      const reused = await t.callback({ ...order, customerEmail: "someone-else@example.com" });
      assert.equal(reused.status, 409);
      assert.equal(reused.body.errorCode, "idempotency_key_reused");
      const after = await scrape();
      assert.equal(count(after, "placed") - count(before, "placed"), 1, "one new order");
      assert.equal(count(after, "replayed") - count(before, "replayed"), 1, "the retry found the order placed before");
      assert.equal(count(after, "refused") - count(before, "refused"), 1, "the reused key is the sender's mistake");
      assert.equal(count(after, "error") - count(before, "error"), 0, "and not a platform error");
    });

    it("counts webhooks by topic and result, jobs by state, attempts, dead letters and Recharge calls by status", async () => {
      const body = rcFixture("2021-11", "order-created");
      body["order"]["id"] = 880001;
      await t.webhook("order/created", body);
      await t.webhook("order/created", body); // duplicate
      await t.webhook("order/created", ""); // test webhook
      await t.webhook("order/created", body, { secret: "wrong" }); // refused
      t.recharge.queue({ status: 422 });
      const second = rcFixture("2021-11", "order-created");
      second["order"]["id"] = 880002;
      await t.webhook("order/created", second);
      await t.settle();
      const text = await scrape();
      assert.equal(sample(text, "orderbridge_recharge_webhooks_total", { topic: "order/created", result: "accepted" }), 2);
      assert.equal(sample(text, "orderbridge_recharge_webhooks_total", { topic: "order/created", result: "duplicate" }), 1);
      assert.equal(sample(text, "orderbridge_recharge_webhooks_total", { topic: "order/created", result: "ignored" }), 1);
      assert.equal(sample(text, "orderbridge_recharge_webhooks_total", { topic: "order/created", result: "refused" }), 1, "refused, under the URL's topic");
      // The old name, deprecated for one release, counts alike.
      for (const result of ["accepted", "duplicate", "ignored", "refused"]) {
        assert.equal(
          sample(text, "orderbridge_webhooks_total", { topic: "order/created", result }),
          sample(text, "orderbridge_recharge_webhooks_total", { topic: "order/created", result }),
          result,
        );
      }
      assert.equal(series(text, "orderbridge_queue_jobs", { kind: "recharge.webhook", state: "done" }), undefined, "finished jobs are not read");
      assert.equal(series(text, "orderbridge_queue_jobs", { kind: "recharge.webhook", state: "pending" }), 0);
      assert.equal(sample(text, "orderbridge_queue_jobs", { kind: "recharge.order_writeback", state: "dead" }), 1, "the dead letter");
      assert.equal(sample(text, "orderbridge_job_attempts_total", { kind: "recharge.order_writeback", result: "dead" }), 1);
      assert.equal(sample(text, "orderbridge_job_attempts_total", { kind: "recharge.order_writeback", result: "done" }), 1);
      assert.equal(sample(text, "orderbridge_recharge_api_requests_total", { status: "200" }), 1);
      assert.equal(sample(text, "orderbridge_recharge_api_requests_total", { status: "422" }), 1);
      assert.equal(sample(text, "orderbridge_queue_oldest_due_age_seconds", { kind: "recharge.webhook" }), 0);
    });
  });

  describe(`GET /metrics queue figures [${kind}]`, { skip }, () => {
    it("every kind and unfinished state has a figure from the start, and a figure that falls to 0 stays", async () => {
      const t = await startService(kind);
      try {
        const scrape = async (): Promise<string> => (await request(t.app).get("/metrics")).text;
        const empty = await scrape();
        for (const k of JOB_KINDS) {
          for (const state of QUEUE_STATES) assert.equal(series(empty, "orderbridge_queue_jobs", { kind: k, state }), 0, `${k} ${state}`);
          assert.equal(series(empty, "orderbridge_queue_oldest_due_age_seconds", { kind: k }), 0, k);
        }
        const now = Date.now();
        await addDeadJob(t.store.db, "job_gauge", "recharge.charge_writeback", now);
        assert.equal(series(await scrape(), "orderbridge_queue_jobs", { kind: "recharge.charge_writeback", state: "dead" }), 1);
        await t.store.db.updateTable("jobs").set({ state: "done" }).where("id", "=", "job_gauge").execute();
        const after = await scrape();
        assert.equal(series(after, "orderbridge_queue_jobs", { kind: "recharge.charge_writeback", state: "dead" }), 0, "0, not a vanished series");
        assert.equal(series(after, "orderbridge_queue_jobs", { kind: "recharge.charge_writeback", state: "done" }), undefined);
      } finally {
        await t.stop();
      }
    });

    it("the queue query reads only unfinished rows, through an index on state (no scan of the finished ones)", async () => {
      const t = await startService(kind);
      try {
        const compiled = queueQuery(t.store.db, Date.now()).compile();
        if (t.store.kind === "sqlite") {
          const plan = (await t.store.db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]))).rows;
          const details = plan.map((r) => r.detail).join(" | ");
          assert.match(details, /SEARCH jobs USING (COVERING )?INDEX \w+ \(state=\?/, details);
          assert.doesNotMatch(details, /SCAN jobs/, details);
        } else {
          // PostgreSQL plans a small table with a sequential scan whatever its indexes; with those
          // discouraged, the plan shows whether an index can serve the query by its state condition.
          const plan = await t.store.db.transaction().execute(async (tx) => {
            await tx.executeQuery(CompiledQuery.raw("set local enable_seqscan = off"));
            const r = await tx.executeQuery<{ "QUERY PLAN": unknown }>(CompiledQuery.raw(`explain (format json) ${compiled.sql}`, [...compiled.parameters]));
            return JSON.stringify(r.rows[0]?.["QUERY PLAN"]);
          });
          assert.doesNotMatch(plan, /Seq Scan/, plan);
          assert.match(plan, /"Index Cond":"\(state = ANY/, plan);
        }
      } finally {
        await t.stop();
      }
    });
  });
}

/** orderbridge's own series (name and labels, without the value); the process metrics vary by themselves. */
function ownSeries(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("orderbridge_"))
    .map((l) => l.slice(0, l.lastIndexOf(" ")))
    .sort();
}
const ownBytes = (text: string): number =>
  Buffer.byteLength(
    text
      .split("\n")
      .filter((l) => l.startsWith("orderbridge_"))
      .join("\n"),
  );

describe("metric labels come from closed sets, whatever is sent (issue #13, item 4)", () => {
  it("unsigned noise to any webhook URL, X-Recharge-Topic, method or mount-path spelling adds no series; every topic label is a handled topic, (other) or (none)", async () => {
    const t = await startRechargeService("sqlite");
    const server = t.app.listen(0, "127.0.0.1");
    try {
      await new Promise<void>((resolve) => server.once("listening", resolve));
      const port = (server.address() as { port: number }).port;
      const scrape = async (): Promise<string> => {
        const res = await get(port, "/metrics");
        assert.equal(res.status, 200);
        return res.text;
      };
      const odd = ['"', "\\", "{}", "=,", "%25", "a b", "\u00e9", '}"topic"="x'];
      const oddMethods = http.METHODS.filter((m) => !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT"].includes(m));
      const rand = (i: number): string => `${i}-${Math.random().toString(36).slice(2)}`;
      // One request of each shape: an unsigned empty body at a made-up topic URL (with a
      // percent-encoded NUL and quote), one at the bare URL with a made-up X-Recharge-Topic, another
      // method, and the admin API's mount path in capitals.
      const noise = async (i: number): Promise<void> => {
        const topicPath = `/webhooks/recharge/${encodeURIComponent(`${rand(i)}${odd[i % odd.length]!}`)}%22x/y`;
        assert.equal((await post(port, topicPath, "", { "content-type": "application/json" })).status, 200);
        // A NUL in the path is refused (400) before the topic is read; it is counted all the same.
        assert.equal((await post(port, `/webhooks/recharge/${rand(i)}%00`, "", { "content-type": "application/json" })).status, 400);
        const header = `${rand(i)}${odd[i % odd.length]!}`.replace(/[^\x20-\x7e]/g, "?");
        const byHeader = await post(port, "/webhooks/recharge", "", { "content-type": "application/json", "x-recharge-topic": header });
        assert.equal(byHeader.status, 200);
        assert.equal((await roundTrip(port, oddMethods[i % oddMethods.length]!, `/${rand(i)}`, undefined, {})).status, 404);
        const admin = `/${[..."admin"].map((ch, k) => ((i >> k) & 1 ? ch.toUpperCase() : ch)).join("")}/events`;
        assert.equal((await roundTrip(port, "GET", admin, undefined, { authorization: `Bearer ${ADMIN_TOKEN}` })).status, 200);
      };
      await noise(0);
      await scrape(); // the scrape's own series exist from the next scrape on
      const before = await scrape();
      for (let i = 1; i <= 300; i++) await noise(i);
      const after = await scrape();
      assert.deepEqual(ownSeries(after), ownSeries(before), "no new series");
      // Only the values grow (a few digits each); 300 new series would be some 20 kB.
      assert.ok(ownBytes(after) - ownBytes(before) < 2048, `orderbridge's metrics grew from ${ownBytes(before)} to ${ownBytes(after)} bytes`);
      assert.equal(sample(after, "orderbridge_recharge_webhooks_total", { topic: "(other)", result: "ignored" }), 602, "every one counted");

      // Authenticated or not, a topic orderbridge does not handle is (other); a refused one too.
      const signed = await t.webhook("subscription/created", { subscription: { id: 1 } });
      assert.equal(signed.status, 200);
      assert.equal(signed.body.status, "ignored");
      assert.equal((await t.webhook(`x"${rand(0)}`, { order: {} }, { secret: "wrong" })).status, 401);
      assert.equal((await t.webhook("order/created", { order: {} }, { sign: "none" })).status, 401);
      const last = await scrape();
      assert.equal(sample(last, "orderbridge_recharge_webhooks_total", { topic: "(other)", result: "ignored" }), 603);
      assert.equal(sample(last, "orderbridge_recharge_webhooks_total", { topic: "(other)", result: "refused" }), 1);
      assert.equal(sample(last, "orderbridge_recharge_webhooks_total", { topic: "order/created", result: "refused" }), 1);
      const closed = new Set<string>([...HANDLED_TOPICS, "(other)", "(none)"]);
      const topics = [...last.matchAll(/^orderbridge_webhooks_total\{([^\n]*)\} /gm)].map((m) => /topic="((?:[^"\\]|\\.)*)"/.exec(m[1]!)?.[1]);
      assert.ok(topics.length > 0);
      for (const topic of topics) assert.ok(topic !== undefined && closed.has(topic), `topic label ${String(topic)}`);
      const methods = new Set([...last.matchAll(/^orderbridge_http_requests_total\{[^\n]*method="([^"]*)"/gm)].map((m) => m[1]));
      assert.deepEqual([...methods].sort(), ["(other)", "GET", "POST"]);
      const routes = new Set([...last.matchAll(/^orderbridge_http_requests_total\{[^\n]*route="([^"]*)"/gm)].map((m) => m[1]));
      assert.deepEqual([...routes].sort(), ["(unmatched)", "/admin/events", "/metrics", "/webhooks/recharge", "/webhooks/recharge/*topic"]);

      // Unauthenticated noise is not logged at info: only the access log's line per request.
      const lines = t.logs.map((l) => JSON.parse(l) as { level: string; message: string; path?: string });
      const receiverLines = lines.filter((l) => l.message.startsWith("Recharge webhook ignored: unsigned") || l.message.startsWith("Recharge webhook refused"));
      assert.ok(receiverLines.length >= 600);
      assert.deepEqual([...new Set(receiverLines.map((l) => l.level))], ["debug"]);
    } finally {
      server.close();
      await t.stop();
    }
  });
});

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
      assert.match(open.body.errorMessage, /needs the header Authorization: Bearer <METRICS_TOKEN>/);
      const wrong = await request(t.app).get("/metrics").set("Authorization", "Bearer not-the-metrics-token");
      assert.equal(wrong.status, 401);
      assert.match(wrong.body.errorMessage, /The metrics token is wrong/);
      const ok = await request(t.app).get("/metrics").set("Authorization", "Bearer metrics-token-0123456789");
      assert.equal(ok.status, 200);
      assert.match(ok.text, /orderbridge_http_requests_total/);
    } finally {
      await t.stop();
    }
  });
});

describe("GET /metrics with WORKERS=2", () => {
  it("answers for every worker: requests counted wherever they landed, queue figures once", async () => {
    const db = freshDatabase("sqlite");
    let server: RunningServer | undefined;
    try {
      server = await spawnServer({ ...db.env, WORKERS: "2", SP_HMAC_SECRETS: SECRET });
      const s = server;
      for (let i = 0; i < 100 && (s.output().match(/orderbridge listening on /g) ?? []).length < 2; i++) await sleep(100);
      // A dead letter in the shared database: every worker reads it, the scrape must show it once.
      const store = await openStore(loadConfig(db.env).database, silent);
      const now = Date.now();
      await addDeadJob(store.db, "dead-1", "recharge.order_writeback", now);
      await store.close();

      // One connection per request: the primary hands connections to the workers in turn.
      for (let i = 0; i < 12; i++) {
        const body = JSON.stringify(minimalOrder(`cluster-${i}`));
        const res = await post(s.port, CALLBACK, body, { "content-type": "application/json", "sp-hmac": signSpHmac(SECRET, body) });
        assert.equal(res.status, 201);
      }
      const servedBy = new Set(
        s
          .output()
          .split("\n")
          .filter((l) => l.includes('"message":"request"') && l.includes(CALLBACK))
          .map((l) => (JSON.parse(l) as { pid: number }).pid),
      );
      assert.equal(servedBy.size, 2, "both workers answered callbacks");
      for (let scrape = 0; scrape < 2; scrape++) {
        const res = await get(s.port, "/metrics");
        assert.equal(res.status, 200);
        assert.equal(sample(res.text, "orderbridge_callback_outcomes_total", { outcome: "201" }), 12);
        assert.equal(sample(res.text, "orderbridge_queue_jobs", { kind: "recharge.order_writeback", state: "dead" }), 1);
      }
    } finally {
      if (server !== undefined) await killAll([server]);
      await db.cleanup();
    }
  });
});

function get(port: number, path: string): Promise<{ status: number; text: string }> {
  return roundTrip(port, "GET", path, undefined, {});
}
function post(port: number, path: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return roundTrip(port, "POST", path, body, headers);
}
function roundTrip(port: number, method: string, path: string, body: string | undefined, headers: Record<string, string>) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A dead write-back job, written straight into the queue. */
async function addDeadJob(db: Kysely<Database>, id: string, kind: string, now: number): Promise<void> {
  await db
    .insertInto("jobs")
    .values({
      id,
      kind,
      lane: "writeback",
      dedupe_key: null,
      resource_id: null,
      payload: "{}",
      state: "dead",
      attempts: 1,
      max_attempts: 1,
      run_at: now,
      locked_by: null,
      lease_until: null,
      last_error: "test",
      outcome: null,
      correlation_id: null,
      created_at: now,
      updated_at: now,
    })
    .execute();
}
