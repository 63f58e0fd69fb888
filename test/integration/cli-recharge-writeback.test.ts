import assert from "node:assert/strict";
import { runCli } from "../helpers/process.js";
import { describe, it } from "node:test";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { JOB_PUT_CHARGE, JOB_PUT_ORDER } from "../../src/recharge/handlers.js";
import { createService } from "../../src/service.js";
import { RC_SECRET, RC_TOKEN, rcFixture, startRechargeService, waitFor } from "../helpers/recharge.js";
import { storeKinds } from "../helpers/stores.js";

/*
 * Issue 13, item 11: orders placed while RECHARGE_WRITEBACK=off get their write-backs once it is
 * on, through `orderbridge recharge writeback --since`.
 */

for (const { kind, skip } of await storeKinds()) {
  describe(`orderbridge recharge writeback [${kind}]`, { skip }, () => {
    it("queues the write-backs of orders placed with write-back off, once; an instance with write-back on sends them", { timeout: 90_000 }, async () => {
      const t = await startRechargeService(kind, { env: { RECHARGE_WRITEBACK: "off" } });
      const dbEnv: Record<string, string> =
        t.config.database.kind === "sqlite"
          ? { DATA_DIR: t.dataDir }
          : { DATA_DIR: t.dataDir, DATABASE_URL: t.config.database.url, DATABASE_SCHEMA: t.config.database.schema ?? "" };
      const on = { ...dbEnv, NODE_ENV: "test", RECHARGE_CLIENT_SECRETS: RC_SECRET, RECHARGE_API_TOKEN: RC_TOKEN, RECHARGE_API_URL: t.recharge.url };
      try {
        const plain = rcFixture("2021-11", "order-created");
        plain["order"]["id"] = 840_000_001;
        const prepaid = rcFixture("2021-11", "order-created-prepaid-1");
        prepaid["order"]["id"] = 840_000_002;
        for (const body of [plain, prepaid]) assert.equal((await t.webhook("order/created", body)).status, 200);
        await t.settle();
        assert.equal((await t.admin("/admin/orders?source=recharge")).body.orders.length, 2);
        assert.equal((await t.jobs({ kind: JOB_PUT_ORDER })).length, 0, "write-back off: no write-back jobs");

        // Refused where write-back is off: the jobs could not be sent.
        const off = await runCli(["recharge", "writeback", "--since", "1h"], { ...on, RECHARGE_WRITEBACK: "off" });
        assert.equal(off.code, 78, off.stderr);
        assert.match(off.stderr, /write-back is off here/);
        const bad = await runCli(["recharge", "writeback", "--since", "yesterday"], on);
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /--since must be an ISO 8601 date/);

        const dry = await runCli(["recharge", "writeback", "--since", "1h", "--dry-run", "--json"], on);
        assert.equal(dry.code, 0, dry.stderr);
        assert.deepEqual({ ...JSON.parse(dry.stdout), since: undefined }, { since: undefined, dryRun: true, orders: 2, queued: 3, existing: {} });
        assert.equal((await t.jobs({ kind: JOB_PUT_ORDER })).length, 0, "a dry run queues nothing");

        const first = await runCli(["recharge", "writeback", "--since", new Date(Date.now() - 3_600_000).toISOString()], on);
        assert.equal(first.code, 0, first.stderr);
        assert.match(first.stdout, /2 Recharge order\(s\) placed since .*; queued 3 write-back\(s\)/);
        const again = await runCli(["recharge", "writeback", "--since", "1d", "--json"], on);
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(JSON.parse(again.stdout).existing, { pending: 3 });
        assert.equal(JSON.parse(again.stdout).queued, 0, "idempotent");
        // The instance with write-back off leaves them alone.
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(t.recharge.calls.length, 0);
        assert.deepEqual(
          (await t.jobs()).filter((j) => j.lane === "writeback").map((j) => j.state),
          ["pending", "pending", "pending"],
        );

        const writer = await createService(
          loadConfig({ ...on, SP_HMAC_SECRETS: "sp-secret-0123456789", WORKER_POLL_MS: "50" }),
          createLogger({ level: "error", format: "json", silent: true }),
        );
        try {
          await waitFor("3 write-backs done", async () => (await t.jobs()).filter((j) => j.lane === "writeback" && j.state === "done").length === 3);
        } finally {
          await writer.close();
        }
        const paths = t.recharge
          .succeeded()
          .map((c) => c.path)
          .sort();
        assert.deepEqual(paths, ["/charges/377750000", "/orders/840000001", "/orders/840000002"].sort());
        assert.equal((await t.jobs({ kind: JOB_PUT_CHARGE })).length, 1);
        const last = await runCli(["recharge", "writeback", "--since", "1d"], on);
        assert.match(last.stdout, /queued 0 write-back\(s\); already there: 3 done/);
      } finally {
        await t.stop();
      }
    });
  });
}
