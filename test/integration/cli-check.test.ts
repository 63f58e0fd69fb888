import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import { close, listen } from "../helpers/loopback.js";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { runCheck, type CheckResult } from "../../src/cli/check.js";
import { CALLBACK, SECRET, startService, type TestService } from "../helpers/service.js";

const NAMES = [
  "valid-order",
  "partial-order",
  "impossible-order",
  "all-or-nothing",
  "idempotent-retry",
  "pretty-printed",
  "non-ascii",
  "bad-signature",
  "missing-signature",
  "malformed-json",
];

class Sink extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString("utf8");
    done();
  }
}


const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-check-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const byName = (results: CheckResult[]): Map<string, CheckResult> => new Map(results.map((r) => [r.name, r]));
const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;

describe("orderbridge check against orderbridge itself", () => {
  let t: TestService;
  let server: http.Server;
  let base: string;
  before(async () => {
    t = await startService("sqlite");
    server = http.createServer(t.app);
    base = await listen(server);
  });
  after(async () => {
    await close(server);
    await t.stop();
  });

  it("passes every check, prints the table and the summary, writes JUnit and draws the progress bar", async () => {
    const out = new Sink();
    const progress = new Sink();
    const junit = path.join(tmp, "ours", "reports", "junit.xml");
    const { results, passed, failed } = await runCheck({
      url: `${base}${CALLBACK}`,
      secret: SECRET,
      timeoutMs: 10_000,
      junit,
      out,
      progress: true,
      progressOut: progress,
    });
    const failures = results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.reason}`);
    assert.deepEqual(failures, [], out.text);
    assert.deepEqual(results.map((r) => r.name), NAMES);
    assert.equal(passed, 10);
    assert.equal(failed, 0);

    // The table: a header, one PASS row per check, and the summary alone on its line.
    const lines = out.text.split("\n");
    assert.ok(lines.includes("10 passed, 0 failed"), out.text);
    assert.match(out.text, /^\| result \| check +\| time \(ms\) \| reason +\|$/m);
    for (const name of NAMES) assert.match(out.text, new RegExp(`^\\| PASS +\\| ${name} +\\| +\\d+ \\| .+\\|$`, "m"));
    assert.match(out.text, /^[\x20-\x7e\n]*$/, "plain ASCII");
    const r = byName(results);
    assert.match(r.get("valid-order")?.reason ?? "", /^201 in \d+ ms, order #OB-\d+$/);
    assert.match(r.get("idempotent-retry")?.reason ?? "", /same order #OB-\d+, identical body/);
    assert.match(r.get("bad-signature")?.reason ?? "", /^refused with 401; .*placed #OB-\d+/);
    assert.match(r.get("missing-signature")?.reason ?? "", /^refused with 401/);
    assert.match(r.get("malformed-json")?.reason ?? "", /^refused with 400/);

    const xml = fs.readFileSync(junit, "utf8");
    assert.match(xml, /<testsuite name="orderbridge check" tests="10" failures="0"[^>]* time="\d+\.\d{3}">/);
    assert.equal(count(xml, /<testcase classname="orderbridge\.check" name="[a-z-]+" time="\d+\.\d{3}"\/>/g), 10);
    assert.equal(count(xml, /<failure/g), 0);

    // Progress: redrawn with \r, one step per check, cleared at the end.
    assert.match(progress.text, /^\r\[ {10}\] 0\/10 valid-order/);
    assert.ok(progress.text.includes("\r[=====     ] 5/10 pretty-printed"), JSON.stringify(progress.text));
    assert.ok(progress.text.includes("\r[==========] 10/10"));
    assert.match(progress.text, /\r +\r$/);
    assert.ok(!progress.text.includes("\n"));
  });
});

/**
 * A handler with four classic bugs: it ignores Sp-Hmac, answers 500 (HTML) to malformed JSON,
 * creates a new order on every retry, and leaves out platformOrderItemId. Otherwise it gets the
 * 201/202/409 rules right.
 */
function brokenHandler(): http.Server {
  let next = 7000;
  const known = new Set(["RUBY-RED", "EARL-GREY"]);
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const json = (status: number, body: unknown): void => {
        res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
      };
      interface Item {
        productSku: string;
        qty: string;
        subscription: { id: string };
      }
      let order: { items: Item[]; allowSomeFailedItems?: boolean; customerId: string; customerEmail: string; platformCustomerId: string };
      try {
        order = JSON.parse(Buffer.concat(chunks).toString("utf8")) as typeof order;
      } catch {
        res.writeHead(500, { "Content-Type": "text/html" }).end('<html><body>Internal error & "oops"</body></html>');
        return;
      }
      const good = order.items.filter((i) => known.has(i.productSku));
      const bad = order.items.filter((i) => !known.has(i.productSku));
      const notFound = (i: Item) => ({ subscriptionId: i.subscription.id, errorMessage: `Product ${i.productSku} was not found` });
      if (good.length === 0 || (bad.length > 0 && order.allowSomeFailedItems !== true)) {
        json(409, {
          orderNumber: null,
          orderDetails: null,
          errorItems: order.items.map((i) => (known.has(i.productSku) ? { subscriptionId: i.subscription.id, errorMessage: "Not ordered" } : notFound(i))),
        });
        return;
      }
      const number = `BRK-${next++}`;
      json(bad.length > 0 ? 202 : 201, {
        orderNumber: number,
        orderDetails: {
          customerId: order.customerId,
          customerEmail: order.customerEmail,
          platformCustomerId: order.platformCustomerId,
          platformOrderId: number,
          orderNumber: number,
          orderStatus: "placed",
          orderState: "open",
          orderDateTime: new Date().toISOString(),
          currency: "USD",
          shippingTotal: "0.00",
          taxTotal: "0.00",
          total: "10.00",
          items: good.map((i) => ({ productSku: i.productSku, qty: i.qty, unitPrice: "10.00", lineTotal: "10.00", subscriptionId: i.subscription.id })),
        },
        errorItems: bad.map(notFound),
      });
    });
  });
}

describe("orderbridge check against broken handlers", () => {
  it("fails the checks a broken handler gets wrong, with reasons that say what was wrong", async () => {
    const server = brokenHandler();
    const base = await listen(server);
    try {
      const out = new Sink();
      const junit = path.join(tmp, "broken", "junit.xml");
      const progress = new Sink();
      const { results, passed, failed } = await runCheck({ url: `${base}/sp`, secret: SECRET, timeoutMs: 5000, junit, out, progress: false, progressOut: progress });
      const r = byName(results);
      const failedNames = results.filter((x) => !x.ok).map((x) => x.name);
      assert.deepEqual(failedNames, ["valid-order", "partial-order", "idempotent-retry", "bad-signature", "missing-signature", "malformed-json"], out.text);
      assert.equal(passed, 4);
      assert.equal(failed, 6);

      assert.match(r.get("valid-order")?.reason ?? "", /^201 but orderDetails\.items\[0\]\.platformOrderItemId is missing/);
      assert.match(r.get("partial-order")?.reason ?? "", /^202 but .*platformOrderItemId/);
      assert.match(r.get("idempotent-retry")?.reason ?? "", /^not idempotent: the retry created order #BRK-\d+ \(the first was #BRK-\d+\)$/);
      assert.match(r.get("bad-signature")?.reason ?? "", /^accepted an order with a wrong Sp-Hmac: 201/);
      assert.match(r.get("missing-signature")?.reason ?? "", /^accepted an order without Sp-Hmac: 201/);
      assert.equal(r.get("malformed-json")?.reason, 'expected 4xx, got 500: <html><body>Internal error & "oops"</body></html>');
      for (const name of ["impossible-order", "all-or-nothing", "pretty-printed", "non-ascii"]) assert.equal(r.get(name)?.ok, true, `${name}: ${r.get(name)?.reason}`);

      assert.ok(out.text.split("\n").includes("4 passed, 6 failed"), out.text);
      assert.match(out.text, /^\| FAIL +\| malformed-json +\| +\d+ \| expected 4xx, got 500/m);
      assert.equal(progress.text, "", "no progress bar unless asked");

      const xml = fs.readFileSync(junit, "utf8");
      assert.match(xml, /<testsuite name="orderbridge check" tests="10" failures="6"/);
      assert.equal(count(xml, /<testcase /g), 10);
      assert.equal(count(xml, /<failure message="[^"<>]*">[^<>]*<\/failure>/g), 6);
      assert.ok(xml.includes("got 500: &lt;html&gt;&lt;body&gt;Internal error &amp; &quot;oops&quot;&lt;/body&gt;&lt;/html&gt;"), xml);
    } finally {
      await close(server);
    }
  });

  it("fails (never throws) when the handler does not answer in time or nothing listens", async () => {
    const hanging = http.createServer(() => undefined);
    const base = await listen(hanging);
    try {
      const out = new Sink();
      const { results, failed } = await runCheck({ url: `${base}/sp`, secret: SECRET, timeoutMs: 100, out, progress: false });
      assert.equal(failed, 10);
      for (const res of results) assert.match(res.reason, /no answer within 100 ms/, res.name);
      assert.ok(out.text.split("\n").includes("0 passed, 10 failed"));
    } finally {
      await close(hanging);
    }

    const gone = http.createServer();
    const url = `${await listen(gone)}/sp`;
    await close(gone);
    const { results } = await runCheck({ url, secret: SECRET, timeoutMs: 2000, out: new Sink(), progress: false });
    for (const res of results) assert.match(res.reason, /^request failed: .*ECONNREFUSED/, res.reason);
  });

  it("refuses options that cannot work", async () => {
    await assert.rejects(runCheck({ url: "ftp://example.com/x", secret: "s", timeoutMs: 1000, out: new Sink(), progress: false }), /not an http\(s\) URL/);
    await assert.rejects(runCheck({ url: "not a url", secret: "s", timeoutMs: 1000, out: new Sink(), progress: false }), /not a URL/);
  });
});
