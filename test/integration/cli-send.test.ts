import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import { close, listen } from "../../tools/stand-ins/loopback.js";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { RECHARGE_SAMPLE_NAMES, rechargeSample, rechargeSampleFile, SAMPLES_DIR, SP_SAMPLE_NAMES, spSample, spSampleFile, type RechargeSampleName } from "../../src/cli/samples.js";
import { BUILTIN_FIXTURES, runSend, type SendOptions } from "../../src/cli/send.js";
import { signRechargeLegacy } from "../../src/security/recharge-signature.js";
import { signSpHmac } from "../../src/security/sp-hmac.js";
import { createSchemaRegistry } from "../../src/validation/schemas.js";
import { RC_SECRET, rcFixture, startRechargeService, type Json, type RechargeTestService, type Version } from "../helpers/recharge.js";
import { SECRET } from "../helpers/service.js";

/** Collects what runSend prints. */
function sink(): { out: Writable; text(): string; lines(): Json[] } {
  const chunks: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString("utf8"));
      cb();
    },
  });
  const text = (): string => chunks.join("");
  return {
    out,
    text,
    lines: () =>
      text()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Json),
  };
}

type Opts = Partial<SendOptions> & Pick<SendOptions, "source" | "what" | "to">;
async function send(o: Opts): Promise<{ sent: number; statuses: number[]; text: string; lines: () => Json[] }> {
  const s = sink();
  const r = await runSend({ tamper: false, duplicate: 1, concurrency: 1, outOfOrder: false, json: true, out: s.out, ...o });
  return { ...r, text: s.text(), lines: s.lines };
}

/** A server that records every request's method, URL, headers and exact bytes, and answers 200 {}. */
async function capture(): Promise<{ url: string; seen: { url: string; headers: http.IncomingHttpHeaders; body: Buffer }[]; close(): Promise<void> }> {
  const seen: { url: string; headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
  });
  const url = await listen(server);
  return { url, seen, close: () => close(server) };
}

/** Runs fn with the given environment variables removed, restoring them afterwards. */
async function withoutEnv<T>(names: string[], fn: () => Promise<T>): Promise<T> {
  const saved = names.map((n) => [n, process.env[n]] as const);
  for (const n of names) delete process.env[n];
  try {
    return await fn();
  } finally {
    for (const [n, v] of saved) if (v !== undefined) process.env[n] = v;
  }
}

describe("orderbridge send: built-in samples", () => {
  it("lists every sample name", () => {
    assert.deepEqual(BUILTIN_FIXTURES["subscribe-pro"], ["full-order", "partial", "unknown-sku", "minimal"]);
    assert.deepEqual(BUILTIN_FIXTURES.recharge, ["order-created", "order-processed", "order-updated", "prepaid", "queued", "checkout-processed"]);
  });

  it("each sample is a JSON file under samples/ that validates against its schema, sent under its topic", () => {
    const registry = createSchemaRegistry();
    const spRequest = registry.validator<unknown>("subscribe-pro/order-callback-request");
    for (const name of SP_SAMPLE_NAMES) {
      assert.ok(spSampleFile(name).startsWith(SAMPLES_DIR), name);
      const body = spSample(name);
      assert.deepEqual(spRequest(body), body, name);
    }
    const orderWebhook = registry.validator<unknown>("recharge/order-webhook");
    const checkoutWebhook = registry.validator<unknown>("recharge/checkout-webhook");
    const topics: Record<RechargeSampleName, string> = {
      "order-created": "order/created",
      "order-processed": "order/processed",
      "order-updated": "order/updated",
      prepaid: "order/created",
      queued: "order/created",
      "checkout-processed": "checkout/processed",
    };
    for (const version of ["2021-11", "2021-01"] as Version[]) {
      for (const name of RECHARGE_SAMPLE_NAMES) {
        assert.ok(rechargeSampleFile(name, version).startsWith(path.join(SAMPLES_DIR, "recharge", version)), name);
        const { topic, body } = rechargeSample(name, version);
        assert.equal(topic, topics[name], `${version} ${name}`);
        const validate = topic === "checkout/processed" ? checkoutWebhook : orderWebhook;
        assert.deepEqual(validate(body), body, `${version} ${name}`);
      }
    }
    // Each read is a fresh copy: send changes ids in it.
    spSample("minimal")["salesOrderToken"] = "changed";
    assert.equal(spSample("minimal")["salesOrderToken"], "test-0001");
  });

  it("order-updated is Recharge's order/updated payload before the write-back (its echo would read as placed elsewhere)", () => {
    for (const version of ["2021-11", "2021-01"] as Version[]) {
      const expected = rcFixture(version, "order-updated");
      const o = expected["order"] as Json;
      if (version === "2021-11") {
        o["external_order_id"] = { ecommerce: null };
        o["external_order_number"] = { ecommerce: null };
      } else {
        o["shopify_order_id"] = null;
        o["shopify_order_number"] = null;
        delete o["external_order_id"];
        delete o["external_order_number"];
      }
      assert.deepEqual(rechargeSample("order-updated", version).body, expected, version);
    }
  });
});

