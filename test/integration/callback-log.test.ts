import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { createLogger } from "../../src/logger.js";
import { DAY_MS, prune } from "../../src/store/retention.js";
import { createCallbackLog, type ObservedCallback } from "../../src/subscribe-pro/callback-log.js";
import { close, listen } from "../../tools/stand-ins/loopback.js";
import { runCli } from "../helpers/process.js";
import { startOmsStandIn, type OmsStandIn } from "../helpers/oms-stand-in.js";
import { startRechargeService, type RechargeTestService } from "../helpers/recharge.js";
import { ADMIN_TOKEN, minimalOrder, startService, type TestService } from "../helpers/service.js";
import { storeKinds } from "../helpers/stores.js";

// Every Subscribe Pro callback is recorded, whatever the platform and whatever the answer: a 201
// with PLATFORM=http left nothing in `orders list` or `events list`, and refused callbacks (409,
// 400, 401) were recorded nowhere but the logs. Unauthenticated ones are kept as a bounded sample.

type Listed = {
  id: string;
  status: number;
  salesOrderToken: string | null;
  orderNumber: string | null;
  authenticated: boolean;
  replayed: boolean;
  errorCode: string | null;
  reasons: unknown;
  requestId: string;
  clientAddress: string | null;
  durationMs: number;
};
const PAYMENT = { paymentToken: "tok_4111111111111111", creditcardLastDigits: "1111", paymentProfileId: 98765 };
/** An unauthenticated callback (a wrong signature), as the app tells the callback log of it. */
const refusedCallback = (requestId: string, receivedAt: number, clientAddress: string): ObservedCallback => ({
  receivedAt,
  requestId,
  authenticated: false,
  status: 401,
  rawBody: Buffer.from("{}"),
  answer: { errorCode: "signature_invalid" },
  replayed: false,
  durationMs: 1,
  clientAddress,
});

