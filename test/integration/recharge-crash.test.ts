import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { killAll, spawnServer, type RunningServer } from "../helpers/process.js";
import { startRechargeStandIn } from "../../tools/stand-ins/recharge-api.js";
import { RC_TOKEN, postWebhook, rcFixtureText, rechargeProcessEnv, waitFor } from "../helpers/recharge.js";
import { ADMIN_TOKEN } from "../helpers/service.js";
import { freshDatabase, storeKinds } from "../helpers/stores.js";

const deliver = (server: RunningServer, topic: string, raw: string) => postWebhook(server.port, topic, raw);

async function admin(server: RunningServer, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, unknown>;
}

for (const { kind, skip } of await storeKinds()) {
  describe(`Recharge: a crash after the acknowledgement loses nothing [${kind}]`, { skip }, () => {
    it("SIGKILL before processing, then SIGKILL during the write-back: one order, one write-back, after restarts", async () => {
      const recharge = await startRechargeStandIn({ token: RC_TOKEN });
      const db = freshDatabase(kind);
      const env = rechargeProcessEnv(db.env, recharge);
      const servers: RunningServer[] = [];
      try {
        // 1. Acknowledged, then killed before any worker touched it (this instance runs none).
        const a = await spawnServer({ ...env, WORKER_CONCURRENCY: "0" });
        servers.push(a);
        const raw = rcFixtureText("2021-11", "order-created");
        const ack = await deliver(a, "order/created", raw);
        assert.equal(ack.status, 200);
        assert.equal(ack.body["status"], "accepted");
        assert.equal(await a.stop("SIGKILL"), null);

        // 2. Restarted: the order is placed; killed while Recharge holds the write-back call open.
        recharge.defaultReply = "hang";
        const b = await spawnServer({ ...env, WORKER_CONCURRENCY: "2" });
        servers.push(b);
        await recharge.waitForCalls(1);
        const placed = await admin(b, "/admin/orders?source=recharge&sourceOrderId=512340001");
        assert.equal((placed["orders"] as unknown[]).length, 1);
        assert.equal(await b.stop("SIGKILL"), null);

        // 3. Restarted again, Recharge healthy: the write-back is taken over after its lease and done.
        recharge.defaultReply = "ok";
        const c = await spawnServer({ ...env, WORKER_CONCURRENCY: "2" });
        servers.push(c);
        await waitFor("the write-back", async () => recharge.succeeded().length >= 1);
        const dup = await deliver(c, "order/created", raw);
        assert.equal(dup.body["status"], "duplicate", "Recharge's own retry of the delivery is recognised");
        assert.equal(dup.body["eventId"], ack.body["eventId"]);

        const orders = await admin(c, "/admin/orders?source=recharge&sourceOrderId=512340001");
        assert.equal((orders["orders"] as unknown[]).length, 1, "exactly one order");
        const events = (await admin(c, "/admin/events")) as { events: { kind: string; state: string }[] };
        assert.deepEqual(events.events.map((e) => [e.kind, e.state]).sort(), [
          ["recharge.order_writeback", "done"],
          ["recharge.webhook", "done"],
        ]);
        assert.deepEqual(
          recharge.calls.map((call) => [call.path, call.status]),
          [
            ["/orders/512340001", 0],
            ["/orders/512340001", 200],
          ],
        );
      } finally {
        await killAll(servers);
        await recharge.close();
        await db.cleanup();
      }
    });
  });
}
