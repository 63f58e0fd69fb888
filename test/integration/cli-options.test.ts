import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http, { type Server } from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { close, listen } from "../../tools/stand-ins/loopback.js";
import { runCli } from "../helpers/process.js";
import { startRechargeService, type RechargeTestService } from "../helpers/recharge.js";
import { ADMIN_TOKEN, SECRET, minimalOrder } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

// Issue #18, item 5: the same options and defaults on every command, --version, paging past 200,
// --json that is real on every command that prints, and `send --duplicate N` summarised.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;

/** A server that records each request's URL and headers and answers 200 {}. */
async function capture(): Promise<{ url: string; seen: { url: string; headers: http.IncomingHttpHeaders }[]; close(): Promise<void> }> {
  const seen: { url: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      seen.push({ url: req.url ?? "", headers: req.headers });
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
  });
  const url = await listen(server);
  return { url, seen, close: () => close(server) };
}

describe("orderbridge --version", () => {
  it("prints package.json's version and exits 0; a command's own --version is still its own", async () => {
    const r = await runCli(["--version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${VERSION}\n`);
    // send --version is the Recharge payload version: options after a command are the command's.
    const c = await capture();
    try {
      const r = await runCli(["send", "recharge", "order-created", "--version", "2021-01", "--to", `${c.url}/webhooks/recharge`, "--secret", "s3cret"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(c.seen[0]?.headers["x-recharge-version"], "2021-01");
    } finally {
      await c.close();
    }
  });

  it("works from the built package (dist/ beside package.json), as installed", { timeout: 120_000 }, () => {
    const pkg = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-pkg-"));
    try {
      execFileSync(path.join(ROOT, "node_modules/.bin/tsc"), ["-p", path.join(ROOT, "tsconfig.build.json"), "--outDir", path.join(pkg, "dist")], { cwd: ROOT, stdio: "pipe" });
      fs.copyFileSync(path.join(ROOT, "package.json"), path.join(pkg, "package.json"));
      fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(pkg, "node_modules"), "dir");
      const out = execFileSync(process.execPath, [path.join(pkg, "dist/cli/main.js"), "--version"], { cwd: os.tmpdir(), encoding: "utf8" });
      assert.equal(out, `${VERSION}\n`);
    } finally {
      fs.rmSync(pkg, { recursive: true, force: true });
    }
  });
});

describe("orderbridge: the same defaults everywhere", () => {
  it("send without --to posts to ORDERBRIDGE_URL with the source's path; the secret comes from the service's variables", async () => {
    const c = await capture();
    try {
      const sp = await runCli(["send", "subscribe-pro", "minimal", "--json"], { ORDERBRIDGE_URL: c.url, SP_HMAC_SECRETS: " ,first-secret,second" });
      assert.equal(sp.code, 0, sp.stdout + sp.stderr);
      const rc = await runCli(["send", "recharge", "order-created", "--json"], { ORDERBRIDGE_URL: `${c.url}/`, RECHARGE_CLIENT_SECRETS: "rc-secret" });
      assert.equal(rc.code, 0, rc.stdout + rc.stderr);
      assert.deepEqual(
        c.seen.map((s) => s.url),
        ["/callbacks/subscribe-pro/order", "/webhooks/recharge/order/created"],
      );
    } finally {
      await c.close();
    }
  });

  it("send and check take the callback secret the service generated in DATA_DIR when SP_HMAC_SECRETS is not set", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-cli-secret-"));
    const c = await capture();
    try {
      const none = await runCli(["send", "subscribe-pro", "minimal", "--to", c.url], { DATA_DIR: dataDir });
      assert.equal(none.code, 2);
      assert.match(none.stderr, /No signing secret: pass --secret or set SP_HMAC_SECRETS/);
      const noCheckSecret = await runCli(["check", `${c.url}/sp`, "--safe", "--no-progress"], { DATA_DIR: dataDir });
      assert.equal(noCheckSecret.code, 2);
      assert.match(noCheckSecret.stderr, /No shared secret: pass --secret or set SP_HMAC_SECRETS/);
      fs.writeFileSync(path.join(dataDir, "sp-hmac-secret"), "generated-secret-value\n");
      const sent = await runCli(["send", "subscribe-pro", "minimal", "--to", c.url, "--json"], { DATA_DIR: dataDir });
      assert.equal(sent.code, 0, sent.stdout + sent.stderr);
      assert.equal(c.seen.length, 1);
    } finally {
      await c.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

for (const { kind, skip } of await storeKinds()) {
  describe(`orderbridge against a running service: paging, --json, --duplicate [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    let server: Server;
    let url: string;
    const ORDERS = 205;
    const EVENTS = 203;
    before(async () => {
      t = await startRechargeService(kind);
      server = http.createServer(t.app);
      url = await listen(server);
      for (let i = 0; i < ORDERS; i++) assert.equal((await t.callback(minimalOrder(`page-${i}`))).status, 201);
      // Topics orderbridge ignores are kept as events (state ignored) without any work.
      for (let i = 0; i < EVENTS; i++) assert.equal((await t.webhook("customer/updated", { customer: { id: i } })).status, 200);
    });
    after(async () => {
      await close(server);
      await t.stop();
    });
    const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { ORDERBRIDGE_URL: url, ADMIN_TOKEN, ...env });

    it("orders list follows the API's cursor past 200: --limit N gives N, --all gives every order, newest first", async () => {
      const some = await cli(["orders", "list", "--limit", "203", "--json"]);
      assert.equal(some.code, 0, some.stderr);
      const page = JSON.parse(some.stdout) as { orders: { orderNumber: string; salesOrderToken: string }[]; nextCursor: string | null };
      assert.equal(page.orders.length, 203);
      assert.notEqual(page.nextCursor, null, "two more are there");
      assert.deepEqual(
        page.orders.slice(0, 2).map((o) => o.salesOrderToken),
        [`page-${ORDERS - 1}`, `page-${ORDERS - 2}`],
      );

      const all = await cli(["orders", "list", "--all", "--json"]);
      const every = JSON.parse(all.stdout) as { orders: { salesOrderToken: string }[]; nextCursor: string | null };
      assert.equal(every.orders.length, ORDERS);
      assert.equal(new Set(every.orders.map((o) => o.salesOrderToken)).size, ORDERS, "no order twice");
      assert.equal(every.nextCursor, null);
      assert.deepEqual(
        every.orders.map((o) => o.salesOrderToken),
        Array.from({ length: ORDERS }, (_, i) => `page-${ORDERS - 1 - i}`),
      );

      // --cursor starts where a list ended: the table says how, and the rest follows without a gap.
      const first = await cli(["orders", "list", "--limit", "3"]);
      const hint = /more: add --cursor (\S+)/.exec(first.stdout);
      assert.ok(hint, first.stdout);
      const rest = await cli(["orders", "list", "--all", "--json", "--cursor", String(hint[1])]);
      assert.equal(rest.code, 0, rest.stderr);
      const after3 = JSON.parse(rest.stdout) as { orders: { salesOrderToken: string }[] };
      assert.deepEqual(
        after3.orders.map((o) => o.salesOrderToken),
        every.orders.slice(3).map((o) => o.salesOrderToken),
      );
    });

    it("the table pages as --json does; 50 without --limit, as before; --all excludes --limit", { skip: kind !== "sqlite" && "store-independent" }, async () => {
      const table = await cli(["orders", "list", "--all"]);
      assert.equal(table.stdout.trimEnd().split("\n").length, ORDERS + 2, "a header, a rule, a line per order, no 'more:' line");
      const standard = await cli(["orders", "list", "--json"]);
      assert.equal((JSON.parse(standard.stdout) as { orders: unknown[] }).orders.length, 50);
      const both = await cli(["orders", "list", "--all", "--limit", "5"]);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /--all and --limit exclude each other/);
    });

    it("events list follows the cursor past 200 too, each event once", async () => {
      const all = await cli(["events", "list", "--all", "--json", "--state", "ignored"]);
      assert.equal(all.code, 0, all.stderr);
      const every = JSON.parse(all.stdout) as { events: { id: string }[]; nextCursor: string | null };
      assert.equal(every.events.length, EVENTS);
      assert.equal(new Set(every.events.map((e) => e.id)).size, EVENTS);
      assert.equal(every.nextCursor, null);
      const some = await cli(["events", "list", "--limit", "201", "--json", "--state", "ignored"]);
      const page = JSON.parse(some.stdout) as { events: { id: string }[]; nextCursor: string | null };
      assert.deepEqual(
        page.events.map((e) => e.id),
        every.events.slice(0, 201).map((e) => e.id),
      );
      assert.notEqual(page.nextCursor, null);
    });

    it("--json is real on every command that prints: show prints a readable record without it, JSON with it", { skip: kind !== "sqlite" && "store-independent" }, async () => {
      const event = String(((await t.admin("/admin/events?limit=1")).body.events as { id: string }[])[0]?.id);
      const text = await cli(["events", "show", event]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`^id +${event}$`, "m"));
      assert.match(text.stdout, /^state +ignored$/m);
      assert.match(text.stdout, /^body:\n {2}\{\n {4}"customer": \{/m);
      assert.throws(() => JSON.parse(text.stdout));
      const json = await cli(["events", "show", event, "--json"]);
      assert.equal((JSON.parse(json.stdout) as { id: string }).id, event);
      assert.equal(json.stdout.trimEnd().split("\n").length, 1, "one line");

      const order = await cli(["orders", "show", "ABC-100271"]);
      assert.equal(order.code, 0, order.stderr);
      assert.match(order.stdout, /^orderNumber +ABC-100271$/m);
      assert.match(order.stdout, /^items:\n {2}platformOrderItemId +sku +name/m);
      assert.equal((JSON.parse((await cli(["orders", "show", "ABC-100271", "--json"])).stdout) as { orderNumber: string }).orderNumber, "ABC-100271");
    });

    it("send --duplicate 20 prints one answer and a summary; --json still prints every answer", { skip: kind !== "sqlite" && "store-independent" }, async () => {
      const before = await t.count("local_orders");
      const r = await cli(["send", "subscribe-pro", "full-order", "--duplicate", "20", "--concurrency", "5"], { SP_HMAC_SECRETS: SECRET });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(await t.count("local_orders"), before + 1);
      assert.equal(r.stdout.match(/^→ POST /gm)?.length, 20, `a line per answer: ${r.stdout}`);
      assert.equal(r.stdout.match(/^\{$/gm)?.length, 1, "the body once");
      assert.equal(r.stdout.match(/^→ POST \S+ {2}201 \d+ ms {2}\(the same answer as #\d+\)$/gm)?.length, 19);
      assert.match(r.stdout, /^sent 20, statuses: 201 ×20\n20 identical answers, 1 order \(ABC-\d+\)$/m);

      const json = await cli(["send", "subscribe-pro", "full-order", "--duplicate", "4", "--json"], { SP_HMAC_SECRETS: SECRET });
      const lines = json.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { i: number; status: number });
      assert.deepEqual(
        lines.map((l) => [l.i, l.status]),
        [
          [0, 201],
          [1, 201],
          [2, 201],
          [3, 201],
        ],
      );
    });

    it("migrate and config check print JSON with --json", async () => {
      const db = t.config.database;
      const env: Record<string, string> = {
        DATA_DIR: t.dataDir,
        ...(db.kind === "postgres" ? { DATABASE_URL: db.url, ...(db.schema === undefined ? {} : { DATABASE_SCHEMA: db.schema }) } : {}),
      };
      const m = await cli(["migrate", "--json"], env);
      assert.equal(m.code, 0, m.stderr);
      assert.deepEqual(JSON.parse(m.stdout), { database: kind, applied: [] });
      if (kind !== "sqlite") return;
      const c = await cli(["config", "check", "--json"], { ...env, SP_HMAC_SECRETS: "super-secret-value" });
      assert.equal(c.code, 0, c.stderr);
      const described = JSON.parse(c.stdout) as Record<string, unknown>;
      assert.equal(typeof described["subscribePro"], "object");
      assert.doesNotMatch(c.stdout, /super-secret-value/);
    });
  });
}
