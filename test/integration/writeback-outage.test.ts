import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { JOB_PUT_ORDER } from "../../src/recharge/handlers.js";
import { startPrivatePostgres } from "../helpers/private-postgres.js";
import { rcFixture, startRechargeService, waitFor } from "../helpers/recharge.js";

/*
 * Issue 13, item 10: a write-back whose PUT succeeded while the database went down is recorded as
 * soon as the database is back (the worker still holds the job), not repeated a lease later.
 * PostgreSQL only: it is the store that can go away and come back under a running service. Each run
 * has its own throwaway cluster (test/helpers/private-postgres.ts).
 */
describe("a write-back during a database outage", () => {
  it("is recorded done once PostgreSQL is back, well before its lease runs out, and its PUT is not repeated", { timeout: 90_000 }, async (t) => {
    const cluster = await startPrivatePostgres();
    if ("skip" in cluster) {
      t.skip(cluster.skip);
      return;
    }
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const svc = await startRechargeService("postgres", {
      env: {
        DATABASE_URL: cluster.url,
        DATABASE_SCHEMA: "ob_outage",
        // A lease far longer than the test may wait: before the fix the job sat out this lease.
        JOB_LEASE_MS: "60000",
        RECHARGE_TIMEOUT_MS: "30000",
      },
    });
    try {
      // The PUT reaches Recharge, which answers only after the database has gone down.
      svc.recharge.queue({ until: held });
      const body = rcFixture("2021-11", "order-created");
      const id = 830_000_001;
      body["order"]["id"] = id;
      assert.equal((await svc.webhook("order/created", body)).status, 200);
      await svc.recharge.waitForCalls(1, 15_000);
      await cluster.stop("fast");
      release();
      await sleep(1_500);
      await cluster.start();
      const backAt = Date.now();
      const job = await waitFor(
        "the write-back recorded done",
        async () => {
          const jobs = await svc.jobs({ kind: JOB_PUT_ORDER }).catch(() => []);
          return jobs.find((j) => j.resource_id === String(id) && j.state === "done");
        },
        20_000,
      );
      assert.ok(Date.now() - backAt < 20_000);
      assert.equal(job.attempts, 1, "recorded as the attempt that made the call");
      assert.equal(svc.recharge.calls.filter((c) => c.path === `/orders/${id}`).length, 1, "the PUT was made once");
      assert.ok(
        svc.logs.some((l) => l.includes("retrying until it is back")),
        "the log says the outcome waits for the database",
      );
    } finally {
      await svc.stop().catch(() => undefined);
      await cluster.destroy();
    }
  });
});