describe("orderbridge send: what goes on the wire", () => {
  let c: Awaited<ReturnType<typeof capture>>;
  before(async () => {
    c = await capture();
  });
  after(() => c.close());

  it("sends a JSON file byte for byte, signed with Sp-Hmac", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-send-"));
    try {
      const file = path.join(dir, "order.json");
      const bytes = Buffer.from(`${JSON.stringify({ ...spSample("minimal"), salesOrderToken: "file-token" }, null, 4).replace(/\n/g, "\r\n")}\n`);
      fs.writeFileSync(file, bytes);
      c.seen.length = 0;
      await send({ source: "subscribe-pro", what: file, to: `${c.url}/callbacks/subscribe-pro/order`, secret: "s3cret" });
      assert.equal(c.seen.length, 1);
      const [req] = c.seen;
      assert.ok(req !== undefined);
      assert.equal(req.url, "/callbacks/subscribe-pro/order");
      assert.ok(req.body.equals(bytes), "the file's bytes, unchanged");
      assert.equal(req.headers["sp-hmac"], signSpHmac("s3cret", bytes));
      assert.equal(req.headers["content-type"], "application/json");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gives each invocation a fresh salesOrderToken, and --duplicate copies identical bytes", async () => {
    c.seen.length = 0;
    await send({ source: "subscribe-pro", what: "minimal", to: `${c.url}/cb`, secret: "s", duplicate: 3 });
    await send({ source: "subscribe-pro", what: "minimal", to: `${c.url}/cb`, secret: "s" });
    assert.equal(c.seen.length, 4);
    const bodies = c.seen.map((r) => r.body.toString("utf8"));
    assert.equal(new Set(bodies.slice(0, 3)).size, 1);
    const tokens = bodies.map((b) => (JSON.parse(b) as Json)["salesOrderToken"] as string);
    assert.notEqual(tokens[0], tokens[3]);
    assert.notEqual(tokens[0], "test-0001");
  });

  it("--tamper changes one byte after signing", async () => {
    c.seen.length = 0;
    const out = await send({ source: "subscribe-pro", what: "full-order", to: `${c.url}/cb`, secret: "s", tamper: true, json: false });
    const [req] = c.seen;
    assert.ok(req !== undefined);
    assert.doesNotThrow(() => JSON.parse(req.body.toString("utf8")), "still valid JSON: the signature is what fails");
    assert.notEqual(req.headers["sp-hmac"], signSpHmac("s", req.body));
    // The signature is of the body before the change: exactly one byte, put back, makes it match.
    const restorable = [...req.body.keys()].filter((i) =>
      [0x39, (req.body[i] as number) - 1, (req.body[i] as number) ^ 0x20].some((b) => {
        const copy = Buffer.from(req.body);
        copy[i] = b & 0xff;
        return signSpHmac("s", copy) === req.headers["sp-hmac"];
      }),
    );
    assert.equal(restorable.length, 1);
    assert.match(out.text, /tampered: signed, then byte \d+ changed/);
  });

  it("recharge: appends the topic to a URL ending with /webhooks/recharge, else sends X-Recharge-Topic", async () => {
    c.seen.length = 0;
    await send({ source: "recharge", what: "order-created", to: `${c.url}/webhooks/recharge`, secret: "rc" });
    await send({ source: "recharge", what: "checkout-processed", to: `${c.url}/hooks/in`, secret: "rc", version: "2021-01" });
    await send({ source: "recharge", what: "queued", to: `${c.url}/webhooks/recharge/`, secret: "rc", topic: "order/processed" });
    const [a, b, q] = c.seen;
    assert.ok(a !== undefined && b !== undefined && q !== undefined);
    assert.equal(a.url, "/webhooks/recharge/order/created");
    assert.equal(a.headers["x-recharge-topic"], undefined);
    assert.equal(a.headers["x-recharge-version"], "2021-11");
    assert.equal(a.headers["x-recharge-hmac-sha256"], signRechargeLegacy("rc", a.body));
    const id = ((JSON.parse(a.body.toString("utf8")) as Json)["order"] as Json)["id"] as number;
    assert.ok(id >= 900_000_000 && id <= 999_999_999, `a fresh 9xxxxxxxx id (${id})`);
    assert.equal(b.url, "/hooks/in");
    assert.equal(b.headers["x-recharge-topic"], "checkout/processed");
    assert.equal(b.headers["x-recharge-version"], "2021-01");
    assert.ok("shipping_rate" in ((JSON.parse(b.body.toString("utf8")) as Json)["checkout"] as Json), "the 2021-01 body");
    assert.equal(q.url, "/webhooks/recharge/order/processed");
  });

  it("prints the human format and never the secret", async () => {
    const out = await send({ source: "subscribe-pro", what: "minimal", to: `${c.url}/cb`, secret: "very-secret-value", duplicate: 2, json: false });
    assert.match(out.text, new RegExp(`^→ POST ${c.url}/cb  200 \\d+ ms$`, "m"));
    assert.match(out.text, /^sent 2, statuses: 200 ×2$/m);
    assert.doesNotMatch(out.text, /very-secret-value/);
  });
});