for (const { kind, skip } of await storeKinds()) {
  describe(`callback log, local platform [${kind}]`, { skip }, () => {
    let t: TestService;
    before(async () => {
      t = await startService(kind);
    });
    after(() => t.stop());
    const list = async (query = ""): Promise<{ callbacks: Listed[]; nextCursor: string | null }> => {
      await t.callbackLog.flush();
      const res = await t.admin(`/admin/callbacks${query}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body as { callbacks: Listed[]; nextCursor: string | null };
    };

    it("records a placed order, its replay, a refused body and an unsigned request, newest first, with the masked body", async () => {
      const placed = await t.callback(minimalOrder("log-1", undefined, { payment: PAYMENT }));
      assert.equal(placed.status, 201);
      assert.equal((await t.callback(minimalOrder("log-1", undefined, { payment: PAYMENT }))).status, 201);
      const invalid = await t.callback({ ...minimalOrder("log-bad"), currency: 12 });
      assert.equal(invalid.status, 400);
      assert.equal((await t.callback(minimalOrder("log-unsigned"), { secret: null })).status, 401);

      const { callbacks } = await list();
      assert.deepEqual(
        callbacks.slice(0, 4).map((c) => [c.status, c.salesOrderToken, c.authenticated, c.replayed]),
        [
          [401, null, false, false],
          [400, "log-bad", true, false],
          [201, "log-1", true, true],
          [201, "log-1", true, false],
        ],
      );
      const [unsigned, bad, again, first] = callbacks as [Listed, Listed, Listed, Listed];
      assert.equal(first.orderNumber, placed.body.orderNumber);
      assert.equal(first.requestId, placed.headers["x-request-id"], "linked to the logs' correlation id");
      assert.ok(first.clientAddress !== null && first.durationMs >= 0);
      assert.equal(bad.errorCode, "schema_violation");
      assert.deepEqual(
        (bad.reasons as { errors: { pointer: string }[] }).errors.map((e) => e.pointer),
        ["/currency"],
        "the JSON pointers of what was refused",
      );
      assert.ok(unsigned.errorCode !== null);
      assert.equal(again.orderNumber, first.orderNumber);

      const detail = (await t.admin(`/admin/callbacks/${first.id}`)).body as { body: Record<string, unknown>; order: { orderNumber: string } | null; sameToken: Listed[] };
      assert.deepEqual(detail.body["payment"], "[masked]", "payment values never kept");
      assert.equal(detail.body["salesOrderToken"], "log-1");
      assert.doesNotMatch(JSON.stringify(detail), /4111111111111111|98765/);
      assert.equal(detail.order?.orderNumber, first.orderNumber, "linked to its order");
      assert.deepEqual(
        detail.sameToken.map((c) => c.id),
        [again.id],
      );
      const unsignedDetail = (await t.admin(`/admin/callbacks/${unsigned.id}`)).body as { body: unknown };
      assert.equal(unsignedDetail.body, null, "an unauthenticated body is anyone's: not kept");
    });

    it("filters by status or class, searches by token, order number or email, pages with a cursor, and refuses a bad query", async () => {
      for (let i = 0; i < 5; i++) assert.equal((await t.callback(minimalOrder(`log-page-${i}`, undefined, { customerEmail: `page${i}@example.com` }))).status, 201);
      assert.ok((await list("?status=4xx")).callbacks.every((c) => c.status >= 400 && c.status < 500));
      assert.deepEqual(
        (await list("?status=400")).callbacks.map((c) => c.salesOrderToken),
        ["log-bad"],
      );
      assert.deepEqual(
        (await list("?q=log-page-3")).callbacks.map((c) => c.salesOrderToken),
        ["log-page-3"],
      );
      assert.deepEqual(
        (await list("?q=page4%40example.com")).callbacks.map((c) => c.salesOrderToken),
        ["log-page-4"],
      );
      const one = (await list("?q=log-page-2")).callbacks[0];
      assert.deepEqual(
        (await list(`?q=${one?.orderNumber ?? ""}`)).callbacks.map((c) => c.salesOrderToken),
        ["log-page-2"],
      );
      assert.deepEqual(
        (await list("?authenticated=false")).callbacks.map((c) => c.status),
        [401],
      );
      assert.equal((await list(`?from=${new Date(Date.now() + 60_000).toISOString()}`)).callbacks.length, 0);

      const all = (await list("?limit=200")).callbacks;
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { callbacks: Listed[]; nextCursor: string | null } = await list(`?limit=3${cursor === null ? "" : `&cursor=${cursor}`}`);
        seen.push(...page.callbacks.map((c) => c.id));
        cursor = page.nextCursor;
      } while (cursor !== null);
      assert.deepEqual(
        seen,
        all.map((c) => c.id),
        "the pages together are the list, each once",
      );

      const refused = await t.admin("/admin/callbacks?status=abc&from=yesterday&cursor=x");
      assert.equal(refused.status, 400);
      assert.deepEqual((refused.body.errors as { pointer: string }[]).map((f) => f.pointer).sort(), ["/query/cursor", "/query/from", "/query/status"]);
    });

    it("the CLI lists, searches and shows the same log", { skip: kind !== "sqlite" && "store-independent" }, async () => {
      await t.callbackLog.flush();
      const server = http.createServer(t.app);
      const url = await listen(server);
      try {
        const cli = (args: string[]) => runCli(args, { ORDERBRIDGE_URL: url, ADMIN_TOKEN });
        const json = await cli(["callbacks", "list", "--search", "log-1", "--json"]);
        assert.equal(json.code, 0, json.stderr);
        const found = (JSON.parse(json.stdout) as { callbacks: Listed[] }).callbacks;
        assert.deepEqual(
          found.map((c) => [c.status, c.replayed]),
          [
            [201, true],
            [201, false],
          ],
        );
        const refused = await cli(["callbacks", "list", "--status", "4xx"]);
        assert.match(refused.stdout, /^id\s+received\s+status\s+token\s+order\s+ms\s+reason/m);
        assert.match(refused.stdout, /\s400\s+log-bad\s/);
        const shown = await cli(["callbacks", "show", String(found[1]?.id)]);
        assert.equal(shown.code, 0, shown.stderr);
        assert.match(shown.stdout, /salesOrderToken\s+log-1/);
        assert.match(shown.stdout, /sameToken:\n\s+id\s+receivedAt\s+status/);
        assert.doesNotMatch(shown.stdout, /4111111111111111/);
      } finally {
        await close(server);
      }
    });

    it("keeps a bounded sample of unauthenticated callbacks, and retention prunes the old ones", async () => {
      const small = createCallbackLog({ db: t.store.handle, log: createLogger({ level: "error", format: "json", silent: true }), redactEmail: false, sampleSize: 3 });
      for (let i = 0; i < 10; i++) small.record(refusedCallback(`flood-${i}`, Date.now() + i, "203.0.113.9"));
      await small.close();
      const refused = (await list("?authenticated=false&limit=200")).callbacks;
      assert.equal(refused.length, 3, "the newest three only");
      assert.deepEqual(
        refused.map((c) => c.requestId),
        ["flood-9", "flood-8", "flood-7"],
      );
      const before = (await list("?limit=200")).callbacks.length;
      const dry = await prune(t.store.handle, { retentionDays: 30, now: Date.now() + 31 * DAY_MS, dryRun: true });
      assert.equal(dry.callbackLog.deleted, before);
      const r = await prune(t.store.handle, { retentionDays: 30, now: Date.now() + 31 * DAY_MS });
      assert.equal(r.callbackLog.deleted, before);
      assert.equal((await list()).callbacks.length, 0);
    });

    it("a flood of refused callbacks takes no authenticated callback's place in the queue", async () => {
      // Nothing is written before close (flushMs, batch): the whole flood waits in memory. Before,
      // refused callbacks filled the shared queue (maxQueued) and the real order's entry was dropped.
      let dropped = 0;
      const small = createCallbackLog({
        db: t.store.handle,
        log: createLogger({ level: "error", format: "json", silent: true }),
        redactEmail: false,
        sampleSize: 3,
        maxQueued: 5,
        batch: 1000,
        flushMs: 60_000,
        onDropped: (n) => (dropped += n),
      });
      const at = Date.now();
      for (let i = 0; i < 50; i++) small.record(refusedCallback(`queue-flood-${i}`, at + i, "203.0.113.10"));
      small.record({
        receivedAt: at + 50,
        requestId: "queue-flood-real-order",
        authenticated: true,
        status: 201,
        rawBody: Buffer.from(JSON.stringify({ salesOrderToken: "tok-queue-flood" })),
        answer: { orderNumber: "OB-QUEUE-FLOOD" },
        replayed: false,
        durationMs: 1,
        clientAddress: "203.0.113.11",
      });
      await small.close();
      assert.equal(dropped, 0, "sampled out is not dropped");
      const authenticated = (await list("?authenticated=true&limit=200")).callbacks.map((c) => c.requestId);
      assert.ok(authenticated.includes("queue-flood-real-order"), `the real order's entry is kept: ${authenticated.join(", ")}`);
      const refused = (await list("?authenticated=false&limit=200")).callbacks.map((c) => c.requestId);
      assert.deepEqual(refused, ["queue-flood-49", "queue-flood-48", "queue-flood-47"]);
    });
  });

  describe(`callback log, PLATFORM=http [${kind}]`, { skip }, () => {
    let oms: OmsStandIn;
    let t: RechargeTestService;
    before(async () => {
      oms = await startOmsStandIn({ secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", skus: ["RUBY-RED"] });
      t = await startRechargeService(kind, {
        env: {
          PLATFORM: "http",
          PLATFORM_HTTP_URL: `${oms.url}/orders`,
          PLATFORM_HTTP_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
          PLATFORM_TIMEOUT_MS: "1000",
          PLATFORM_DEADLINE_MS: "3000",
        },
      });
    });
    after(async () => {
      await t.stop();
      await oms.close();
    });

    it("a 201 and a 409 of the merchant's system are both in the log, with the order number and the reasons", async () => {
      const ok = await t.callback(minimalOrder("http-log-1"));
      assert.equal(ok.status, 201);
      const refused = await t.callback(minimalOrder("http-log-2", [{ productSku: "NOT-SOLD", qty: 1, subscription: { id: "sub-x" } }]));
      assert.equal(refused.status, 409);
      await t.callbackLog.flush();
      const { callbacks } = (await t.admin("/admin/callbacks")).body as { callbacks: Listed[] };
      assert.deepEqual(
        callbacks.map((c) => [c.status, c.salesOrderToken, c.orderNumber]),
        [
          [409, "http-log-2", null],
          [201, "http-log-1", ok.body.orderNumber],
        ],
      );
      const reasons = callbacks[0]?.reasons as { errorItems: { subscriptionId?: string; message?: string }[] };
      assert.equal(reasons.errorItems[0]?.subscriptionId, "sub-x");
      assert.ok((reasons.errorItems[0]?.message ?? "").length > 0);
    });
  });
}
