import assert from "node:assert/strict";
import { runCli } from "../helpers/process.js";
import { after, before, describe, it } from "node:test";
import type { Kysely } from "kysely";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { openStore } from "../../src/store/db.js";
import { DAY_MS, prune, type PruneStep } from "../../src/store/retention.js";
import type { Database, SpCallbackRow } from "../../src/store/schema.js";
import type { EventState } from "../../src/store/events.js";
import { rcFixture, startRechargeService, waitFor, type RechargeTestService } from "../helpers/recharge.js";
import { minimalOrder, startService, type TestService } from "../helpers/service.js";
import { StandInPlatform } from "../helpers/stand-in-platform.js";
import { freshDatabase, storeKinds } from "../helpers/stores.js";

const silent = createLogger({ level: "error", format: "json", silent: true });
const OLD = (now: number): number => now - 40 * DAY_MS;
const RECENT = (now: number): number => now - 10 * DAY_MS;

/** A Recharge inbox event; unless ignored, with its processing job in `state`. */
async function addJob(db: Kysely<Database>, id: string, state: EventState, updatedAt: number): Promise<void> {
  await db
    .insertInto("recharge_inbox")
    .values({
      id,
      source: "webhook",
      topic: "order/created",
      topic_source: "path",
      dedupe_key: `dk:${id}`,
      body_hash: `bh:${id}`,
      resource_id: id,
      api_version: "2021-11",
      body: '{"order":{"shipping_address":{"first_name":"Jane"}}}',
      ignored_reason: state === "ignored" ? "topic order/created is not handled" : null,
      correlation_id: null,
      received_at: updatedAt,
    })
    .execute();
  if (state === "ignored") return;
  await db
    .insertInto("jobs")
    .values({
      id,
      kind: "recharge.webhook",
      lane: "inbox",
      dedupe_key: null,
      resource_id: id,
      payload: JSON.stringify({ eventId: id }),
      state,
      attempts: 1,
      max_attempts: 20,
      run_at: updatedAt,
      locked_by: state === "running" ? "w_gone" : null,
      lease_until: state === "running" ? updatedAt : null,
      last_error: null,
      outcome: null,
      correlation_id: null,
      created_at: updatedAt,
      updated_at: updatedAt,
    })
    .execute();
}

async function addCallback(db: Kysely<Database>, key: string, state: SpCallbackRow["state"], updatedAt: number): Promise<void> {
  await db
    .insertInto("sp_callbacks")
    .values({
      idempotency_key: key,
      body_hash: `bh:${key}`,
      state,
      attempt_id: `a:${key}`,
      lease_until: updatedAt,
      status: state === "processing" ? null : 201,
      response_body: state === "processing" ? null : '{"orderNumber":"X","orderDetails":{"shippingAddress":{"firstName":"Jane"}}}',
      order_number: state === "done" ? `OB-${key}` : null,
      request_id: "r",
      created_at: updatedAt,
      updated_at: updatedAt,
    })
    .execute();
}

/** "jobs": the events left (jobs and inbox events, each id once); "inbox": the inbox events alone. */
const ids = async (db: Kysely<Database>, table: "jobs" | "inbox" | "sp_callbacks"): Promise<string[]> => {
  if (table === "sp_callbacks") return (await db.selectFrom("sp_callbacks").select("idempotency_key").orderBy("idempotency_key").execute()).map((r) => r.idempotency_key);
  const inbox = (await db.selectFrom("recharge_inbox").select("id").execute()).map((r) => r.id);
  if (table === "inbox") return inbox.sort();
  const jobs = (await db.selectFrom("jobs").select("id").execute()).map((r) => r.id);
  return [...new Set([...jobs, ...inbox])].sort();
};

