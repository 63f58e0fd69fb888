import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { defineTask, field, handlersOf } from "../../src/jobs/tasks.js";
import { JobError } from "../../src/jobs/worker.js";
import { JOB_PUT_ORDER, JOB_WEBHOOK, PUT_ORDER_TASK, WEBHOOK_TASK } from "../../src/recharge/handlers.js";
import { transaction } from "../../src/store/handle.js";
import { enqueue, type JobRow } from "../../src/store/jobs.js";
import { startRechargeService, waitFor, type RechargeTestService } from "../helpers/recharge.js";
import { storeKinds } from "../helpers/stores.js";

// Typed tasks (src/jobs/tasks.ts): a row is read back only through its task's decoder, so a job
// whose payload is not what its task reads goes dead at once, saying which field, instead of being
// run on a cast (a write-back with a numeric order id was sent to Recharge as PUT /orders/5).

for (const { kind, skip } of await storeKinds()) {
  describe(`typed tasks on the worker [${kind}]`, { skip }, () => {
    let t: RechargeTestService;
    before(async () => {
      t = await startRechargeService(kind);
    });
    after(() => t.stop());

    const put = async (job: Parameters<typeof enqueue>[1]): Promise<string> => transaction(t.store.handle, async (tx) => (await enqueue(tx, job, Date.now())).id);

    it("a write-back whose payload is not a write-back's goes dead at once, naming the field, and calls nothing", async () => {
      const id = await put({
        ...PUT_ORDER_TASK.job({ rechargeOrderId: "5", apiVersion: "2021-11", externalOrderId: "1", externalOrderNumber: "OB-1" }, { maxAttempts: 6, dedupeKey: "typed-tasks:1" }),
        payload: { rechargeOrderId: 5, apiVersion: "2021-11", externalOrderId: "1", externalOrderNumber: "OB-1" },
      });
      t.worker.nudge();
      const job = await waitFor("the job dead", async () => (await t.jobs({ kind: JOB_PUT_ORDER })).find((j) => j.id === id && j.state === "dead"));
      assert.equal(job.attempts, 1, "no retry reads it differently");
      assert.match(String(job.last_error), /recharge\.order_writeback: rechargeOrderId is not a non-empty string/);
      assert.equal(t.recharge.calls.filter((c) => c.path.startsWith("/orders/5")).length, 0, "nothing was sent");
    });

    it("an inbox event whose body holds no order goes dead at once, saying so", async () => {
      const id = await t.storeEvent(JSON.stringify({ order: [1, 2] }));
      t.worker.nudge();
      const job = await waitFor("the event dead", async () => (await t.jobs({ kind: JOB_WEBHOOK })).find((j) => j.id === id && j.state === "dead"));
      assert.equal(job.attempts, 1);
      assert.match(String(job.last_error), /recharge\.webhook: the webhook's order is not an object/);
    });

    it("the processing of an inbox event that is not there goes dead at once, naming the event", async () => {
      const id = await put({ ...WEBHOOK_TASK.job({ eventId: "evt_not_there" }, { maxAttempts: 6 }), id: "evt_not_there" });
      t.worker.nudge();
      const job = await waitFor("the event dead", async () => (await t.jobs({ kind: JOB_WEBHOOK })).find((j) => j.id === id && j.state === "dead"));
      assert.equal(job.attempts, 1, "no retry brings it back");
      assert.match(String(job.last_error), /recharge\.webhook: its inbox event evt_not_there is not there/);
    });

    it("a well-formed write-back built by its task runs as before", async () => {
      const id = await put(
        PUT_ORDER_TASK.job(
          { rechargeOrderId: "777001", apiVersion: "2021-11", externalOrderId: "9", externalOrderNumber: "OB-9" },
          { maxAttempts: 6, resourceId: "777001", dedupeKey: "typed-tasks:3" },
        ),
      );
      t.worker.nudge();
      const job = await waitFor("the job done", async () => (await t.jobs({ kind: JOB_PUT_ORDER })).find((j) => j.id === id && j.state === "done"));
      assert.match(String(job.outcome), /^PUT \/orders\/777001 → 200/);
      const call = t.recharge.calls.find((c) => c.path === "/orders/777001");
      assert.deepEqual((call?.body as { external_order_id?: unknown } | undefined)?.external_order_id, { ecommerce: "9" });
    });
  });
}

describe("defineTask", () => {
  const row = (payload: unknown): JobRow => ({ payload: JSON.stringify(payload) }) as unknown as JobRow;
  const task = defineTask<{ n: string }>("test.task", { lane: "inbox", prefix: "job", decodePayload: (raw) => ({ n: field.string(field.obj(raw, "the payload"), "n") }) });

  it("builds the row of its kind and lane, with the payload and the options given", () => {
    const j = task.job({ n: "x" }, { maxAttempts: 3, dedupeKey: "k", resourceId: "r", runAt: 5 });
    assert.deepEqual(j, { kind: "test.task", lane: "inbox", prefix: "job", payload: { n: "x" }, maxAttempts: 3, dedupeKey: "k", resourceId: "r", runAt: 5 });
  });

  it("hands the decoded payload to its handler; a payload it cannot read is a JobError that is not retried", async () => {
    const seen: unknown[] = [];
    const handlers = handlersOf([task.handle(async (p) => (seen.push(p), { state: "done", outcome: p.n }))]);
    const ctx = {} as Parameters<NonNullable<(typeof handlers)["test.task"]>>[1];
    assert.deepEqual(await handlers["test.task"]?.(row({ n: "a" }), ctx), { state: "done", outcome: "a" });
    assert.deepEqual(seen, [{ n: "a" }]);
    await assert.rejects(
      handlers["test.task"]!(row({ n: 1 }), ctx),
      (e: unknown) => e instanceof JobError && !e.retry && /test\.task: n is not a non-empty string/.test(e.message),
    );
    await assert.rejects(handlers["test.task"]!({ payload: "{" } as unknown as JobRow, ctx), (e: unknown) => e instanceof JobError && /payload is not JSON/.test(e.message));
  });

  it("refuses two handlers of one kind", () => {
    assert.throws(
      () => handlersOf([task.handle(async () => ({ state: "done", outcome: "" })), task.handle(async () => ({ state: "done", outcome: "" }))]),
      /two handlers of job kind test\.task/,
    );
  });
});
