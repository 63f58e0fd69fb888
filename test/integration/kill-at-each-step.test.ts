import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { deliveryId } from "../../src/platforms/http/adapter.js";
import { signSpHmac } from "../../src/security/sp-hmac.js";
import { startOmsStandIn } from "../helpers/oms-stand-in.js";
import { killAll, spawnServer, type RunningServer } from "../helpers/process.js";
import { startRechargeStandIn } from "../../tools/stand-ins/recharge-api.js";
import { RC_TOKEN, postWebhook, rcFixtureText, rechargeProcessEnv, waitFor } from "../helpers/recharge.js";
import { ADMIN_TOKEN, minimalOrder } from "../helpers/service.js";
import { freshDatabase, storeKinds } from "../helpers/stores.js";

const SP_SECRET = "sp-secret-for-kill-tests";
const OMS_SECRET = "raw:oms-secret-0123456789";

async function callback(server: RunningServer, body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${server.port}/callbacks/subscribe-pro/order`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Sp-Hmac": signSpHmac(SP_SECRET, body) },
    body,
  });
  return { status: res.status, text: await res.text() };
}

/** Sends without waiting for the answer (the process will be killed under it). */
function callbackInFlight(server: RunningServer, body: string): void {
  callback(server, body).catch(() => undefined);
}

async function events(server: RunningServer): Promise<{ kind: string; state: string }[]> {
  const res = await fetch(`http://127.0.0.1:${server.port}/admin/events`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
  return ((await res.json()) as { events: { kind: string; state: string }[] }).events;
}

for (const { kind, skip } of await storeKinds()) {
  describe(`SIGKILL at each step, then restart and the sender's retry [${kind}]`, { skip }, () => {
    it("Subscribe Pro on an HTTP platform: killed before the platform answered, and after it placed the order but before we answered", async () => {
      const oms = await startOmsStandIn({ secret: OMS_SECRET, skus: ["RUBY-RED"] });
      const db = freshDatabase(kind);
      const env = {
        ...db.env,
        SP_HMAC_SECRETS: SP_SECRET,
        PLATFORM: "http",
        PLATFORM_HTTP_URL: `${oms.url}/orders`,
        PLATFORM_HTTP_SECRET: OMS_SECRET,
        PLATFORM_DEADLINE_MS: "1500",
        PLATFORM_TIMEOUT_MS: "10000",
      };
      const servers: RunningServer[] = [];
      try {
        // Step 1: the request is received and the platform has it, but places nothing before we die.
        const first = JSON.stringify(minimalOrder("kill-received"));
        oms.queue("hang");
        let a = await spawnServer(env);
        servers.push(a);
        callbackInFlight(a, first);
        await waitFor("the platform call", async () => oms.calls.length >= 1);
        await a.stop("SIGKILL");

        // Step 2: the platform placed the order, but its answer never reached us before we died.
        const second = JSON.stringify(minimalOrder("kill-placed"));
        oms.queue("create-then-hang");
        a = await spawnServer(env);
        servers.push(a);
        callbackInFlight(a, second);
        await waitFor("the order to exist in the platform", async () => oms.orders.has(deliveryId("sp:kill-placed")));
        await a.stop("SIGKILL");

        // Restart; Subscribe Pro retries both (the dead owner's claim is taken over after its lease).
        const b = await spawnServer(env);
        servers.push(b);
        const r1 = await callback(b, first);
        const r2 = await callback(b, second);
        assert.equal(r1.status, 201, r1.text);
        assert.equal(r2.status, 201, r2.text);
        const placed = oms.orders.get(deliveryId("sp:kill-placed"));
        assert.equal(JSON.parse(r2.text).orderNumber, placed?.orderNumber, "the order placed before the crash, not a new one");
        assert.equal(oms.orders.size, 2, "one order per token");
        const again = await callback(b, second);
        assert.equal(again.text, r2.text, "and from now on the stored answer");
      } finally {
        await killAll(servers);
        await oms.close();
        await db.cleanup();
      }
    });

    it("Recharge: killed after Recharge applied the write-back but before we recorded it: done once after restart", async () => {
      const recharge = await startRechargeStandIn({ token: RC_TOKEN });
      const db = freshDatabase(kind);
      const env = rechargeProcessEnv(db.env, recharge);
      const servers: RunningServer[] = [];
      try {
        recharge.queue("apply-then-hang");
        const a = await spawnServer(env);
        servers.push(a);
        const raw = rcFixtureText("2021-11", "order-created");
        const res = await postWebhook(a.port, "order/created", raw);
        assert.equal(res.status, 200);
        await recharge.waitForCalls(1);
        await a.stop("SIGKILL");

        const b = await spawnServer(env);
        servers.push(b);
        await waitFor("the write-back to be recorded", async () => (await events(b)).every((e) => e.state === "done") && (await events(b)).length === 2);
        const puts = recharge.succeeded().filter((c) => c.path === "/orders/512340001");
        assert.equal(puts.length, 2, "sent again: the first landed but its answer was lost");
        assert.deepEqual(puts[1]?.body, puts[0]?.body, "the same external ids both times (an idempotent update)");
        const orders = await fetch(`http://127.0.0.1:${b.port}/admin/orders?source=recharge&sourceOrderId=512340001`, {
          headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        assert.equal(((await orders.json()) as { orders: unknown[] }).orders.length, 1, "a failed write-back never re-creates the order");
      } finally {
        await killAll(servers);
        await recharge.close();
        await db.cleanup();
      }
    });
  });
}
