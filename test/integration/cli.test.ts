import assert from "node:assert/strict";
import { runCli } from "../helpers/process.js";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import http, { type Server } from "node:http";
import { close, listen } from "../../tools/stand-ins/loopback.js";
import { rcFixture, startRechargeService, type RechargeTestService } from "../helpers/recharge.js";
import { ADMIN_TOKEN, SECRET, minimalOrder } from "../helpers/service.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe("the orderbridge command", () => {
  let t: RechargeTestService;
  let server: Server;
  let url: string;
  before(async () => {
    t = await startRechargeService("sqlite");
    server = http.createServer(t.app);
    url = await listen(server);
    assert.equal((await t.callback(minimalOrder("cli-1"))).status, 201);
    const body = rcFixture("2021-11", "order-created");
    body["order"]["id"] = 990001;
    t.recharge.queue({ status: 422 });
    await t.webhook("order/created", body);
    await t.settle();
  });
  after(async () => {
    await close(server);
    await t.stop();
  });

  it("orders list prints a table, --json prints the page; orders show prints one order", async () => {
    const list = await runCli(["orders", "list", "--url", url, "--token", ADMIN_TOKEN]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^order\s+source\s+source order/m);
    assert.match(list.stdout, /ABC-\d+\s+subscribe-pro\s+cli-1/);
    const json = await runCli(["orders", "list", "--source", "recharge", "--json", "--url", url], { ADMIN_TOKEN });
    assert.equal(json.code, 0, json.stderr);
    const page = JSON.parse(json.stdout) as { orders: { sourceOrderId: string; orderNumber: string }[] };
    assert.deepEqual(
      page.orders.map((o) => o.sourceOrderId),
      ["990001"],
    );
    // Without --json, show prints a record to read (test/integration/cli-options.test.ts).
    const show = await runCli(["orders", "show", page.orders[0]?.orderNumber ?? "", "--json", "--url", url], { ADMIN_TOKEN });
    assert.equal(JSON.parse(show.stdout).sourceOrderId, "990001");
  });

  it("events list --state dead finds the dead write-back; events replay runs it again", async () => {
    const dead = await runCli(["events", "list", "--state", "dead", "--json", "--url", url], { ADMIN_TOKEN });
    assert.equal(dead.code, 0, dead.stderr);
    const events = (JSON.parse(dead.stdout) as { events: { id: string; kind: string }[] }).events;
    assert.equal(events.length, 1);
    assert.equal(events[0]?.kind, "recharge.order_writeback");
    const tableOut = await runCli(["events", "list", "--state", "dead", "--url", url], { ADMIN_TOKEN });
    assert.match(tableOut.stdout, /recharge\.order_writeback\s+dead\s+1\/6\s+990001/);
    const replay = await runCli(["events", "replay", events[0]?.id ?? "", "--url", url], { ADMIN_TOKEN });
    assert.equal(replay.code, 0, replay.stderr);
    // Pending, or already running: the replay nudges the worker, which may claim it before the answer is read back.
    assert.match(replay.stdout, /is (pending|running) again/);
    await t.settle();
    assert.equal(t.recharge.succeeded().filter((c) => c.path === "/orders/990001").length, 1);
  });

  it("exit codes: 1 for a refused request, 2 for wrong usage, 69 when the server is unreachable", async () => {
    const missing = await runCli(["events", "show", "evt_nope", "--url", url], { ADMIN_TOKEN });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404: No event evt_nope/);
    const wrongToken = await runCli(["orders", "list", "--url", url, "--token", "not-the-token-at-all"]);
    assert.equal(wrongToken.code, 1);
    assert.match(wrongToken.stderr, /401: The admin token is wrong/);
    const badLimit = await runCli(["orders", "list", "--limit", "0", "--url", url], { ADMIN_TOKEN });
    assert.equal(badLimit.code, 1);
    assert.match(badLimit.stderr, /400: Invalid query parameters\.\n {2}\/query\/limit: must be a whole number from 1 to 200/);
    const usage = await runCli(["events", "list", "--state", "bogus", "--url", url], { ADMIN_TOKEN });
    assert.equal(usage.code, 2);
    const unknown = await runCli(["frobnicate"]);
    assert.equal(unknown.code, 2);
    const down = await runCli(["orders", "list", "--url", "http://127.0.0.1:9", "--token", ADMIN_TOKEN]);
    assert.equal(down.code, 69);
    assert.match(down.stderr, /Cannot reach orderbridge/);
  });

  it("send exits 0 for the answers a sample should get, 1 when the receiver refuses it, 69 when nothing answers", async () => {
    const to = `${url}/callbacks/subscribe-pro/order`;
    const ok = await runCli(["send", "subscribe-pro", "minimal", "--to", to, "--secret", SECRET]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /statuses: 201 ×1/);
    const nothingOrdered = await runCli(["send", "subscribe-pro", "unknown-sku", "--to", to, "--secret", SECRET]);
    assert.equal(nothingOrdered.code, 0, "a 409 order answer is what that sample should get");
    const refused = await runCli(["send", "subscribe-pro", "minimal", "--to", to, "--secret", "not-the-secret"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /statuses: 401 ×1\nthe receiver refused the request/);
    const tampered = await runCli(["send", "subscribe-pro", "minimal", "--to", to, "--secret", SECRET, "--tamper"]);
    assert.equal(tampered.code, 0, "a tampered request should be refused, and was");
    const webhook = await runCli(["send", "recharge", "order-created", "--to", `${url}/webhooks/recharge`, "--secret", "not-the-secret"]);
    assert.equal(webhook.code, 1);
    const down = await runCli(["send", "subscribe-pro", "minimal", "--to", "http://127.0.0.1:9/callbacks/subscribe-pro/order", "--secret", SECRET]);
    assert.equal(down.code, 69);
  });

  it("check exits 69 when the handler cannot be reached at all", async () => {
    const down = await runCli(["check", "http://127.0.0.1:9/callbacks/subscribe-pro/order", "--secret", SECRET, "--no-progress"]);
    assert.equal(down.code, 69, down.stdout + down.stderr);
    assert.match(down.stdout, /0 passed, 10 failed/);
  });

  it("--help works for every command and exits 0", async () => {
    for (const args of [
      [],
      ["serve"],
      ["migrate"],
      ["prune"],
      ["config", "check"],
      ["send"],
      ["check"],
      ["events", "list"],
      ["events", "show"],
      ["events", "replay"],
      ["orders", "list"],
      ["orders", "show"],
    ]) {
      const r = await runCli([...args, "--help"]);
      assert.equal(r.code, 0, `${args.join(" ")} --help: ${r.stderr}`);
      assert.match(r.stdout, /Usage: orderbridge/);
    }
  });
});