for (const { kind, skip } of await storeKinds()) {
  describe(`retention [${kind}]`, { skip }, () => {
    let t: TestService;
    before(async () => {
      t = await startService(kind);
    });
    after(() => t.stop());

    it("deletes finished jobs and retryable callbacks older than the retention, drops placed answers' bodies, keeps the rest", async () => {
      const db = t.store.db;
      const now = Date.now();
      for (const state of ["done", "skipped", "ignored", "dead", "pending", "running"] as const) {
        await addJob(db, `old-${state}`, state, OLD(now));
        await addJob(db, `new-${state}`, state, RECENT(now));
      }
      for (const state of ["done", "retryable", "uncertain", "processing"] as const) {
        await addCallback(db, `sp:old-${state}`, state, OLD(now));
        await addCallback(db, `sp:new-${state}`, state, RECENT(now));
      }
      const placed = await t.callback(minimalOrder("ret-local"));
      assert.equal(placed.status, 201);

      const r = await prune(t.store.handle, { retentionDays: 30, now });
      assert.deepEqual(r.jobs, { deleted: 2, done: 1, skipped: 1 });
      assert.deepEqual(r.rechargeInbox, { deleted: 3, ignored: 1, processed: 2 }, "the ignored event, and the events of the pruned jobs");
      assert.deepEqual(r.spCallbacks, { deleted: 1, answersDropped: 1 });
      assert.deepEqual(await ids(db, "jobs"), [
        "new-dead",
        "new-done",
        "new-ignored",
        "new-pending",
        "new-running",
        "new-skipped",
        "old-dead",
        "old-pending",
        "old-running", // dead letters until replayed; unfinished never
      ]);
      assert.deepEqual(await ids(db, "inbox"), await ids(db, "jobs"), "an event stays as long as its job");
      assert.deepEqual(await ids(db, "sp_callbacks"), [
        "sp:new-done",
        "sp:new-processing",
        "sp:new-retryable",
        "sp:new-uncertain",
        "sp:old-done",
        "sp:old-processing",
        "sp:old-uncertain",
        "sp:ret-local",
      ]);
      const tombstone = await db.selectFrom("sp_callbacks").selectAll().where("idempotency_key", "=", "sp:old-done").executeTakeFirstOrThrow();
      assert.equal(tombstone.state, "pruned");
      assert.equal(tombstone.response_body, null, "the body, with the customer's name and address, is gone");
      assert.deepEqual([tombstone.body_hash, tombstone.status, tombstone.order_number], ["bh:sp:old-done", 201, "OB-sp:old-done"]);
      const uncertain = await db.selectFrom("sp_callbacks").selectAll().where("idempotency_key", "=", "sp:old-uncertain").executeTakeFirstOrThrow();
      assert.equal(uncertain.state, "uncertain");
      assert.notEqual(uncertain.response_body, null, "uncertain rows are kept whole");
      assert.equal(await t.count("local_orders"), 1, "orders are never pruned");

      const again = await prune(t.store.handle, { retentionDays: 30, now });
      assert.deepEqual([again.jobs.deleted, again.spCallbacks.deleted, again.spCallbacks.answersDropped], [0, 0, 0], "a second run finds nothing");
      await db.deleteFrom("jobs").execute();
      await db.deleteFrom("recharge_inbox").execute();
      await db.deleteFrom("sp_callbacks").where("idempotency_key", "like", "sp:%-%").where("idempotency_key", "!=", "sp:ret-local").execute();
    });

    it("a retry after its stored answer was pruned gets the same order, byte for byte, and no second one (local platform)", async () => {
      const order = minimalOrder("ret-retry", [
        { productSku: "RUBY-RED", qty: 2, subscription: { id: "s1" } },
        { productSku: "EARL-GREY", qty: 1, subscription: { id: "s2" } },
      ]);
      const first = await t.callback(order);
      assert.equal(first.status, 201);
      const orders = await t.count("local_orders");
      const r = await prune(t.store.handle, { retentionDays: 30, now: Date.now() + 31 * DAY_MS });
      assert.ok(r.spCallbacks.answersDropped >= 1);

      const retry = await t.callback(order);
      assert.equal(retry.status, 201);
      assert.equal(retry.text, first.text, "the same answer, from the same order");
      assert.equal(await t.count("local_orders"), orders, "no second order");
      const row = await t.store.db.selectFrom("sp_callbacks").selectAll().where("idempotency_key", "=", "sp:ret-retry").executeTakeFirstOrThrow();
      assert.equal(row.state, "done", "answered and stored again");
      assert.equal(row.response_body, first.text);

      await prune(t.store.handle, { retentionDays: 30, now: Date.now() + 31 * DAY_MS });
      const other = await t.callback({ ...order, items: [{ productSku: "EARL-GREY", qty: 5, subscription: { id: "s9" } }] });
      assert.equal(other.status, 409, "the pruned key stays bound to its order's body");
      assert.equal(other.body.errorCode, "idempotency_key_reused");
      assert.equal(await t.count("local_orders"), orders);
    });

    it("prunes in batches of at most batchSize rows; two pruners at once delete each row once", async () => {
      const db = t.store.db;
      const now = Date.now();
      for (let i = 0; i < 25; i++) await addJob(db, `batch-${String(i).padStart(2, "0")}`, "done", OLD(now));
      const batches: [PruneStep, number][] = [];
      const dry = await prune(t.store.handle, { retentionDays: 30, now, dryRun: true, onBatch: (s, n) => batches.push([s, n]) });
      assert.equal(dry.jobs.done, 25, "the dry run counts");
      assert.equal((await ids(db, "jobs")).length, 25, "and changes nothing");
      assert.equal(batches.length, 0, "no batches");
      const r = await prune(t.store.handle, { retentionDays: 30, now, batchSize: 10, onBatch: (s, n) => batches.push([s, n]) });
      assert.equal(r.jobs.done, 25);
      assert.deepEqual(
        batches.filter(([s]) => s === "jobs.done").map(([, n]) => n),
        [10, 10, 5],
      );

      for (let i = 0; i < 60; i++) await addJob(db, `twice-${String(i).padStart(2, "0")}`, "skipped", OLD(now));
      const both = await Promise.all([0, 1].map(() => prune(t.store.handle, { retentionDays: 30, now, batchSize: 7 })));
      assert.equal(both[0].jobs.skipped + both[1].jobs.skipped, 60);
      assert.deepEqual(await ids(db, "jobs"), []);
    });

    it("prunes the console's refused sign-ins (anyone's wrong tokens) and keeps what operators did", async () => {
      // Each wrong token from anywhere was a row kept for ever: a guesser could grow the table without end.
      const db = t.store.db;
      const now = Date.now();
      const action = (id: string, what: string, at: number) => ({ id, at, session_id: "-", action: what, target: null, detail: null, client_address: "203.0.113.30" });
      await db
        .insertInto("console_actions")
        .values([
          action("act-old-refused", "sign-in-refused", OLD(now)),
          action("act-new-refused", "sign-in-refused", RECENT(now)),
          action("act-old-sign-in", "sign-in", OLD(now)),
          action("act-old-replay", "replay", OLD(now)),
        ])
        .execute();
      const dry = await prune(t.store.handle, { retentionDays: 30, now, dryRun: true });
      assert.deepEqual(dry.consoleActions, { deleted: 1 });
      const r = await prune(t.store.handle, { retentionDays: 30, now });
      assert.deepEqual(r.consoleActions, { deleted: 1 });
      const left = await db.selectFrom("console_actions").select("id").where("id", "like", "act-%").orderBy("id").execute();
      assert.deepEqual(
        left.map((x) => x.id),
        ["act-new-refused", "act-old-replay", "act-old-sign-in"],
      );
      await db.deleteFrom("console_actions").where("id", "like", "act-%").execute();
    });

    it("refuses a retention shorter than a week", async () => {
      await assert.rejects(prune(t.store.handle, { retentionDays: 3, now: Date.now() }), /at least 7 days/);
    });
  });

  describe(`retention with a remote platform [${kind}]`, { skip }, () => {
    it("a retry after pruning asks the platform under the same key; a failed retry keeps the key bound to its body", async () => {
      const platform = new StandInPlatform();
      const t = await startService(kind, { platform, env: { PLATFORM_DEADLINE_MS: "300" } });
      try {
        const order = minimalOrder("ret-remote");
        const first = await t.callback(order);
        assert.equal(first.status, 201);
        assert.equal(platform.calls, 1);
        await prune(t.store.handle, { retentionDays: 30, now: Date.now() + 31 * DAY_MS });

        platform.mode = "down";
        const down = await t.callback(order);
        assert.equal(down.status, 503);
        const other = await t.callback({ ...order, customerEmail: "someone-else@example.com" });
        assert.equal(other.status, 409, "the platform's refusal did not release the key of a placed order");
        assert.equal(other.body.errorCode, "idempotency_key_reused");

        platform.mode = "up";
        const retry = await t.callback(order);
        assert.equal(retry.status, 201);
        assert.equal(retry.body.orderNumber, first.body.orderNumber, "the platform's idempotency answers the order it placed");
        assert.equal(platform.placed.size, 1, "no second order");
        const calls = platform.calls;
        const again = await t.callback(order);
        assert.equal(again.text, retry.text);
        assert.equal(platform.calls, calls, "stored again: the next retry is answered without the platform");
      } finally {
        await t.stop();
      }
    });
  });

  describe(`retention and Recharge [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    before(async () => {
      t = await startRechargeService(kind);
    });
    after(() => t.stop());

    it("a re-delivery of a pruned event is accepted as new and places nothing: recharge_orders is kept", async () => {
      const body = rcFixture("2021-11", "order-created");
      body["order"]["id"] = 770001;
      const first = await t.webhook("order/created", body);
      assert.equal(first.body.status, "accepted");
      await t.settle();
      assert.equal((await t.jobs({ state: "done" })).length, 2, "the event and its write-back");
      const r = await prune(t.store.handle, { retentionDays: 30, now: Date.now() + 31 * DAY_MS });
      assert.equal(r.jobs.done, 2);

      const again = await t.webhook("order/created", body);
      assert.equal(again.body.status, "accepted", "its dedupe keys went with it");
      assert.notEqual(again.body.eventId, first.body.eventId);
      await t.settle();
      const job = await t.job(String(again.body.eventId));
      assert.equal(job.state, "done");
      assert.match(String(job.outcome), /^already placed as ABC-\d+/);
      assert.equal(await t.count("local_orders"), 1);
      assert.equal(t.recharge.succeeded().filter((c) => c.path === "/orders/770001").length, 1, "written back once");
    });
  });

  describe(`the service's pruner [${kind}]`, { skip }, () => {
    it("prunes soon after start and then every PRUNE_INTERVAL_MS, and stops with the service", async () => {
      const t = await startService(kind, { env: { PRUNE_INTERVAL_MS: "1000" }, firstPruneDelayMs: 0 });
      try {
        const now = Date.now();
        await addJob(t.store.db, "svc-old", "done", OLD(now));
        await addJob(t.store.db, "svc-new", "done", RECENT(now));
        await addCallback(t.store.db, "sp:svc-old", "retryable", OLD(now));
        await waitFor("the pruner", async () => (await ids(t.store.db, "jobs")).length === 1 && (await ids(t.store.db, "sp_callbacks")).length === 0);
        assert.deepEqual(await ids(t.store.db, "jobs"), ["svc-new"]);
        // It says what it pruned (in one run or two, as the rows came in while it ran).
        const pruned = async () => {
          type Pruned = { message: string; jobs: { done: number }; sp_callbacks: { deleted: number } };
          const lines = t.logs.map((l) => JSON.parse(l) as Pruned).filter((l) => l["message"] === "pruned what finished before the retention");
          const sum = (f: (l: Pruned) => number): number => lines.reduce((n, l) => n + f(l), 0);
          return sum((l) => l["jobs"]["done"]) === 1 && sum((l) => l["sp_callbacks"]["deleted"]) === 1;
        };
        await waitFor("the pruner's log line", pruned);
      } finally {
        await t.stop();
      }
    });

    it("says what it pruned when all it pruned was the runs of jobs that went before (it said nothing to prune)", async () => {
      const t = await startService(kind, { env: { PRUNE_INTERVAL_MS: "1000" }, firstPruneDelayMs: 0 });
      try {
        const ended = OLD(Date.now());
        await t.store.db
          .insertInto("job_attempts")
          .values({
            id: "att-orphan",
            job_id: "job-pruned-before",
            attempt: 1,
            outcome: "done",
            detail: null,
            remote_status: null,
            next_run_at: null,
            worker_id: "w1",
            started_at: ended - 5,
            ended_at: ended,
          })
          .execute();
        await waitFor("the pruner", async () => (await t.store.db.selectFrom("job_attempts").select("id").execute()).length === 0);
        await waitFor("its log line", async () =>
          t.logs.some((l) => {
            const line = JSON.parse(l) as { message: string; job_attempts?: { deleted: number } };
            return line.message === "pruned what finished before the retention" && line.job_attempts?.deleted === 1;
          }),
        );
      } finally {
        await t.stop();
      }
    });

    it("RETENTION_DAYS=0 keeps everything", async () => {
      const t = await startService(kind, { env: { RETENTION_DAYS: "0", PRUNE_INTERVAL_MS: "1000" }, firstPruneDelayMs: 0 });
      try {
        await addJob(t.store.db, "keep-old", "done", OLD(Date.now()) - 3650 * DAY_MS);
        await new Promise((r) => setTimeout(r, 1500));
        assert.deepEqual(await ids(t.store.db, "jobs"), ["keep-old"]);
      } finally {
        await t.stop();
      }
    });
  });

  describe(`orderbridge prune [${kind}]`, { skip }, () => {
    it("--dry-run counts, prune deletes and prints per table, --json for scripts; a too-short retention is refused", async () => {
      const fresh = freshDatabase(kind);
      try {
        const store = await openStore(loadConfig(fresh.env).database, silent);
        const now = Date.now();
        try {
          await addJob(store.db, "cli-done", "done", OLD(now));
          await addJob(store.db, "cli-ignored", "ignored", OLD(now));
          await addJob(store.db, "cli-dead", "dead", OLD(now));
          await addCallback(store.db, "sp:cli-done", "done", OLD(now));
          await addCallback(store.db, "sp:cli-retryable", "retryable", OLD(now));
          await store.db
            .insertInto("console_actions")
            .values({ id: "act-cli-refused", at: OLD(now), session_id: "-", action: "sign-in-refused", target: null, detail: null, client_address: "203.0.113.31" })
            .execute();
        } finally {
          await store.close();
        }
        const env = { ...fresh.env, NODE_ENV: "production" }; // no callback secret needed to prune

        const dry = await runCli(["prune", "--dry-run", "--json"], env);
        assert.equal(dry.code, 0, dry.stderr);
        const counted = JSON.parse(dry.stdout) as Record<string, unknown>;
        assert.equal(counted["dryRun"], true);
        assert.deepEqual(counted["jobs"], { deleted: 1, done: 1, skipped: 0 });
        assert.deepEqual(counted["recharge_inbox"], { deleted: 2, ignored: 1, processed: 1 });

        const text = await runCli(["prune"], env);
        assert.equal(text.code, 0, text.stderr);
        assert.match(text.stdout, new RegExp(`^${kind}: what finished before \\S+ \\(30 days\\)`, "m"));
        assert.match(text.stdout, /^jobs +1 deleted \(done 1, skipped 0; dead letters are kept\)/m);
        assert.match(text.stdout, /^inbox +2 deleted \(Recharge events: ignored 1, processed 1 whose job is gone\)/m);
        assert.match(text.stdout, /^sp_callbacks +1 deleted \(retryable/m);
        assert.match(text.stdout, /^sp_callbacks +1 lost their stored answer/m);
        assert.match(text.stdout, /^console +1 deleted \(refused sign-ins/m);

        const json = await runCli(["prune", "--json", "--days", "7"], env);
        assert.equal(json.code, 0, json.stderr);
        const none = JSON.parse(json.stdout) as Record<string, unknown>;
        assert.equal(none["retentionDays"], 7);
        assert.deepEqual(none["sp_callbacks"], { deleted: 0, answersDropped: 0 });
        assert.deepEqual(none["console_actions"], { deleted: 0 });

        const check = await openStore(loadConfig(fresh.env).database, silent);
        try {
          assert.deepEqual(await ids(check.db, "jobs"), ["cli-dead"]);
          assert.deepEqual(await ids(check.db, "sp_callbacks"), ["sp:cli-done"]);
        } finally {
          await check.close();
        }

        const short = await runCli(["prune", "--days", "3"], env);
        assert.equal(short.code, 2);
        assert.match(short.stderr, /--days must be at least 7/);
        const badEnv = await runCli(["prune"], { ...env, RETENTION_DAYS: "3" });
        assert.equal(badEnv.code, 78);
        assert.match(badEnv.stderr, /RETENTION_DAYS must be 0 \(keep everything\) or at least 7/);
      } finally {
        await fresh.cleanup();
      }
    });
  });
}
