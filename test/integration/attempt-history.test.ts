import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { JOB_PUT_ORDER, JOB_WEBHOOK } from "../../src/recharge/handlers.js";
import { prune, DAY_MS } from "../../src/store/retention.js";
import { close, listen } from "../../tools/stand-ins/loopback.js";
import { runCli } from "../helpers/process.js";
import { ADMIN_TOKEN } from "../helpers/service.js";
import { rcFixture, startRechargeService, waitFor, type RechargeTestService } from "../helpers/recharge.js";
import { storeKinds } from "../helpers/stores.js";

// Every run of an event or job is kept (job_attempts), not only the last error: the admin API
// shows the history of each, a finished job shows its outcome, and retention prunes a job's runs
// with it while a dead letter keeps its own.

type Attempt = {
  attempt: number;
  outcome: string;
  detail: string | null;
  remoteStatus: number | null;
  nextAttemptAt: string | null;
  startedAt: string;
  endedAt: string;
  durationMs: number;
};

let next = 720_000_000;
for (const { kind, skip } of await storeKinds()) {
  describe(`attempt history [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    before(async () => {
      t = await startRechargeService(kind);
    });
    after(() => t.stop());

    it("a write-back answered 500, then 429, then 200: three runs with their statuses, the retry times, and the outcome instead of the old error", async () => {
      t.recharge.queue({ status: 500 }, { status: 429, retryAfter: 1 });
      const id = next++;
      const body = structuredClone(rcFixture("2021-11", "order-created"));
      body["order"]["id"] = id;
      assert.equal((await t.webhook("order/created", body)).status, 200);
      await t.settle(30_000);

      const job = await waitFor("the write-back", async () => (await t.jobs({ kind: JOB_PUT_ORDER })).find((j) => j.resource_id === String(id) && j.state === "done"));
      const shown = (await t.admin(`/admin/events/${job.id}`)).body as { lastError: string | null; outcome: string; attemptHistory: Attempt[] };
      assert.equal(shown.lastError, null, "a finished job shows its outcome, not an old error");
      assert.match(shown.outcome, /^PUT \/orders\/\d+ → 200/);
      const h = shown.attemptHistory;
      assert.deepEqual(
        h.map((a) => [a.attempt, a.outcome, a.remoteStatus]),
        [
          [1, "retry", 500],
          [2, "retry", 429],
          [3, "done", 200],
        ],
      );
      assert.match(h[0]?.detail ?? "", /PUT \/orders\/\d+ → 500/);
      assert.match(h[2]?.detail ?? "", /→ 200/);
      for (const a of h.slice(0, 2)) assert.ok(a.nextAttemptAt !== null && Date.parse(a.nextAttemptAt) >= Date.parse(a.endedAt), "a retry says when it runs again");
      assert.equal(h[2]?.nextAttemptAt, null);
      assert.ok(Date.parse(h[2]?.startedAt ?? "") - Date.parse(h[1]?.endedAt ?? "") >= 950, "the 429's Retry-After: 1 was kept");
      for (const a of h) assert.equal(a.durationMs, Date.parse(a.endedAt) - Date.parse(a.startedAt));

      // The inbox event that placed the order: one run, no remote call.
      const event = (await t.jobs({ kind: JOB_WEBHOOK })).find((j) => j.resource_id === String(id));
      assert.ok(event);
      const ev = (await t.admin(`/admin/events/${event.id}`)).body as { attemptHistory: Attempt[] };
      assert.deepEqual(
        ev.attemptHistory.map((a) => [a.attempt, a.outcome, a.remoteStatus]),
        [[1, "done", null]],
      );

      if (kind === "sqlite") {
        // The CLI shows the same history as a table.
        const server = http.createServer(t.app);
        const url = await listen(server);
        try {
          const out = await runCli(["events", "show", job.id], { ORDERBRIDGE_URL: url, ADMIN_TOKEN });
          assert.equal(out.code, 0, out.stderr);
          assert.match(out.stdout, /attemptHistory:\n\s+attempt\s+outcome\s+remoteStatus/);
          assert.match(out.stdout, /\n\s+1\s+retry\s+500\s/);
          assert.match(out.stdout, /\n\s+3\s+done\s+200\s/);
        } finally {
          await close(server);
        }
      }
    });

    it("retention prunes a finished job's runs with it and keeps a dead letter's", async () => {
      t.recharge.queue({ status: 422, body: { errors: "no" } });
      const id = next++;
      const body = structuredClone(rcFixture("2021-11", "order-created"));
      body["order"]["id"] = id;
      await t.webhook("order/created", body);
      await t.settle(30_000);
      const dead = await waitFor("the dead write-back", async () => (await t.jobs({ kind: JOB_PUT_ORDER })).find((j) => j.resource_id === String(id) && j.state === "dead"));
      const count = async (jobId: string): Promise<number> =>
        Number(
          (
            await t.store.db
              .selectFrom("job_attempts")
              .select((eb) => eb.fn.countAll().as("n"))
              .where("job_id", "=", jobId)
              .executeTakeFirst()
          )?.n ?? 0,
        );
      assert.equal(await count(dead.id), 1);
      const finished = (await t.jobs({ kind: JOB_WEBHOOK })).filter((j) => j.state === "done");
      assert.ok(finished.length > 0);
      const before = await Promise.all(finished.map((j) => count(j.id)));
      assert.ok(before.every((n) => n >= 1));

      const later = Date.now() + 40 * DAY_MS;
      const dry = await prune(t.store.handle, { retentionDays: 30, now: later, dryRun: true });
      assert.ok(dry.jobAttempts.deleted >= finished.length, `a dry run counts the runs that would go (${dry.jobAttempts.deleted})`);
      assert.equal(await count(finished[0]?.id ?? ""), before[0], "and deletes nothing");
      const r = await prune(t.store.handle, { retentionDays: 30, now: later });
      assert.equal(r.jobAttempts.deleted, dry.jobAttempts.deleted, "the dry run counted what went");
      for (const j of finished) assert.equal(await count(j.id), 0, "a pruned job's runs go with it");
      assert.equal(await count(dead.id), 1, "a dead letter keeps its history");
    });
  });
}
