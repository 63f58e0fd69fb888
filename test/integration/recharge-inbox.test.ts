import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sql } from "kysely";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { JOB_PUT_ORDER, JOB_WEBHOOK } from "../../src/recharge/handlers.js";
import { eventBodyHash, eventDedupeKey } from "../../src/recharge/receive.js";
import { openStore } from "../../src/store/db.js";
import { getEvent, listEvents } from "../../src/store/events.js";
import { rcFixture, startRechargeService, waitFor, type RechargeTestService } from "../helpers/recharge.js";
import { freshDatabase, storeKinds } from "../helpers/stores.js";

// The Recharge inbox is the receiver's own table (recharge_inbox): a webhook's topic, body and
// duplicate keys live there, the queue (jobs) holds only the processing of a handled event (the job
// of the same id) and the write-backs; an ignored event is recorded in the inbox and is no job.

const silent = createLogger({ level: "error", format: "json", silent: true });
type Obj = Record<string, unknown>;

const withId = (id: number): Obj => {
  const body = rcFixture("2021-11", "order-created");
  body["order"]["id"] = id;
  return body;
};

for (const { kind, skip } of await storeKinds()) {
  describe(`the Recharge inbox [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    before(async () => {
      t = await startRechargeService(kind, { startWorker: false });
    });
    after(() => t.stop());

    const count = async (table: "jobs" | "recharge_inbox"): Promise<number> =>
      Number(
        (
          await t.store.db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll<number>().as("n"))
            .executeTakeFirstOrThrow()
        ).n,
      );

    it("an accepted webhook is an inbox event and its processing job of the same id; a duplicate adds neither; an ignored one is no job", async () => {
      const [jobs, inbox] = [await count("jobs"), await count("recharge_inbox")];
      const accepted = await t.webhook("order/created", withId(880_000_001));
      assert.equal(accepted.body.status, "accepted");
      const id = String(accepted.body.eventId);
      const event = await t.store.db.selectFrom("recharge_inbox").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
      assert.equal(event.topic, "order/created");
      assert.equal(event.source, "webhook");
      assert.equal(event.topic_source, "path");
      assert.equal(event.api_version, "2021-11");
      assert.equal(event.ignored_reason, null);
      assert.equal(event.body, JSON.stringify(withId(880_000_001)), "the body as it came");
      const job = await t.store.db.selectFrom("jobs").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
      assert.equal(job.kind, JOB_WEBHOOK);
      assert.deepEqual(JSON.parse(job.payload), { eventId: id });
      assert.equal(job.dedupe_key, null, "the inbox holds the keys");

      const dup = await t.webhook("order/created", withId(880_000_001));
      assert.equal(dup.body.status, "duplicate");
      assert.equal(dup.body.eventId, id);

      const ignored = await t.webhook("subscription/created", { subscription: { id: 1 } });
      assert.equal(ignored.body.status, "ignored");
      const ignoredId = String(ignored.body.eventId);
      assert.equal(await count("jobs"), jobs + 1, "one job: the accepted event's");
      assert.equal(await count("recharge_inbox"), inbox + 2, "two events: the accepted one and the ignored one");
      const shown = await getEvent(t.store.handle, ignoredId);
      assert.equal(shown?.state, "ignored");
      assert.equal(shown?.outcome, "topic subscription/created is not handled");
      assert.equal(shown?.body, JSON.stringify({ subscription: { id: 1 } }));
    });

    it("replaying an ignored event is refused with 409 saying why, and a bulk replay of ignored events matches none", async () => {
      const ignored = await t.webhook("shop/update", { shop: { id: 1 } });
      const id = String(ignored.body.eventId);
      const res = await t.adminPost(`/admin/events/${id}/replay`);
      assert.equal(res.status, 409, res.text);
      assert.match(res.body.errorMessage, /was ignored \(topic shop\/update is not handled\): it is recorded, not processed, so there is nothing to replay/);
      assert.equal((await getEvent(t.store.handle, id))?.state, "ignored", "unchanged");
      const bulk = await t.adminPost("/admin/events/replay?state=ignored");
      assert.equal(bulk.status, 202, bulk.text);
      assert.equal(bulk.body.replayed, 0);
      assert.equal((await t.adminPost("/admin/events/evt_none/replay")).status, 404);
    });

    it("the events list merges jobs and ignored events newest first, and its pages hold each once", async () => {
      const made: string[] = [];
      for (let i = 0; i < 4; i++) {
        made.push(String((await t.webhook("order/created", withId(880_100_000 + i))).body.eventId));
        made.push(String((await t.webhook("charge/created", { charge: { id: i } })).body.eventId));
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { status: number; body: { events: { id: string; state: string }[]; nextCursor: string | null } } = await t.admin(
          `/admin/events?limit=3&kind=${JOB_WEBHOOK}${cursor === null ? "" : `&cursor=${cursor}`}`,
        );
        assert.equal(page.status, 200);
        seen.push(...page.body.events.map((e) => e.id));
        cursor = page.body.nextCursor;
      } while (cursor !== null);
      assert.equal(new Set(seen).size, seen.length, "no event twice");
      for (const id of made) assert.ok(seen.includes(id), `${id} listed`);
      const all = await listEvents(t.store.handle, { limit: 1000 });
      const order = all.map((e) => [e.created_at, e.id] as const);
      assert.deepEqual(
        order,
        [...order].sort((a, b) => b[0] - a[0] || (a[1] < b[1] ? 1 : -1)),
        "newest first",
      );
      const ignoredOnly = await listEvents(t.store.handle, { limit: 1000, state: "ignored", topic: "charge/created" });
      assert.ok(ignoredOnly.length >= 4 && ignoredOnly.every((e) => e.topic === "charge/created"), "filtered by topic too");
      const byState = await listEvents(t.store.handle, { limit: 1000, state: "ignored" });
      assert.ok(byState.length >= 4 && byState.every((e) => e.state === "ignored"));
      assert.equal((await listEvents(t.store.handle, { limit: 1000, kind: JOB_PUT_ORDER, state: "ignored" })).length, 0, "a write-back is never ignored");
    });
  });

  describe(`migration 0015_recharge_inbox [${kind}]`, { skip }, () => {
    it("moves the inbox out of the jobs of an existing database: events, ignored ones and write-backs are kept, and pending ones are processed", async () => {
      const db = freshDatabase(kind);
      try {
        // The database as 0014 left it: the jobs table with the inbox's columns.
        const store = await openStore(loadConfig(db.env).database, silent);
        const now = Date.now();
        const order = withId(880_200_001);
        const body = JSON.stringify(order);
        const dedupe = eventDedupeKey("order/created", "880200001", (order["order"] as Obj)["updated_at"]);
        try {
          await sql`drop table recharge_inbox`.execute(store.db);
          await sql`drop table jobs`.execute(store.db);
          await sql`delete from orderbridge_migrations where name = '0015_recharge_inbox'`.execute(store.db);
          await sql`create table jobs (id text primary key, kind text not null, topic text, dedupe_key text unique, body_hash text unique, resource_id text,
            api_version text, body text, payload text not null, state text not null, attempts integer not null, max_attempts integer not null,
            run_at bigint not null, locked_by text, lease_until bigint, last_error text, outcome text, correlation_id text,
            created_at bigint not null, updated_at bigint not null, lane text not null default 'inbox', trace_context text)`.execute(store.db);
          for (const [name, cols] of [
            ["jobs_due", "state, run_at"],
            ["jobs_listing", "created_at, id"],
            ["jobs_resource", "resource_id"],
            ["jobs_lane_due", "lane, state, run_at"],
            ["jobs_state_updated", "state, updated_at"],
          ] as const) {
            await sql`create index ${sql.raw(name)} on jobs (${sql.raw(cols)})`.execute(store.db);
          }
          const row = (o: {
            id: string;
            kind: string;
            lane?: string;
            topic: string | null;
            state: string;
            payload: Obj;
            body?: string | null;
            dedupe?: string | null;
            hash?: string | null;
            outcome?: string | null;
            at: number;
          }) =>
            sql`insert into jobs (id, kind, topic, dedupe_key, body_hash, resource_id, api_version, body, payload, state, attempts, max_attempts, run_at, outcome, correlation_id, created_at, updated_at, lane)
              values (${o.id}, ${o.kind}, ${o.topic}, ${o.dedupe ?? null}, ${o.hash ?? null}, ${o.topic === null ? null : "880200001"}, ${o.kind === JOB_WEBHOOK && o.state === "ignored" ? null : "2021-11"},
                ${o.body ?? null}, ${JSON.stringify(o.payload)}, ${o.state}, 0, ${o.state === "ignored" ? 0 : 6}, ${o.at}, ${o.outcome ?? null}, 'req-1', ${o.at}, ${o.at}, ${o.lane ?? "inbox"})`.execute(
              store.db,
            );
          await row({
            id: "evt_old_pending",
            kind: JOB_WEBHOOK,
            topic: "order/created",
            state: "pending",
            payload: { topicSource: "path" },
            body,
            dedupe,
            hash: eventBodyHash("order/created", body),
            at: now - 3000,
          });
          await row({
            id: "evt_old_ignored",
            kind: JOB_WEBHOOK,
            topic: "charge/created",
            state: "ignored",
            payload: { topicSource: "payload" },
            body: '{"charge":{}}',
            outcome: "topic charge/created is not handled",
            at: now - 2000,
          });
          await row({
            id: "evt_old_swept",
            kind: JOB_WEBHOOK,
            topic: "order/created",
            state: "done",
            payload: { source: "sweep", topicSource: null },
            body: "{}",
            hash: "h2",
            outcome: "placed order X",
            at: now - 1500,
          });
          await row({
            id: "job_old_put",
            kind: JOB_PUT_ORDER,
            lane: "writeback",
            topic: null,
            state: "dead",
            payload: { rechargeOrderId: "1", apiVersion: "2021-01", externalOrderId: "1", externalOrderNumber: "X" },
            dedupe: "recharge:put-order:1",
            at: now - 1000,
          });
        } finally {
          await store.close();
        }

        const t = await startRechargeService(kind, { env: db.env });
        try {
          assert.ok(t.logs.some((l) => l.includes('"database migrated"') && l.includes("0015_recharge_inbox")));
          const done = await waitFor("the pending event processed", async () => {
            const e = await t.job("evt_old_pending");
            return e.state === "done" && e;
          });
          assert.match(String(done.outcome), /^placed order ABC-/);
          assert.equal(done.topic, "order/created");
          assert.equal(done.topic_source, "path");
          assert.equal(done.api_version, "2021-11");
          const ignored = await t.job("evt_old_ignored");
          assert.deepEqual(
            [ignored.state, ignored.outcome, ignored.topic, ignored.topic_source, ignored.body],
            ["ignored", "topic charge/created is not handled", "charge/created", "payload", '{"charge":{}}'],
          );
          assert.equal((await t.store.db.selectFrom("jobs").select("id").where("id", "=", "evt_old_ignored").execute()).length, 0, "an ignored event is no job any more");
          assert.equal((await t.job("evt_old_swept")).source, "sweep");
          const put = await t.job("job_old_put");
          assert.deepEqual([put.state, put.dedupe_key, put.api_version, put.topic], ["dead", "recharge:put-order:1", "2021-01", null]);
          // The keys moved with the events: Recharge's retry of the old delivery is a duplicate.
          const again = await t.webhook("order/created", body);
          assert.equal(again.body.status, "duplicate");
          assert.equal(again.body.eventId, "evt_old_pending");
          const columns = Object.keys(await t.store.db.selectFrom("jobs").selectAll().where("id", "=", "job_old_put").executeTakeFirstOrThrow());
          for (const gone of ["topic", "body_hash", "api_version", "body"]) assert.ok(!columns.includes(gone), `jobs.${gone} is gone`);
        } finally {
          await t.stop();
        }
      } finally {
        await db.cleanup();
      }
    });
  });
}
