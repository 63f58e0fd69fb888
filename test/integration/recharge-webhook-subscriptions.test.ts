import assert from "node:assert/strict";
import { describe, it } from "node:test";
import request from "supertest";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { createService, type Service } from "../../src/service.js";
import { runCli } from "../helpers/process.js";
import { sameDatabaseEnv, startRechargeService, type RechargeTestService } from "../helpers/recharge.js";
import { storeKinds } from "../helpers/stores.js";

/*
 * Issue 16, item 1: the store's Recharge webhooks against what orderbridge needs (the four topics,
 * an explicit version, at PUBLIC_URL): `orderbridge recharge webhooks status|sync`, and the check the
 * service makes at start and every RECHARGE_WEBHOOK_CHECK_INTERVAL (a metric, an error log line, a
 * repair with RECHARGE_WEBHOOKS_AUTOSYNC=true). Other apps' webhooks are never touched.
 */

const PUBLIC_URL = "https://orders.example.com";
const TOPICS = ["order/created", "order/processed", "order/updated", "checkout/processed"];
const silent = createLogger({ level: "error", format: "json", silent: true });

const sameDatabase = (t: RechargeTestService, extra: Record<string, string> = {}): Record<string, string> => sameDatabaseEnv(t, { PUBLIC_URL, ...extra });

const sample = (text: string, series: string): number | undefined => {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

for (const { kind, skip } of await storeKinds()) {
  describe(`Recharge webhook subscriptions [${kind}]`, { skip }, () => {
    it("orderbridge recharge webhooks: status tells, sync repairs (twice: no duplicates), other apps' webhooks untouched", { timeout: 90_000 }, async () => {
      const t = await startRechargeService(kind, { env: { RECHARGE_SWEEP_INTERVAL: "0" }, startRechargeTasks: false });
      try {
        const other = t.recharge.addWebhook({ address: "https://other-app.example/hooks", topic: "order/created", version: "2021-01" });
        t.recharge.addWebhook({ address: `${PUBLIC_URL}/webhooks/recharge/order/created`, topic: "order/created", version: "2021-01" });
        t.recharge.addWebhook({ address: "https://old-host.example/webhooks/recharge/order/updated", topic: "order/updated", version: "2021-11" });
        t.recharge.addWebhook({ address: `${PUBLIC_URL}/webhooks/recharge/order/updated`, topic: "order/updated", version: "2021-11" });
        const env = sameDatabase(t);

        const status = await runCli(["recharge", "webhooks", "status", "--json"], env);
        assert.equal(status.code, 1, `not ok: exit 1 ${status.stderr}`);
        const s = JSON.parse(status.stdout) as { ok: boolean; topics: { topic: string; state: string }[]; others: number };
        assert.deepEqual(
          s.topics.map((x) => [x.topic, x.state]),
          [
            ["order/created", "wrong_version"],
            ["order/processed", "missing"],
            ["order/updated", "duplicate"],
            ["checkout/processed", "missing"],
          ],
        );
        assert.equal(s.others, 1);

        const sync = await runCli(["recharge", "webhooks", "sync"], env);
        assert.equal(sync.code, 0, sync.stderr + sync.stdout);
        assert.match(sync.stdout, /done: create order\/processed/);
        assert.match(sync.stdout, /done: delete webhook \d+ \(order\/updated at https:\/\/old-host\.example/);
        const again = await runCli(["recharge", "webhooks", "sync", "--json"], env);
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(JSON.parse(again.stdout).applied, [], "idempotent");

        const ours = t.recharge.webhooks.filter((w) => w.id !== other.id);
        assert.deepEqual(ours.map((w) => [w.topic, w.address, w.version]).sort(), TOPICS.map((topic) => [topic, `${PUBLIC_URL}/webhooks/recharge/${topic}`, "2021-11"]).sort());
        assert.deepEqual(
          t.recharge.webhooks.find((w) => w.id === other.id),
          other,
          "another app's webhook is never touched",
        );
        const ok = await runCli(["recharge", "webhooks", "status"], env);
        assert.equal(ok.code, 0);
        assert.match(ok.stdout, /1 webhook\(s\) of other apps left alone\nok/);
        assert.equal(t.recharge.bucketRejections, 0);

        const noUrl = await runCli(["recharge", "webhooks", "status"], { ...env, PUBLIC_URL: "" });
        assert.equal(noUrl.code, 78);
        assert.match(noUrl.stderr, /PUBLIC_URL is not set/);
      } finally {
        await t.stop();
      }
    });

    it("the service's check: a deleted webhook is a metric and an error log line; with autosync two instances repair it once", { timeout: 60_000 }, async () => {
      const t = await startRechargeService(kind, {
        env: { PUBLIC_URL, RECHARGE_SWEEP_INTERVAL: "0", RECHARGE_WEBHOOK_TOPICS: "order/created,order/processed,order/updated" },
        startRechargeTasks: false,
      });
      const others: Service[] = [];
      try {
        const check = t.rechargeTasks.webhookCheck;
        assert.ok(check, "PUBLIC_URL and a token: the check exists");
        for (const topic of ["order/created", "order/processed", "order/updated"]) {
          t.recharge.addWebhook({ address: `${PUBLIC_URL}/webhooks/recharge/${topic}`, topic, version: "2021-11" });
        }
        assert.equal((await check.runOnce())?.ok, true);
        let metrics = (await request(t.app).get("/metrics")).text;
        assert.equal(sample(metrics, 'orderbridge_recharge_webhook_subscription_ok{topic="order/processed"}'), 1);

        // Recharge deletes one after 20 failed deliveries.
        const gone = t.recharge.webhooks.find((w) => w.topic === "order/processed");
        assert.ok(gone && t.recharge.deleteWebhook(gone.id));
        const r = await check.runOnce();
        assert.equal(r?.ok, false);
        metrics = (await request(t.app).get("/metrics")).text;
        assert.equal(sample(metrics, 'orderbridge_recharge_webhook_subscription_ok{topic="order/processed"}'), 0);
        assert.equal(sample(metrics, 'orderbridge_recharge_webhook_checks_total{result="problem"}'), 1);
        const line = t.logs
          .map((l) => JSON.parse(l) as { level: string; message: string; problems?: Record<string, string> })
          .find((l) => l.level === "error" && /Recharge webhooks/.test(l.message));
        assert.ok(line, "an error log line");
        assert.match(line.problems?.["order/processed"] ?? "", /no webhook for order\/processed/);
        assert.equal(t.recharge.webhooks.length, 2, "without autosync nothing is changed");

        // Two instances with autosync check at once: one repairs, under the lease.
        const env = sameDatabase(t, { RECHARGE_SWEEP_INTERVAL: "0", RECHARGE_WEBHOOKS_AUTOSYNC: "true", RECHARGE_WEBHOOK_TOPICS: "order/created,order/processed,order/updated" });
        for (let i = 0; i < 2; i++) others.push(await createService(loadConfig(env), silent, { startRechargeTasks: false }));
        await Promise.all(others.map((s) => s.rechargeTasks.webhookCheck?.runOnce()));
        await others[0]?.rechargeTasks.webhookCheck?.runOnce();
        assert.deepEqual(t.recharge.webhooks.map((w) => w.topic).sort(), ["order/created", "order/processed", "order/updated"], "no duplicate");
        assert.equal(t.recharge.webhooks.find((w) => w.topic === "order/processed")?.version, "2021-11");
        assert.equal((await check.runOnce())?.ok, true);
      } finally {
        for (const s of others) await s.close();
        await t.stop();
      }
    });
  });
}