describe("orderbridge send: errors", () => {
  it("an unknown sample or unreadable file lists the built-in names", async () => {
    await assert.rejects(send({ source: "subscribe-pro", what: "no-such-sample", to: "http://127.0.0.1:9/", secret: "s" }), (e: Error) => {
      assert.match(e.message, /no-such-sample/);
      assert.match(e.message, /full-order, partial, unknown-sku, minimal/);
      return true;
    });
    await assert.rejects(send({ source: "recharge", what: "/nonexistent/order.json", to: "http://127.0.0.1:9/", secret: "s" }), (e: Error) => {
      assert.match(e.message, /ENOENT/);
      assert.match(e.message, /order-created, order-processed, order-updated, prepaid, queued, checkout-processed/);
      return true;
    });
  });

  it("no secret: tells which flag and variable to set", async () => {
    await withoutEnv(["SP_HMAC_SECRETS", "RECHARGE_CLIENT_SECRETS"], async () => {
      await assert.rejects(send({ source: "subscribe-pro", what: "minimal", to: "http://127.0.0.1:9/" }), /--secret.*SP_HMAC_SECRETS/);
      await assert.rejects(send({ source: "recharge", what: "order-created", to: "http://127.0.0.1:9/" }), /--secret.*RECHARGE_CLIENT_SECRETS/);
    });
  });

  it("takes the first secret of SP_HMAC_SECRETS when --secret is not given", async () => {
    const c = await capture();
    try {
      await withoutEnv(["SP_HMAC_SECRETS"], async () => {
        process.env["SP_HMAC_SECRETS"] = " first , second";
        try {
          await send({ source: "subscribe-pro", what: "minimal", to: c.url });
        } finally {
          delete process.env["SP_HMAC_SECRETS"];
        }
      });
      const [req] = c.seen;
      assert.ok(req !== undefined);
      assert.equal(req.url, "/callbacks/subscribe-pro/order", "a bare base URL gets the callback path");
      assert.equal(req.headers["sp-hmac"], signSpHmac("first", req.body));
    } finally {
      await c.close();
    }
  });

  it("a network error is printed and counted as status 0", async () => {
    const server = http.createServer();
    const url = await listen(server);
    await close(server);
    const out = await send({ source: "subscribe-pro", what: "minimal", to: `${url}/callbacks/subscribe-pro/order`, secret: "s", json: false });
    assert.deepEqual(out.statuses, [0]);
    assert.match(out.text, /network error: .*ECONNREFUSED/);
    assert.match(out.text, /sent 1, statuses: 0 ×1/);
  });
});

