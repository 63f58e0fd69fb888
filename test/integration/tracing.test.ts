import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { spSample } from "../../src/cli/samples.js";
import { describeConfig, loadConfig } from "../../src/config.js";
import { JOB_PUT_ORDER, JOB_WEBHOOK } from "../../src/recharge/handlers.js";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../../tools/stand-ins/otlp-receiver.js";
import { RC_SECRET, RC_TOKEN, rcFixture, startRechargeService, waitFor } from "../helpers/recharge.js";
import { SECRET, startService } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

/*
 * Optional OpenTelemetry tracing: on with OTEL_EXPORTER_OTLP_ENDPOINT, exported over OTLP/HTTP to a
 * real local receiver. One trace from receipt through verification, validation, placement and the
 * platform call; each inbox event and write-back attempt linked to what queued it; nothing secret
 * in any span.
 */

const SERVER = 2;
const CLIENT = 3;
const CONSUMER = 5;
const COLLECTOR_TOKEN = "collector-t0ken-for-tests";

function otelEnv(r: OtlpReceiver): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: r.url,
    OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer%20${COLLECTOR_TOKEN}`,
    OTEL_SERVICE_NAME: "orderbridge-under-test",
  };
}

function one(spans: ReceivedSpan[], name: string, where: (s: ReceivedSpan) => boolean = () => true): ReceivedSpan {
  const found = spans.filter((s) => s.name === name && where(s));
  assert.equal(found.length, 1, `one span "${name}" (got ${found.length}; all: ${spans.map((s) => s.name).join(", ")})`);
  return found[0] as ReceivedSpan;
}

/** Whether `span` is `ancestor` or below it (by parent ids). */
function isWithin(spans: ReceivedSpan[], span: ReceivedSpan, ancestor: ReceivedSpan): boolean {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (let s: ReceivedSpan | undefined = span; s !== undefined; s = s.parentSpanId === undefined ? undefined : byId.get(s.parentSpanId)) {
    if (s.spanId === ancestor.spanId) return true;
  }
  return false;
}

function assertNothingSecret(spans: ReceivedSpan[], secrets: string[]): void {
  const text = JSON.stringify(spans);
  for (const s of secrets) assert.ok(!text.includes(s), `no span holds ${s.slice(0, 4)}…`);
}

for (const { kind, skip } of await storeKinds()) {
  describe(`tracing [${kind}]`, { skip }, () => {
    let receiver: OtlpReceiver;
    before(async () => {
      receiver = await startOtlpReceiver();
    });
    after(() => receiver.close());

    it("a Subscribe Pro callback is one trace: the request (continuing the caller's traceparent), verification, validation, placement, the platform call", async () => {
      const t = await startService(kind, { env: otelEnv(receiver) });
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      const callerSpan = "00f067aa0ba902b7";
      const body = spSample("full-order");
      let requestId: string;
      try {
        const res = await t.callback(body, { headers: { traceparent: `00-${traceId}-${callerSpan}-01` } });
        assert.equal(res.status, 201, res.text);
        requestId = String(res.headers["x-request-id"]);
      } finally {
        await t.stop(); // exports what is buffered
      }
      const spans = receiver.spans.filter((s) => s.traceId === traceId);
      const server = one(spans, "POST /callbacks/subscribe-pro/order");
      assert.equal(server.kind, SERVER);
      assert.equal(server.parentSpanId, callerSpan, "the caller's span is the parent");
      assert.equal(server.attributes["http.response.status_code"], 201);
      assert.equal(server.attributes["http.route"], "/callbacks/subscribe-pro/order");
      assert.equal(server.attributes["orderbridge.request_id"], requestId, "the request id of the logs is on the span");
      assert.equal(server.resource["service.name"], "orderbridge-under-test");
      const verify = one(spans, "subscribe-pro.verify");
      assert.equal(verify.parentSpanId, server.spanId);
      const callback = one(spans, "subscribe-pro.callback");
      assert.equal(callback.parentSpanId, server.spanId);
      assert.equal(callback.attributes["http.response.status_code"], 201);
      assert.ok(isWithin(spans, one(spans, "subscribe-pro.validate"), callback), "validation is part of the callback");
      const platform = one(spans, "platform.create_order");
      assert.equal(platform.kind, CLIENT);
      assert.equal(platform.attributes["orderbridge.platform"], "local");
      assert.match(String(platform.attributes["orderbridge.order_number"]), /^OB-\d+$/);
      assert.ok(isWithin(spans, platform, callback), "the platform call is part of the callback");
      assert.equal(receiver.exports[0]?.headers["authorization"], `Bearer ${COLLECTOR_TOKEN}`, "OTEL_EXPORTER_OTLP_HEADERS are sent");
      assert.match(String(receiver.exports[0]?.contentType), /json/);
      const payment = body["payment"] as Record<string, string>;
      assertNothingSecret(receiver.spans, [SECRET, String(payment["paymentToken"]), String(body["salesOrderToken"]), COLLECTOR_TOKEN]);
    });

    it("a refused signature is an error span of the verification; the request span says 401", async () => {
      const t = await startService(kind, { env: otelEnv(receiver) });
      const traceId = "0af7651916cd43dd8448eb211c80319c";
      try {
        const res = await t.callback(spSample("minimal"), { secret: "not-the-secret", headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01` } });
        assert.equal(res.status, 401);
      } finally {
        await t.stop();
      }
      const spans = receiver.spans.filter((s) => s.traceId === traceId);
      const verify = one(spans, "subscribe-pro.verify");
      assert.equal(verify.statusCode, 2, "error status");
      assert.match(String(verify.events[0]?.attributes["exception.message"]), /Sp-Hmac signature does not match/);
      assert.equal(one(spans, "POST /callbacks/subscribe-pro/order").attributes["http.response.status_code"], 401);
      assert.equal(spans.filter((s) => s.name === "subscribe-pro.callback").length, 0, "nothing was placed");
    });

    it("a Recharge delivery: the request, its inbox event linked to it, the placement, and the write-back attempt linked to the event, with Recharge's status", async () => {
      const t = await startRechargeService(kind, { env: otelEnv(receiver) });
      const body = structuredClone(rcFixture("2021-11", "order-created"));
      const orderId = 820_000_001 + (kind === "postgres" ? 1 : 0);
      body["order"]["id"] = orderId;
      try {
        const res = await t.webhook("order/created", body);
        assert.equal(res.status, 200, res.text);
        await waitFor("the write-back", async () => (await t.jobs({ kind: JOB_PUT_ORDER, state: "done" })).length === 1);
      } finally {
        await t.stop();
      }
      const spans = receiver.spans;
      const server = one(spans, "POST /webhooks/recharge/*topic", (s) => spans.some((c) => c.parentSpanId === s.spanId && c.name === "recharge.receive"));
      const receive = one(spans, "recharge.receive", (s) => s.parentSpanId === server.spanId);
      assert.equal(receive.attributes["orderbridge.recharge.ack"], "accepted");
      const event = one(spans, `job ${JOB_WEBHOOK}`, (s) => s.links.some((l) => l.spanId === receive.spanId));
      assert.equal(event.kind, CONSUMER);
      assert.equal(event.links[0]?.traceId, server.traceId, "linked to the request's trace");
      assert.equal(event.attributes["orderbridge.job.state"], "done");
      assert.equal(event.attributes["orderbridge.request_id"], server.attributes["orderbridge.request_id"]);
      const placed = one(spans, "platform.create_order", (s) => s.parentSpanId === event.spanId);
      assert.equal(placed.traceId, event.traceId);
      // Queued by the event's run (while its order was recorded): linked to a span of that run.
      const byId = new Map(spans.map((s) => [s.spanId, s]));
      const writeBack = one(spans, `job ${JOB_PUT_ORDER}`, (s) =>
        s.links.some((l) => {
          const linked = byId.get(l.spanId);
          return linked !== undefined && isWithin(spans, linked, event);
        }),
      );
      assert.equal(writeBack.attributes["orderbridge.job.attempt"], 1);
      const put = one(spans, "recharge PUT", (s) => s.parentSpanId === writeBack.spanId);
      assert.equal(put.kind, CLIENT);
      assert.equal(put.attributes["http.response.status_code"], 200);
      assertNothingSecret(spans, [RC_TOKEN, RC_SECRET, COLLECTOR_TOKEN]);
    });
  });
}

