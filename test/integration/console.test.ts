import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { JOB_PUT_ORDER } from "../../src/recharge/handlers.js";
import { close, listen } from "../../tools/stand-ins/loopback.js";
import { rcFixture, startRechargeService, waitFor, type RechargeTestService } from "../helpers/recharge.js";
import { ADMIN_TOKEN, minimalOrder } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

// The console in a real browser (Debian's chromium through playwright-core): sign-in, each list, a
// search, a detail page, a replay and a bulk replay, a CSRF-less POST refused, sign-out — what the
// pages show checked against the database. UPDATE_SCREENSHOTS=1 writes the README's screenshots
// (docs/console/); otherwise they go to a temporary directory.

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) => fs.existsSync(p));
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const shots = process.env["UPDATE_SCREENSHOTS"] === "1" ? path.join(root, "docs", "console") : fs.mkdtempSync(path.join(os.tmpdir(), "ob-console-"));
const noBrowser = CHROMIUM === undefined ? "no Chromium found (install Debian's chromium, or set CHROMIUM_PATH)" : false;
if (noBrowser !== false) console.log(`console browser test: skipped: ${noBrowser}`);

let next = 730_000_000;
for (const { kind, skip } of await storeKinds()) {
  describe(`the console in a browser [${kind}]`, { skip: skip || noBrowser }, () => {
    let t: RechargeTestService;
    let server: http.Server;
    let url: string;
    let browser: Browser;
    let page: Page;
    const deadIds: string[] = [];

    const deadWriteBack = async (): Promise<string> => {
      // Nothing else running: the scripted 422 is this write-back's.
      await t.settle(20_000);
      t.recharge.queue({ status: 422, body: { errors: "stand-in refuses this order" } });
      const id = next++;
      const body = structuredClone(rcFixture("2021-11", "order-created"));
      body["order"]["id"] = id;
      assert.equal((await t.webhook("order/created", body)).status, 200);
      const job = await waitFor("a dead write-back", async () => (await t.jobs({ kind: JOB_PUT_ORDER })).find((j) => j.resource_id === String(id) && j.state === "dead"), 20_000);
      return job.id;
    };
    const shot = async (name: string): Promise<void> => {
      if (kind === "sqlite") await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
    };
    const dbCount = async (state: string): Promise<number> => (await t.jobs({ state })).length;

    before(async () => {
      // PUBLIC_URL: the webhook check runs (by hand here), and its finding shows as a banner.
      t = await startRechargeService(kind, { env: { PUBLIC_URL: "https://orderbridge.example" }, startRechargeTasks: false });
      server = http.createServer(t.app);
      url = await listen(server);
      assert.equal((await t.callback(minimalOrder("console-1"))).status, 201);
      assert.equal((await t.callback(minimalOrder("console-2", [{ productSku: "NOT-IN-CATALOG", qty: 1, subscription: { id: "sub-9" } }]))).status, 409);
      deadIds.push(await deadWriteBack());
      await t.callbackLog.flush();
      const { chromium } = await import("playwright-core");
      browser = await chromium.launch({ executablePath: CHROMIUM as string, args: ["--no-sandbox", "--disable-gpu"] });
      page = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
    });
    after(async () => {
      await browser?.close();
      if (server !== undefined) await close(server);
      await t?.stop();
    });

    it("asks for the admin token, refuses a wrong one, and signs in with a session cookie that scripts cannot read", async () => {
      await page.goto(`${url}/console`);
      assert.match(page.url(), /\/console\/sign-in$/);
      const csp = (await page.request.get(`${url}/console/sign-in`)).headers()["content-security-policy"] ?? "";
      assert.match(csp, /default-src 'none'/);
      assert.doesNotMatch(csp, /script-src/, "no script may run");
      await page.getByLabel("Admin token").fill("not-the-token");
      await page.getByRole("button", { name: "Sign in" }).click();
      assert.match(await page.getByRole("alert").innerText(), /not the admin token/);
      await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "Overview" }).waitFor();
      const cookie = (await page.context().cookies()).find((c) => c.name === "ob_console");
      assert.ok(cookie);
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, "Strict");
      assert.equal(cookie.path, "/console");
      assert.ok(cookie.expires > Date.now() / 1000);
      assert.equal(await page.getByTestId("dead").innerText(), String(await dbCount("dead")));
      assert.equal(await page.getByTestId("rate-wait").count(), 1, "the Recharge rate limit's state");
      assert.equal(await page.getByTestId("webhook-banner").count(), 0, "no banner before a check found a problem");
      // The stand-in has no webhook registered: the check finds every topic missing.
      const report = await t.rechargeTasks.webhookCheck?.runOnce();
      assert.equal(report?.ok, false);
      await page.reload();
      assert.match(await page.getByTestId("webhook-banner").innerText(), /webhook subscriptions need attention: order\/created/i);
      await shot("overview");
    });

    it("lists the callbacks, finds one by token, and shows its detail with the body masked", async () => {
      await page.getByRole("link", { name: "Callbacks" }).click();
      await page.getByRole("heading", { name: "Callbacks" }).waitFor();
      const rows = await page.locator("tbody tr").count();
      const logged = Number(
        (
          await t.store.db
            .selectFrom("sp_callback_log")
            .select((eb) => eb.fn.countAll().as("n"))
            .executeTakeFirst()
        )?.n,
      );
      assert.equal(rows, logged);
      await shot("callbacks");
      await page.getByLabel("Token, order number or email").fill("console-2");
      await page.getByRole("button", { name: "Filter" }).click();
      assert.equal(await page.locator("tbody tr").count(), 1);
      assert.match(await page.locator("tbody tr").innerText(), /409/);
      await page.locator("tbody tr a").first().click();
      assert.equal(await page.getByTestId("token").innerText(), "console-2");
      assert.match(await page.getByTestId("status").innerText(), /^409/);
      assert.match(await page.getByTestId("body").innerText(), /"payment": "\[masked\]"/);
      assert.match(await page.locator("main").innerText(), /sub-9/, "the reasons name the refused subscription");
    });

    it("lists the dead letters and replays one from its detail page, its attempts shown", async () => {
      // Filters by topic and date: the inbox event of today's order/created, none tomorrow.
      await page.goto(`${url}/console/events`);
      await page.getByLabel("Topic").selectOption("order/created");
      await page.getByLabel("From").first().fill(new Date().toISOString().slice(0, 10));
      await page.getByRole("button", { name: "Filter" }).click();
      const today = await page.locator("tbody tr").count();
      assert.equal(today, (await t.jobs({})).filter((j) => j.topic === "order/created").length);
      await page.goto(`${url}/console/events?topic=order%2Fcreated&from=${new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)}`);
      assert.equal(await page.locator("tbody tr").count(), 0);
      await page.goto(`${url}/console/events?state=dead`);
      const listed = await page.locator("tbody tr").count();
      assert.equal(listed, await dbCount("dead"));
      await page.getByRole("link", { name: deadIds[0] as string }).click();
      assert.equal(await page.getByTestId("state").innerText(), "dead");
      const attempts = page.locator("table", { has: page.locator("caption", { hasText: "Attempts" }) }).locator("tbody tr");
      assert.equal(await attempts.count(), 1);
      assert.match(await attempts.first().innerText(), /dead\s+422/);
      await shot("event");
      await page.getByRole("button", { name: "Replay", exact: true }).click();
      assert.match(await page.getByRole("status").innerText(), /Replayed/);
      await waitFor("the replay done", async () => (await t.jobs({ kind: JOB_PUT_ORDER })).find((j) => j.id === deadIds[0] && j.state === "done"));
      await page.reload();
      assert.equal(await page.getByTestId("state").innerText(), "done");
    });

    it("replays every dead letter that matches a filter after showing the count", async () => {
      deadIds.push(await deadWriteBack(), await deadWriteBack());
      const dead = await dbCount("dead");
      assert.ok(dead >= 2);
      await page.goto(`${url}/console/events?state=dead`);
      await page.getByRole("button", { name: "Replay all that match…" }).click();
      assert.match(await page.getByTestId("bulk-count").innerText(), new RegExp(`^${dead} event\\(s\\) match`));
      await page.getByRole("button", { name: `Replay ${dead} event(s)` }).click();
      await waitFor("no dead letter left", async () => (await dbCount("dead")) === 0);
      await t.settle(20_000);
      assert.equal(await dbCount("dead"), 0, "each replayed write-back succeeded");
    });

    it("refuses a POST without the CSRF token and changes nothing", async () => {
      const id = await deadWriteBack();
      const res = await page.request.post(`${url}/console/events/${id}/replay`, { form: { note: "x" }, maxRedirects: 0 });
      assert.equal(res.status(), 403);
      assert.match(await res.text(), /CSRF/);
      assert.equal((await t.jobs({ kind: JOB_PUT_ORDER })).find((j) => j.id === id)?.state, "dead", "not replayed");
      // Marked resolved from the page (with its token), it is not run again.
      await page.goto(`${url}/console/events/${id}`);
      await page.getByLabel("Note").fill("refunded by hand");
      await page.getByRole("button", { name: "Mark resolved without replaying" }).click();
      const job = (await t.jobs({ kind: JOB_PUT_ORDER })).find((j) => j.id === id);
      assert.equal(job?.state, "skipped");
      assert.match(job?.outcome ?? "", /resolved in the console without a replay: refunded by hand/);
    });

    it("records every action and shows it; the orders page shows the order with its lines", async () => {
      await page.getByRole("link", { name: "Actions" }).click();
      const text = await page.locator("tbody").innerText();
      for (const a of ["sign-in", "replay", "bulk-replay", "resolve"]) assert.match(text, new RegExp(`\\b${a}\\b`));
      await shot("actions");
      const stored = await t.store.db.selectFrom("console_actions").select("action").execute();
      assert.equal(await page.locator("tbody tr").count(), stored.length);
      await page.getByRole("link", { name: "Orders" }).click();
      await page.getByLabel("Order number, token or Recharge order id").fill("console-1");
      await page.getByRole("button", { name: "Search" }).click();
      assert.equal(await page.locator("tbody tr").count(), 1);
      await page.locator("tbody tr a").first().click();
      assert.match(await page.locator("main").innerText(), /RUBY-RED/);
    });

    it("pages a long list: 50 a page, Next page goes on with the same filter, each callback once", async () => {
      for (let i = 0; i < 55; i++) assert.equal((await t.callback(minimalOrder(`console-page-${i}`))).status, 201);
      await t.callbackLog.flush();
      const logged = Number(
        (
          await t.store.db
            .selectFrom("sp_callback_log")
            .select((eb) => eb.fn.countAll().as("n"))
            .where("status", "=", 201)
            .executeTakeFirst()
        )?.n,
      );
      await page.goto(`${url}/console/callbacks?status=201`);
      const first = await page.locator("tbody tr").allInnerTexts();
      assert.equal(first.length, 50);
      await page.getByRole("link", { name: "Next page" }).click();
      assert.match(page.url(), /status=201&cursor=/);
      const second = await page.locator("tbody tr").allInnerTexts();
      assert.equal(first.length + second.length, logged);
      assert.equal(new Set([...first, ...second]).size, logged, "no row twice");
      assert.equal(await page.getByRole("link", { name: "Next page" }).count(), 0, "the last page says no more");
      // The orders page the same way: 50, then the rest.
      const orders = Number(
        (
          await t.store.db
            .selectFrom("local_orders")
            .select((eb) => eb.fn.countAll().as("n"))
            .executeTakeFirst()
        )?.n,
      );
      await page.goto(`${url}/console/orders`);
      const firstOrders = await page.locator("tbody tr").allInnerTexts();
      assert.equal(firstOrders.length, 50);
      await page.getByRole("link", { name: "Next page" }).click();
      const restOrders = await page.locator("tbody tr").allInnerTexts();
      assert.equal(firstOrders.length + restOrders.length, orders);
      assert.equal(new Set([...firstOrders, ...restOrders]).size, orders);
    });

    it("signs out: the old cookie no longer opens a page", async () => {
      const cookie = (await page.context().cookies()).find((c) => c.name === "ob_console");
      await page.getByRole("button", { name: "Sign out" }).click();
      assert.match(page.url(), /\/console\/sign-in$/);
      const replayed = await fetch(`${url}/console/events`, { headers: { cookie: `ob_console=${cookie?.value ?? ""}` }, redirect: "manual" });
      assert.equal(replayed.status, 303);
      assert.match(replayed.headers.get("location") ?? "", /\/console\/sign-in$/);
    });
  });
}
