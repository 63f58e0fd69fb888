import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { CliError } from "../../src/cli/admin-client.js";
import { CHECK_NAMES, isLoopbackHost, planCheck, runCheck, type CheckOptions, type CheckResult } from "../../src/cli/check.js";
import { colorWanted, textReporter, wrap } from "../../src/cli/check/report.js";
import { signSpHmac } from "../../src/security/sp-hmac.js";
import { close, listen } from "../../tools/stand-ins/loopback.js";
import { CALLBACK, SECRET, startService, type TestService } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form request and answer bodies

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
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
const SAFE = ["impossible-order", "bad-signature", "missing-signature", "malformed-json"];

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
const rows = (text: string): string[] => text.split("\n").filter((l) => /^(PASS|FAIL) {2}/.test(l));
const failures = (results: CheckResult[]): string[] => results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.reason}`);

function options(url: string, o: Partial<CheckOptions> = {}): CheckOptions & { out: Sink; notice: Sink } {
  return { url, secret: SECRET, timeoutMs: 10_000, progress: false, ...o, out: (o.out as Sink | undefined) ?? new Sink(), notice: (o.notice as Sink | undefined) ?? new Sink() };
}

/** Runs `orderbridge …` (src/cli/main.ts through tsx), stdout and stderr piped (not a TTY). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/cli/main.ts"), ...args], {
    cwd: ROOT,
    env: { PATH: process.env["PATH"] ?? "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** Units ordered per SKU in the local platform. */
async function units(t: TestService): Promise<Record<string, number>> {
  const rs = await t.store.db.selectFrom("local_order_items").select(["sku", "quantity"]).execute();
  const out: Record<string, number> = {};
  for (const r of rs) out[r.sku] = (out[r.sku] ?? 0) + Number(r.quantity);
  return out;
}

for (const { kind, skip } of await storeKinds()) {
  describe(`orderbridge check against orderbridge itself [${kind}]`, { skip }, () => {
    let t: TestService;
    let server: http.Server;
    let url: string;
    before(async () => {
      t = await startService(kind);
      server = http.createServer(t.app);
      url = `${await listen(server)}${CALLBACK}`;
    });
    after(async () => {
      await close(server);
      await t.stop();
    });

    it("says first what it will place and places exactly that, passes every check, streams the table, writes JUnit, draws progress", async () => {
      const progress = new Sink();
      const junit = path.join(tmp, kind, "reports", "junit.xml");
      const before = { orders: await t.count("local_orders"), units: await units(t) };
      const o = options(url, { junit, progress: true, progressOut: progress });
      const { results, passed, failed, unreachable } = await runCheck(o);
      assert.deepEqual(failures(results), [], o.out.text);
      assert.deepEqual(
        results.map((r) => r.name),
        NAMES,
        "returned in the checks' own order",
      );
      assert.deepEqual([passed, failed, unreachable], [10, 0, false]);

      // The notice, before any request: what it places, with which SKUs, and which SKU must be unknown.
      assert.match(o.notice.text, /^orderbridge check: 10 checks against http:\/\/127\.0\.0\.1:\d+\/callbacks\/subscribe-pro\/order, all at once, 10000 ms per request\.\n/);
      assert.match(
        o.notice.text,
        /This places 6 real orders through the handler \(6 × RUBY-RED, 5 × EARL-GREY; more if the handler gets retries or refusals wrong\); NO-SUCH-SKU-[0-9A-F]{8} must be unknown to it\./,
      );
      // …and that is what orderbridge got.
      assert.equal((await t.count("local_orders")) - before.orders, 6);
      const after = await units(t);
      assert.deepEqual(Object.fromEntries(Object.entries(after).map(([sku, n]) => [sku, n - (before.units[sku] ?? 0)])), { "RUBY-RED": 6, "EARL-GREY": 5 });

      // The table (stdout is not a TTY here: no colour, no wrapping): header, rule, one row per check, summary.
      const lines = o.out.text.split("\n");
      assert.match(lines[0] ?? "", /^result {2}check {14}time \(ms\) {2}reason$/);
      assert.match(lines[1] ?? "", /^-{6} {2}-{17} {2}-{9} {2}-{6}$/);
      assert.deepEqual(
        rows(o.out.text)
          .map((l) => l.split(/ +/)[1])
          .sort(),
        [...NAMES].sort(),
      );
      for (const row of rows(o.out.text)) assert.match(row, /^PASS {4}[a-z-]+ +\d+ {2}\S.*$/);
      assert.equal(lines.at(-2), "10 passed, 0 failed");
      assert.match(o.out.text, /^[\x20-\x7e\n]*$/, "plain ASCII, no colour codes");
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

      // Progress: redrawn with \r, saying what it still waits for, cleared at the end.
      assert.ok(progress.text.startsWith(`\r[          ] 0/10 waiting for ${NAMES.join(", ")}`), JSON.stringify(progress.text));
      assert.ok(progress.text.includes("\r[==========] 10/10"));
      assert.match(progress.text, /\r +\r$/);
      assert.ok(!progress.text.includes("\n"));
    });

    it("--safe places nothing, runs only the checks that place nothing, and says so", async () => {
      const before = await t.count("local_orders");
      const o = options(url, { safe: true });
      const { results } = await runCheck(o);
      assert.deepEqual(failures(results), [], o.out.text);
      assert.deepEqual(
        results.map((r) => r.name),
        SAFE,
      );
      assert.equal(await t.count("local_orders"), before);
      assert.match(o.notice.text, /^orderbridge check: 4 checks against .*\n--safe: nothing it sends can become an order \(the signature checks send a SKU nobody sells\)\.\n$/);
      assert.match(byName(results).get("bad-signature")?.reason ?? "", /^refused with 401 in \d+ ms \(--safe: the same order correctly signed is not sent\)$/);
    });

    it("--json prints a plan line, a line per result as it finishes and a summary line; --only runs only those checks", async () => {
      const o = options(url, { json: true, only: ["malformed-json", "valid-order"] });
      const { results } = await runCheck(o);
      const lines = o.out.text
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as Json);
      assert.deepEqual(
        lines.map((l) => l["type"]),
        ["plan", "result", "result", "summary"],
      );
      assert.deepEqual(lines[0], {
        type: "plan",
        url,
        checks: ["valid-order", "malformed-json"],
        safe: false,
        timeoutMs: 10_000,
        orders: 1,
        units: { "RUBY-RED": 2, "EARL-GREY": 1 },
        unknownSku: lines[0]?.["unknownSku"],
      });
      assert.deepEqual(
        lines
          .slice(1, 3)
          .map((l) => [l["name"], l["ok"]])
          .sort(),
        [
          ["malformed-json", true],
          ["valid-order", true],
        ],
      );
      assert.deepEqual(Object.keys(lines[1] ?? {}), ["type", "name", "ok", "reason", "ms"]);
      assert.deepEqual({ ...lines[3], ms: 0 }, { type: "summary", passed: 2, failed: 0, ms: 0, unreachable: false });
      assert.deepEqual(
        results.map((r) => r.name),
        ["valid-order", "malformed-json"],
      );
    });

    // The command's own input and output do not depend on the store: run once.
    it("the command: a plain table when stdout is not a TTY, --json and --only, exit codes", { skip: kind !== "sqlite" && "run on SQLite" }, async () => {
      const plain = await cli(["check", url, "--secret", SECRET, "--only", "valid-order,malformed-json", "--timeout", "10000"]);
      assert.equal(plain.code, 0, plain.stderr + plain.stdout);
      assert.ok(!plain.stdout.includes("\u001b"), "no ANSI codes when stdout is not a TTY");
      assert.match(plain.stdout, /^result {2}check/);
      assert.deepEqual(
        rows(plain.stdout)
          .map((l) => l.split(/ +/).slice(0, 2).join(" "))
          .sort(),
        ["PASS malformed-json", "PASS valid-order"],
      );
      assert.ok(plain.stdout.split("\n").includes("2 passed, 0 failed"));
      assert.match(plain.stderr, /This places 1 real order through the handler \(2 × RUBY-RED, 1 × EARL-GREY;/);
      assert.ok(!plain.stderr.includes("\r"), "no progress bar when stderr is not a TTY");

      const json = await cli(["check", url, "--secret", SECRET, "--json", "--only", "impossible-order", "--only", "bad-signature", "--skus", "EARL-GREY,RUBY-RED"]);
      assert.equal(json.code, 0, json.stderr);
      const lines = json.stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as Json);
      assert.deepEqual(lines[0]?.["checks"], ["impossible-order", "bad-signature"]);
      assert.deepEqual(lines[0]?.["units"], { "EARL-GREY": 1, "RUBY-RED": 0 });
      assert.deepEqual(lines.at(-1)?.["passed"], 2);

      const wrong = await cli(["check", url, "--secret", "not-the-secret", "--only", "valid-order"]);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stdout, /^FAIL {4}valid-order +\d+ {2}expected 201, got 401/m);

      const away = await cli(["check", "http://192.0.2.1/sp", "--secret", SECRET]);
      assert.equal(away.code, 2);
      assert.match(away.stderr, /^orderbridge: 192\.0\.2\.1 is not this machine, .*Pass --yes to run them against it, or --safe/);
      assert.equal(away.stdout, "");
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Stand-in handlers

type Style = "documented" | "magento";

interface StandInOptions {
  /** Changes an order answer before it is sent (raw: the request's exact text). */
  mutate?: (body: Json, raw: string) => void;
  /** Holds a request until the promise it returns settles. */
  hold?: (raw: string) => Promise<void> | undefined;
}

/**
 * A correct order-callback handler (raw-body Sp-Hmac, idempotent by salesOrderToken, all-or-nothing
 * unless allowSomeFailedItems) that answers in one of two real styles:
 * - "documented": like the example answer of Subscribe Pro's documentation: no errorItems on a 201,
 *   minimal addresses; refusals 401 / 400.
 * - "magento": like Subscribe Pro's Magento 2 extension (Service/OrderCallback/ResponseProcessor.php):
 *   quantities and amounts as PHP casts Magento's decimals ("4.0000", "0"), errorItems only when an
 *   item failed, nulls in addresses, date('c') timestamps, no shippingTotal per item; whole-request
 *   refusals 409 {errorMessage, errorClass: "Technology"}.
 */
function standIn(style: Style, o: StandInOptions = {}): http.Server {
  const known = new Set(["RUBY-RED", "EARL-GREY"]);
  const placed = new Map<string, { status: number; text: string }>();
  let next = 91293923;
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const raw = Buffer.concat(chunks);
        const text = raw.toString("utf8");
        await o.hold?.(text);
        const reply = (status: number, body: string): void => void res.writeHead(status, { "Content-Type": "application/json" }).end(body);
        const refuse = (status: number, message: string): void =>
          style === "magento" ? reply(409, JSON.stringify({ errorMessage: message, errorClass: "Technology" })) : reply(status, JSON.stringify({ errorMessage: message }));
        const sig = req.headers["sp-hmac"];
        const expected = Buffer.from(signSpHmac(SECRET, raw));
        if (typeof sig !== "string" || sig.length !== expected.length || !timingSafeEqual(Buffer.from(sig), expected)) {
          return refuse(401, "Invalid order callback configuration. Invalid callback shared secret.");
        }
        let order: Json;
        try {
          order = JSON.parse(text) as Json;
        } catch {
          return refuse(400, "The request is not valid JSON.");
        }
        const again = placed.get(order["salesOrderToken"]);
        if (again !== undefined) return reply(again.status, again.text);

        const items = order["items"] as Json[];
        const good = items.filter((i) => known.has(i["productSku"]));
        const bad = items.filter((i) => !known.has(i["productSku"]));
        const failure = (i: Json, message: string): Json => ({ subscriptionId: String(i["subscription"]["id"]), errorMessage: message });
        const notFound = (i: Json): Json => failure(i, `Product ${i["productSku"]} was not found`);
        if (good.length === 0 || (bad.length > 0 && order["allowSomeFailedItems"] !== true)) {
          return reply(
            409,
            JSON.stringify({ orderNumber: null, orderDetails: null, errorItems: items.map((i) => (known.has(i["productSku"]) ? failure(i, "Not ordered") : notFound(i))) }),
          );
        }
        const n = next++;
        const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
        let body: Json;
        if (style === "documented") {
          const number = `ABC-${String(n).padStart(9, "0")}`;
          const name = (a: Json | undefined): Json => ({ firstName: a?.["firstName"], lastName: a?.["lastName"] });
          body = {
            orderNumber: number,
            orderDetails: {
              customerId: order["customerId"],
              customerEmail: order["customerEmail"],
              platformCustomerId: order["platformCustomerId"],
              platformOrderId: String(n).padStart(9, "0"),
              orderNumber: number,
              salesOrderToken: order["salesOrderToken"],
              orderStatus: "placed",
              orderState: "open",
              orderDateTime: now,
              currency: "USD",
              shippingTotal: "7.2000",
              taxTotal: "4.0000",
              total: "51.2000",
              billingAddress: name(order["billingAddress"]),
              shippingAddress: name(order["shippingAddress"]),
              items: good.map((i, k) => ({
                platformOrderItemId: `7356412${n}${k}`,
                productSku: i["productSku"],
                productName: "Ruby Red Black Tea",
                shortDescription: "Ruby Red Black Tea - 2 oz.",
                qty: i["qty"],
                requiresShipping: true,
                unitPrice: "10.0000",
                shippingTotal: "7.2000",
                taxTotal: "4.0000",
                lineTotal: "51.2000",
                subscriptionId: i["subscription"]["id"],
              })),
            },
          };
        } else {
          const number = String(n).padStart(9, "0");
          const address = (a: Json | undefined): Json => ({
            firstName: a?.["firstName"],
            lastName: a?.["lastName"],
            company: a?.["company"] || null,
            street1: a?.["street1"],
            street2: a?.["street2"] ?? "",
            street3: "",
            city: a?.["city"],
            region: a?.["region"] ?? null,
            postcode: a?.["postcode"],
            country: a?.["country"],
            phone: null,
          });
          body = {
            orderNumber: number,
            orderDetails: {
              customerId: order["customerId"],
              customerEmail: order["customerEmail"],
              platformCustomerId: order["platformCustomerId"],
              platformOrderId: String(n),
              orderNumber: number,
              salesOrderToken: order["salesOrderToken"],
              orderStatus: "placed",
              orderState: "open",
              orderDateTime: now.replace(/Z$/, "+00:00"),
              currency: "USD",
              discountTotal: "0",
              shippingTotal: "5.4000",
              taxTotal: "3.6000",
              total: "49",
              billingAddress: address(order["billingAddress"]),
              shippingAddress: address(order["shippingAddress"]),
              items: good.map((i, k) => ({
                platformOrderItemId: String(n * 10 + k),
                productSku: i["productSku"],
                productName: "Ruby Red Black Tea",
                shortDescription: "",
                qty: `${Number(i["qty"])}.0000`,
                requiresShipping: true,
                unitPrice: "10.0000",
                discountTotal: "0.0000",
                taxTotal: "0.9000",
                lineTotal: `${10 * Number(i["qty"])}.0000`,
                subscriptionId: String(i["subscription"]["id"]),
              })),
            },
          };
        }
        // Both leave errorItems out when nothing failed.
        if (bad.length > 0) body["errorItems"] = bad.map(notFound);
        o.mutate?.(body, text);
        const answer = { status: bad.length > 0 ? 202 : 201, text: JSON.stringify(body) };
        placed.set(order["salesOrderToken"], answer);
        reply(answer.status, answer.text);
      })();
    });
  });
}

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

async function withServer<T>(server: http.Server, fn: (base: string) => Promise<T>): Promise<T> {
  const base = await listen(server);
  try {
    return await fn(base);
  } finally {
    await close(server);
  }
}

describe("orderbridge check against real-world handlers", () => {
  for (const style of ["documented", "magento"] as const) {
    it(`passes a correct handler that answers like ${style === "documented" ? "Subscribe Pro's documented example (201 without errorItems)" : 'the Magento 2 extension (qty "4.0000", errorItems only on errors, 409 refusals)'}`, async () => {
      await withServer(standIn(style), async (base) => {
        const o = options(`${base}/sp`);
        const { results, passed } = await runCheck(o);
        assert.deepEqual(failures(results), [], o.out.text);
        assert.equal(passed, 10);
        if (style === "magento") assert.match(byName(results).get("bad-signature")?.reason ?? "", /^refused with 409;/);
      });
    });
  }

  it("validates every 2xx answer: a handler whose answers to pretty-printed or non-ASCII bodies break the schema fails exactly those checks", async () => {
    const handler = standIn("magento", {
      // A date in another format, only when the request was pretty-printed or held non-ASCII text.
      mutate: (body, raw) => {
        // eslint-disable-next-line no-control-regex -- "not ASCII" is the range after \x7f, from \x00
        if (raw.includes("\n") || /[^\x00-\x7f]|\\u00/.test(raw)) body["orderDetails"]["orderDateTime"] = "01/05/2024 14:05";
      },
    });
    await withServer(handler, async (base) => {
      const o = options(`${base}/sp`);
      const { results } = await runCheck(o);
      assert.deepEqual(
        results.filter((r) => !r.ok).map((r) => r.name),
        ["pretty-printed", "non-ascii"],
        o.out.text,
      );
      for (const name of ["pretty-printed", "non-ascii"]) {
        assert.equal(byName(results).get(name)?.reason, '201 but does not match the response schema: /orderDetails/orderDateTime must match format "date-time"');
      }
    });
  });

  it("streams each result as it finishes: the others are printed while one check is still waiting for its answer", async () => {
    const out = new Sink();
    let released = false;
    const handler = standIn("documented", {
      // Malformed JSON is answered only once the nine other rows are out.
      hold: async (raw) => {
        if (raw !== '{"customerId": ') return;
        const giveUp = performance.now() + 15_000;
        while (rows(out.text).length < 9 && performance.now() < giveUp) await sleep(10);
        released = rows(out.text).length === 9;
      },
    });
    await withServer(handler, async (base) => {
      const { results } = await runCheck(options(`${base}/sp`, { out }));
      assert.ok(released);
      assert.deepEqual(failures(results), [], out.text);
      assert.equal(rows(out.text).at(-1)?.split(/ +/)[1], "malformed-json");
    });
  });

  it("fails the checks a broken handler gets wrong, with reasons that say what was wrong", async () => {
    await withServer(brokenHandler(), async (base) => {
      const junit = path.join(tmp, "broken", "junit.xml");
      const progress = new Sink();
      const o = options(`${base}/sp`, { timeoutMs: 5000, junit, progressOut: progress });
      const { results, passed, failed } = await runCheck(o);
      const r = byName(results);
      assert.deepEqual(
        results.filter((x) => !x.ok).map((x) => x.name),
        ["valid-order", "partial-order", "idempotent-retry", "pretty-printed", "non-ascii", "bad-signature", "missing-signature", "malformed-json"],
        o.out.text,
      );
      assert.equal(passed, 2);
      assert.equal(failed, 8);

      assert.match(r.get("valid-order")?.reason ?? "", /^201 but orderDetails\.items\[0\]\.platformOrderItemId is missing/);
      assert.match(r.get("partial-order")?.reason ?? "", /^202 but .*platformOrderItemId/);
      assert.match(r.get("idempotent-retry")?.reason ?? "", /^first request: 201 but .*platformOrderItemId/);
      assert.match(r.get("pretty-printed")?.reason ?? "", /^201 but .*platformOrderItemId/);
      assert.match(r.get("bad-signature")?.reason ?? "", /^accepted an order with a wrong Sp-Hmac: 201/);
      // Sent with a SKU nobody sells: a handler that ignores the signature processes it (409 order answer), placing nothing.
      assert.match(r.get("missing-signature")?.reason ?? "", /^processed an order without Sp-Hmac instead of refusing it: 409 \{"orderNumber":null/);
      assert.equal(r.get("malformed-json")?.reason, 'expected 4xx, got 500: <html><body>Internal error & "oops"</body></html>');
      for (const name of ["impossible-order", "all-or-nothing"]) assert.equal(r.get(name)?.ok, true, `${name}: ${r.get(name)?.reason}`);

      assert.ok(o.out.text.split("\n").includes("2 passed, 8 failed"), o.out.text);
      assert.match(o.out.text, /^FAIL {4}malformed-json +\d+ {2}expected 4xx, got 500/m);
      assert.equal(progress.text, "", "no progress bar unless asked");

      const xml = fs.readFileSync(junit, "utf8");
      assert.match(xml, /<testsuite name="orderbridge check" tests="10" failures="8"/);
      assert.equal(count(xml, /<testcase /g), 10);
      assert.equal(count(xml, /<failure message="[^"<>]*">[^<>]*<\/failure>/g), 8);
      assert.ok(xml.includes("got 500: &lt;html&gt;&lt;body&gt;Internal error &amp; &quot;oops&quot;&lt;/body&gt;&lt;/html&gt;"), xml);
    });
  });

  it("a handler that never answers fails the whole run in about one timeout, not one per check", async () => {
    await withServer(
      http.createServer(() => undefined),
      async (base) => {
        const o = options(`${base}/sp`, { timeoutMs: 1000 });
        const started = performance.now();
        const { results, failed, unreachable } = await runCheck(o);
        const elapsed = performance.now() - started;
        assert.equal(failed, 10);
        assert.equal(unreachable, true);
        for (const res of results) assert.match(res.reason, /no answer within 1000 ms/, res.name);
        // Ten checks one after the other would take ten timeouts.
        assert.ok(elapsed < 3 * 1000, `took ${Math.round(elapsed)} ms`);
        assert.ok(o.out.text.split("\n").includes("0 passed, 10 failed"));
      },
    );

    const gone = http.createServer();
    const url = `${await listen(gone)}/sp`;
    await close(gone);
    const { results } = await runCheck(options(url, { timeoutMs: 2000 }));
    for (const res of results) assert.match(res.reason, /^request failed: .*ECONNREFUSED/, res.reason);
  });
});

describe("orderbridge check: safety and options", () => {
  it("refuses, before any request, to place orders on a handler that is not on this machine without --yes", async () => {
    for (const target of ["http://192.0.2.1/sp", "https://[2001:db8::1]/sp", "https://shop.example.com/subscribepro/order"]) {
      const o = options(target, { timeoutMs: 60_000 });
      await assert.rejects(runCheck(o), (e: unknown) => {
        assert.ok(e instanceof CliError);
        assert.equal(e.exitCode, 2);
        assert.match(
          e.message,
          /is not this machine, and valid-order, partial-order, all-or-nothing, idempotent-retry, pretty-printed, non-ascii, bad-signature place real orders through the handler \(6 orders when it gets them right; more when it does not\)\. Pass --yes to run them against it, or --safe to run only the checks that place nothing\.$/,
        );
        return true;
      });
      assert.equal(o.notice.text + o.out.text, "", "nothing said, nothing sent");
    }
    // Allowed with --yes, or with --safe (planned only: nothing is sent here).
    assert.equal(planCheck({ url: "http://192.0.2.1/sp", timeoutMs: 1000, yes: true }).plan.orders, 6);
    const safe = planCheck({ url: "http://192.0.2.1/sp", timeoutMs: 1000, safe: true });
    assert.deepEqual([safe.plan.checks, safe.plan.orders], [SAFE, 0]);
    assert.deepEqual(planCheck({ url: "http://192.0.2.1/sp", timeoutMs: 1000, only: ["malformed-json"] }).plan.checks, ["malformed-json"]);
  });

  it("loopback means localhost and the loopback addresses, read from the URL alone", () => {
    for (const h of ["localhost", "LOCALHOST", "api.localhost", "127.0.0.1", "127.10.0.3", "[::1]", "[::ffff:127.0.0.1]", "localhost."]) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ["192.0.2.1", "10.0.0.1", "0.0.0.0", "[::]", "[2001:db8::1]", "[::ffff:192.0.2.1]", "example.com", "localhost.example.com", "127.0.0.1.nip.io"]) {
      assert.equal(isLoopbackHost(h), false, h);
    }
    assert.equal(isLoopbackHost(new URL("http://127.1:8080/x").hostname), true, "URL normalises IPv4 shorthand");
  });

  it("refuses options that cannot work, with exit code 2", () => {
    const refused = (o: Parameters<typeof planCheck>[0], re: RegExp): void =>
      assert.throws(
        () => planCheck(o),
        (e: unknown) => e instanceof CliError && e.exitCode === 2 && re.test(e.message),
      );
    refused({ url: "ftp://example.com/x", timeoutMs: 1000 }, /not an http\(s\) URL/);
    refused({ url: "not a url", timeoutMs: 1000 }, /not a URL/);
    refused({ url: "http://127.0.0.1/x", timeoutMs: 0 }, /timeout must be a positive number/);
    refused({ url: "http://127.0.0.1/x", timeoutMs: 1000, only: ["valid-order", "nope"] }, /^no check named nope; the checks are valid-order, partial-order, /);
    refused(
      { url: "http://127.0.0.1/x", timeoutMs: 1000, safe: true, only: ["malformed-json", "valid-order"] },
      /^--safe runs only checks that place nothing, and valid-order can place orders$/,
    );
    assert.deepEqual(CHECK_NAMES, NAMES);
  });

  it("masks credentials of the target URL in what it says", () => {
    const { plan } = planCheck({ url: "http://user:pa55@127.0.0.1:1/sp?token=abc", timeoutMs: 1000 });
    assert.equal(plan.url, "http://****:****@127.0.0.1:1/sp?token=****");
  });

  it("colour only on a TTY without NO_COLOR; the table fits the width it is given", () => {
    assert.equal(colorWanted({ isTTY: true }, {}), true);
    assert.equal(colorWanted({ isTTY: true }, { NO_COLOR: "" }), true);
    assert.equal(colorWanted({ isTTY: true }, { NO_COLOR: "1" }), false);
    assert.equal(colorWanted({ isTTY: false }, {}), false);
    assert.equal(colorWanted({}, {}), false);

    const plan = { url: "http://127.0.0.1/sp", checks: ["valid-order", "malformed-json"], safe: false, timeoutMs: 1, orders: 1, units: {}, unknownSku: "X" };
    const long = `expected 4xx, got 500: ${"word ".repeat(30)}and-an-unbreakable-${"x".repeat(80)}`;
    const colored = new Sink();
    const c = textReporter({ out: colored, color: true, width: 60 });
    c.start(plan);
    c.result({ name: "valid-order", ok: true, reason: "201 in 3 ms, order #1", ms: 3 });
    c.result({ name: "malformed-json", ok: false, reason: long, ms: 12 });
    c.finish({ passed: 1, failed: 1, ms: 15, unreachable: false });
    assert.ok(colored.text.includes("\u001b[32mPASS\u001b[0m    valid-order"), colored.text);
    assert.ok(colored.text.includes("\u001b[31m\u001b[1mFAIL\u001b[0m    malformed-json"), colored.text);
    assert.ok(colored.text.includes("\u001b[31m\u001b[1m1 passed, 1 failed\u001b[0m"), colored.text);
    // eslint-disable-next-line no-control-regex -- ESC starts the colour codes removed here
    const visible = colored.text.replace(/\u001b\[\d+m/g, "");
    for (const line of visible.trimEnd().split("\n")) assert.ok(line.length <= 60, `${line.length}: ${line}`);
    // Wrapped, not cut: the reason's text is all there, continuation lines under the reason column
    // (which starts after result, check, time and their gaps: 6 + 2 + 14 + 2 + 9 + 2 characters).
    const reasonLines = visible.split("\n").slice(3, -2);
    assert.ok(reasonLines.length > 3);
    for (const l of reasonLines.slice(1)) assert.match(l, /^ {35}\S/);
    assert.equal(
      reasonLines
        .map((l) => l.slice(35))
        .join("")
        .replace(/ /g, ""),
      long.replace(/ /g, ""),
    );

    assert.deepEqual(wrap("aa bb cc", 5), ["aa bb", "cc"]);
    assert.deepEqual(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
    assert.deepEqual(wrap("", 3), [""]);
  });
});