describe("orderbridge send against a running orderbridge", () => {
  let t: RechargeTestService;
  let server: http.Server;
  let base: string;
  before(async () => {
    t = await startRechargeService("sqlite");
    server = http.createServer(t.app);
    base = await listen(server);
  });
  after(async () => {
    await close(server);
    await t.stop();
  });

  const sp = (what: string, o: Partial<SendOptions> = {}) => send({ source: "subscribe-pro", what, to: `${base}/callbacks/subscribe-pro/order`, secret: SECRET, ...o });
  const rc = (what: string, o: Partial<SendOptions> = {}) => send({ source: "recharge", what, to: `${base}/webhooks/recharge`, secret: RC_SECRET, ...o });
  const ordersFor = async (q: string): Promise<Json[]> => {
    const res = await t.admin(`/admin/orders?${q}`);
    assert.equal(res.status, 200);
    return res.body.orders as Json[];
  };

  it("subscribe-pro samples: full-order 201, partial 202, unknown-sku 409, minimal 201", async () => {
    const expected = { "full-order": 201, partial: 202, "unknown-sku": 409, minimal: 201 } as const;
    for (const [what, status] of Object.entries(expected)) {
      const r = await sp(what);
      assert.deepEqual(r.statuses, [status], `${what}: ${r.text}`);
    }
    const [line] = (await sp("full-order")).lines();
    assert.match(String((line?.["body"] as Json)["orderNumber"]), /^ABC-\d+$/);
  });

  it("repeated invocations create new orders", async () => {
    const before = await t.count("local_orders");
    await sp("minimal");
    await sp("minimal");
    assert.equal(await t.count("local_orders"), before + 2);
  });

  it("--tamper is refused with 401 and creates nothing", async () => {
    const before = await t.count("local_orders");
    const r = await sp("full-order", { tamper: true });
    assert.deepEqual(r.statuses, [401]);
    assert.equal((r.lines()[0]?.["body"] as Json)["errorCode"] !== undefined, true);
    assert.equal(await t.count("local_orders"), before);
  });

  it("--duplicate 5 --concurrency 5: five identical 201s and one order", async () => {
    const before = await t.count("local_orders");
    const r = await sp("full-order", { duplicate: 5, concurrency: 5 });
    assert.deepEqual(r.statuses, [201, 201, 201, 201, 201]);
    const bodies = r.lines().map((l) => JSON.stringify(l["body"]));
    assert.equal(new Set(bodies).size, 1, "identical answers");
    assert.equal(await t.count("local_orders"), before + 1);
    const orderNumber = (r.lines()[0]?.["body"] as Json)["orderNumber"] as string;
    const order = await t.admin(`/admin/orders/${orderNumber}`);
    assert.equal(order.status, 200);
    assert.equal((await ordersFor(`salesOrderToken=${encodeURIComponent(order.body.salesOrderToken as string)}`)).length, 1);
  });

  it("a JSON file is sent byte for byte and placed", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-send-"));
    try {
      const file = path.join(dir, "order.json");
      const token = `file-${Date.now()}`;
      fs.writeFileSync(file, `${JSON.stringify({ ...spSample("minimal"), salesOrderToken: token }, null, 2)}\n`);
      const r = await sp(file, { duplicate: 2 });
      assert.deepEqual(r.statuses, [201, 201]);
      assert.equal((await ordersFor(`salesOrderToken=${token}`)).length, 1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  for (const version of ["2021-11", "2021-01"] as const) {
    it(`recharge order-created (${version}): 200 accepted, then one order for that Recharge id`, async () => {
      const r = await rc("order-created", { version });
      assert.deepEqual(r.statuses, [200]);
      const body = r.lines()[0]?.["body"] as Json;
      assert.equal(body["status"], "accepted");
      const event = await t.admin(`/admin/events/${body["eventId"] as string}`);
      assert.equal(event.body.apiVersion, version);
      const id = event.body.resourceId as string;
      assert.match(id, /^9\d{8}$/);
      await t.settle();
      const orders = await ordersFor(`source=recharge&sourceOrderId=${id}`);
      assert.equal(orders.length, 1);
    });
  }

  it("recharge --out-of-order: order/updated then order/created, one order", async () => {
    const r = await rc("order-created", { outOfOrder: true });
    assert.deepEqual(r.statuses, [200, 200]);
    const lines = r.lines();
    assert.deepEqual(
      lines.map((l) => l["topic"]),
      ["order/updated", "order/created"],
    );
    assert.deepEqual(
      lines.map((l) => (l["body"] as Json)["status"]),
      ["accepted", "accepted"],
    );
    const first = await t.admin(`/admin/events/${(lines[0]?.["body"] as Json)["eventId"] as string}`);
    const second = await t.admin(`/admin/events/${(lines[1]?.["body"] as Json)["eventId"] as string}`);
    assert.equal(first.body.resourceId, second.body.resourceId, "the same Recharge order");
    assert.ok(String((first.body.body as Json)["order"]["updated_at"]) > String((second.body.body as Json)["order"]["updated_at"]), "the update is later");
    await t.settle();
    assert.equal((await ordersFor(`source=recharge&sourceOrderId=${first.body.resourceId as string}`)).length, 1);
  });

  it("recharge checkout-processed: 200 and the cart is cleared", async () => {
    const r = await rc("checkout-processed");
    assert.deepEqual(r.statuses, [200]);
    const event = await t.admin(`/admin/events/${(r.lines()[0]?.["body"] as Json)["eventId"] as string}`);
    const cart = (event.body.body as Json)["checkout"]["external_checkout_id"] as string;
    await t.settle();
    const cleared = await t.store.db.selectFrom("local_cleared_carts").selectAll().where("cart_id", "=", cart).execute();
    assert.equal(cleared.length, 1);
  });

  it("recharge --tamper: 401", async () => {
    const r = await rc("order-created", { tamper: true });
    assert.deepEqual(r.statuses, [401]);
  });
});