describe("tracing off", () => {
  it("without an OTLP endpoint no span is made and the SDK is never imported statically", async () => {
    const receiver = await startOtlpReceiver();
    try {
      const t = await startService("sqlite");
      try {
        assert.equal((await t.callback(spSample("minimal"))).status, 201);
      } finally {
        await t.stop();
      }
      assert.equal(receiver.exports.length, 0);
    } finally {
      await receiver.close();
    }
    // The SDK, the exporter and the resources are loaded by import() in src/telemetry/tracing.ts
    // only; every other import of OpenTelemetry is of the API, which does nothing on its own.
    const src = fileURLToPath(new URL("../../src/", import.meta.url));
    const files = fs.readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
    for (const f of files) {
      const text = fs.readFileSync(path.join(src, f), "utf8");
      for (const m of text.matchAll(/^import[^;]*from\s+"(@opentelemetry\/[^"]+)"/gm)) {
        assert.equal(m[1], "@opentelemetry/api", `${f} imports ${m[1]} statically`);
      }
    }
  });

  it("the settings: headers are parsed as the OpenTelemetry specification writes them and never shown", () => {
    const base = { SP_HMAC_SECRETS: "s", NODE_ENV: "test" };
    const c = loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318/", OTEL_EXPORTER_OTLP_HEADERS: "api-key=abc%20def, x-tenant=42" });
    assert.deepEqual(c.tracing.headers, { "api-key": "abc def", "x-tenant": "42" });
    assert.equal(c.tracing.serviceName, "orderbridge");
    const shown = JSON.stringify(describeConfig(c));
    assert.ok(!shown.includes("abc"), shown);
    assert.throws(() => loadConfig({ ...base, OTEL_EXPORTER_OTLP_HEADERS: "no-equals-sign" }), /OTEL_EXPORTER_OTLP_HEADERS: each entry must be name=value/);
    assert.throws(() => loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" }), /OTEL_EXPORTER_OTLP_ENDPOINT/);
  });
});