describe("orderbridge config check and migrate", () => {
  it("config check prints the effective configuration with secrets masked; an invalid one exits 78", async () => {
    const ok = await runCli(["config", "check"], { SP_HMAC_SECRETS: "super-secret-value", ADMIN_TOKEN, DATA_DIR: os.tmpdir() });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /configuration ok/);
    assert.match(ok.stdout, /"hmacSecrets": "1 configured"/);
    assert.doesNotMatch(ok.stdout, /super-secret-value|admin-token-0123456789abcdef/);
    const bad = await runCli(["config", "check"], { PORT: "99999", SP_AUTH: "magic", HOST: "nothost!", LOG_LEVEL: "loud" });
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, /PORT must be/);
    assert.match(bad.stderr, /SP_AUTH must be/);
    assert.match(bad.stderr, /HOST must be an IP address or a host name .*\(got "nothost!"\)/);
    assert.match(bad.stderr, /LOG_LEVEL must be one of .*\(got "loud"\)/);
  });

  it("config check warns of a variable that looks like a misspelt setting, naming the setting, never the value (issue #15, item 4)", async () => {
    const ok = await runCli(["config", "check"], { SP_HMAC_SECRETS: "s", DATA_DIR: os.tmpdir(), RECHARGE_CLIENT_SECRET: "rc-secret-value-0123" });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /^orderbridge: warning: RECHARGE_CLIENT_SECRET is not an orderbridge setting and is ignored: did you mean RECHARGE_CLIENT_SECRETS\?$/m);
    assert.match(ok.stdout, /"webhooks": "off \(no RECHARGE_CLIENT_SECRETS\)"/);
    // Also when the configuration is refused: the misspelling is often why.
    const refused = await runCli(["config", "check"], { NODE_ENV: "production", SP_HMAC_SECRET: "sp-secret-value-0123", DATA_DIR: os.tmpdir() });
    assert.equal(refused.code, 78);
    assert.match(refused.stderr, /SP_HMAC_SECRETS is required in production/);
    assert.match(refused.stderr, /SP_HMAC_SECRET is not an orderbridge setting and is ignored: did you mean SP_HMAC_SECRETS\?/);
    for (const r of [ok, refused]) assert.doesNotMatch(r.stdout + r.stderr, /secret-value-0123/);
  });

  it("config check reads the catalog as the service would, and says where the callback secret will come from", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ob-config-"));
    try {
      const noCatalog = await runCli(["config", "check"], { SP_HMAC_SECRETS: "s", DATA_DIR: dir, CATALOG_FILE: path.join(dir, "nope.json") });
      assert.equal(noCatalog.code, 78);
      assert.match(noCatalog.stderr, /CATALOG_FILE .*nope\.json cannot be read/);
      const noModule = await runCli(["config", "check"], { SP_HMAC_SECRETS: "s", DATA_DIR: dir, PLATFORM: path.join(dir, "nope.mjs") });
      assert.equal(noModule.code, 78);
      assert.match(noModule.stderr, /PLATFORM: cannot load the adapter module .*nope\.mjs/);
      const goodModule = path.join(ROOT, "test/fixtures/adapters/in-memory-adapter.mjs");
      const withModule = await runCli(["config", "check"], { SP_HMAC_SECRETS: "s", DATA_DIR: dir, PLATFORM: goodModule });
      assert.equal(withModule.code, 0, withModule.stderr);
      const none = await runCli(["config", "check"], { DATA_DIR: dir });
      assert.equal(none.code, 0, none.stderr);
      assert.match(none.stdout, /"hmacSecrets": "none yet: one will be generated in .*sp-hmac-secret at start"/);
      assert.equal(fs.existsSync(path.join(dir, "sp-hmac-secret")), false, "config check creates nothing");
      fs.writeFileSync(path.join(dir, "sp-hmac-secret"), "generated-secret-value\n", { mode: 0o600 });
      const generated = await runCli(["config", "check"], { DATA_DIR: dir });
      assert.match(generated.stdout, /"hmacSecrets": "the generated secret in .*sp-hmac-secret"/);
      assert.doesNotMatch(generated.stdout, /generated-secret-value/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("migrate applies the migrations once, then reports the database up to date", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ob-migrate-"));
    try {
      const first = await runCli(["migrate"], { DATA_DIR: dir });
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /sqlite: applied 0001_initial, 0002_jobs_and_recharge/);
      const second = await runCli(["migrate"], { DATA_DIR: dir });
      assert.match(second.stdout, /sqlite: up to date/);
      // Migrating serves no callbacks: production needs no callback secret for it.
      const production = await runCli(["migrate"], { DATA_DIR: dir, NODE_ENV: "production" });
      assert.equal(production.code, 0, production.stderr);
      assert.match(production.stdout, /sqlite: up to date/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
