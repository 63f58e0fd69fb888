import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { signRechargeLegacy } from "../../src/security/recharge-signature.js";
import { signSpHmac } from "../../src/security/sp-hmac.js";
import { openStore } from "../../src/store/db.js";
import { startOmsStandIn } from "../helpers/oms-stand-in.js";
import { killAll, spawnServer, type RunningServer } from "../helpers/process.js";
import { startRechargeStandIn, type RechargeStandIn } from "../../tools/stand-ins/recharge-api.js";
import { RC_SECRET, RC_TOKEN, rcFixture, waitFor } from "../helpers/recharge.js";
import { ADMIN_TOKEN, minimalOrder } from "../helpers/service.js";
import { freshDatabase, storeKinds, type StoreKind } from "../helpers/stores.js";

const SP_SECRET = "sp-secret-for-scale-tests";
const silent = createLogger({ level: "error", format: "json", silent: true });

interface Delivery {
  path: string;
  body: string;
  headers: Record<string, string>;
}
const spDelivery = (token: string): Delivery => {
  const body = JSON.stringify(minimalOrder(token));
  return { path: "/callbacks/subscribe-pro/order", body, headers: { "Sp-Hmac": signSpHmac(SP_SECRET, body) } };
};
const rcDelivery = (id: number, topic = "order/created", updatedAt?: string): Delivery => {
  const b = rcFixture("2021-11", "order-created");
  b["order"]["id"] = id;
  if (updatedAt !== undefined) b["order"]["updated_at"] = updatedAt;
  const body = JSON.stringify(b);
  return { path: `/webhooks/recharge/${topic}`, body, headers: { "X-Recharge-Hmac-Sha256": signRechargeLegacy(RC_SECRET, body) } };
};

async function send(server: RunningServer, d: Delivery): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${d.path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...d.headers },
    body: d.body,
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, text: await res.text() };
}

async function admin<T>(server: RunningServer, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
  return (await res.json()) as T;
}

async function countRows(kind: StoreKind, env: Record<string, string>, table: "local_orders" | "jobs"): Promise<number> {
  const store = await openStore(loadConfig(env).database, silent);
  try {
    const row = await store.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  } finally {
    await store.close();
    void kind;
  }
}

function environment(kind: StoreKind, recharge: RechargeStandIn, extra: Record<string, string> = {}) {
  const db = freshDatabase(kind);
  const env = {
    ...db.env,
    SP_HMAC_SECRETS: SP_SECRET,
    ADMIN_TOKEN,
    RECHARGE_CLIENT_SECRETS: RC_SECRET,
    RECHARGE_API_TOKEN: RC_TOKEN,
    RECHARGE_API_URL: recharge.url,
    PLATFORM_DEADLINE_MS: "1000",
    JOB_LEASE_MS: "1500",
    WORKER_POLL_MS: "100",
    JOB_BACKOFF_BASE_MS: "100",
    JOB_BACKOFF_MAX_MS: "500",
    ...extra,
  };
  return { db, env };
}

for (const { kind, skip } of await storeKinds()) {
  describe(`several instances on one database [${kind}]`, { skip }, () => {
    it("behave as one: duplicates sent to different instances get one order and one answer; each job runs on one instance", async () => {
      const recharge = await startRechargeStandIn({ token: RC_TOKEN });
      const { db, env } = environment(kind, recharge);
      const servers: RunningServer[] = [];
      try {
        servers.push(await spawnServer(env), await spawnServer(env));
        const [a, b] = servers as [RunningServer, RunningServer];
        const dup = spDelivery("scale-dup-1");
        const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => send(i % 2 === 0 ? a : b, dup)));
        assert.deepEqual(new Set(answers.map((r) => r.status)), new Set([201]));
        assert.equal(new Set(answers.map((r) => r.text)).size, 1, "the same answer, byte for byte, from both instances");

        // One order's three topics to both instances at once, and ten more orders spread over both.
        const topics = await Promise.all([
          send(a, rcDelivery(600001, "order/created")),
          send(b, rcDelivery(600001, "order/updated", "2024-05-01T14:10:00+00:00")),
          send(b, rcDelivery(600001, "order/processed", "2024-05-01T14:11:00+00:00")),
          send(a, rcDelivery(600001, "order/created")),
          ...Array.from({ length: 10 }, (_, i) => send(i % 2 === 0 ? b : a, rcDelivery(600100 + i))),
        ]);
        assert.ok(topics.every((r) => r.status === 200));
        await waitFor("every write-back", async () => recharge.succeeded().length >= 11, 20_000);
        await sleep(500); // anything extra would show up now
        const orders = await admin<{ orders: { sourceOrderId: string }[] }>(a, "/admin/orders?limit=200");
        const ids = orders.orders.map((o) => o.sourceOrderId);
        assert.equal(ids.length, 12, "1 Subscribe Pro order + 11 Recharge orders");
        assert.equal(new Set(ids).size, 12);
        const puts = recharge.succeeded().map((c) => c.path);
        assert.equal(puts.length, 11, "each write-back ran on exactly one instance");
        assert.equal(new Set(puts).size, 11);
      } finally {
        for (const s of servers) await s.stop("SIGKILL");
        await recharge.close();
        await db.cleanup();
      }
    });

    it("two instances killed and restarted alternately under a stream of callbacks and webhooks: totals reconcile exactly", async () => {
      const recharge = await startRechargeStandIn({ token: RC_TOKEN });
      const { db, env } = environment(kind, recharge);
      const live: (RunningServer | undefined)[] = [await spawnServer(env), await spawnServer(env)];
      const all: RunningServer[] = live.filter((s): s is RunningServer => s !== undefined);
      try {
        const sp = Array.from({ length: 40 }, (_, i) => spDelivery(`chaos-${i}`));
        const rc = Array.from({ length: 15 }, (_, i) => rcDelivery(700000 + i));
        let next = 0;
        const finalAnswers = new Map<string, string>();
        // A sender that retries (connection refused, 503) on whichever instance is up, like SP and Recharge do.
        const deliver = async (d: Delivery, key: string): Promise<void> => {
          const until = Date.now() + 60_000;
          for (;;) {
            const up = live.filter((s): s is RunningServer => s !== undefined);
            const target = up[next++ % Math.max(1, up.length)];
            if (target !== undefined) {
              const r = await send(target, d).catch(() => undefined);
              if (r !== undefined && (r.status === 201 || r.status === 200)) {
                finalAnswers.set(key, r.text);
                return;
              }
              assert.ok(r === undefined || r.status === 503, `only 503s or dropped connections while instances die (got ${r?.status}: ${r?.text})`);
            }
            if (Date.now() > until) throw new Error(`${key} was never accepted`);
            await sleep(100);
          }
        };
        const chaos = (async () => {
          for (let round = 0; round < 2; round++) {
            for (const i of [0, 1]) {
              await sleep(600);
              const victim = live[i];
              live[i] = undefined;
              await victim?.stop("SIGKILL");
              await sleep(200);
              const fresh = await spawnServer(env);
              all.push(fresh);
              live[i] = fresh;
            }
          }
        })();
        const stream = (async () => {
          const work = [...sp.map((d, i) => () => deliver(d, `sp-${i}`)), ...rc.map((d, i) => () => deliver(d, `rc-${i}`))];
          // Four senders at a time, spread over the chaos.
          const queue = [...work];
          await Promise.all(
            Array.from({ length: 4 }, async () => {
              for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
                await job();
                await sleep(40);
              }
            }),
          );
        })();
        await Promise.all([chaos, stream]);

        const up = live.filter((s): s is RunningServer => s !== undefined)[0] as RunningServer;
        await waitFor("every write-back", async () => new Set(recharge.succeeded().map((c) => c.path)).size >= 15, 30_000);
        await waitFor(
          "an idle queue",
          async () => {
            const ev = await admin<{ events: { state: string }[] }>(up, "/admin/events?limit=200");
            return ev.events.every((e) => e.state === "done");
          },
          30_000,
        );
        assert.equal(await countRows(kind, env, "local_orders"), 55, "orders = distinct tokens + distinct Recharge orders");
        for (let i = 0; i < sp.length; i++) {
          const again = await send(up, sp[i] as Delivery);
          assert.equal(again.status, 201);
          assert.equal(again.text, finalAnswers.get(`sp-${i}`), `token chaos-${i}: the answer never changes`);
        }
        assert.equal(new Set(recharge.succeeded().map((c) => c.path)).size, 15, "every Recharge order written back");
      } finally {
        await killAll(all);
        await recharge.close();
        await db.cleanup();
      }
    });

    it("WORKERS=2 serves from two processes; SIGTERM lets an in-flight callback finish, gives a running job back, and exits 0", async () => {
      const recharge = await startRechargeStandIn({ token: RC_TOKEN });
      const oms = await startOmsStandIn({ secret: "raw:oms-secret-0123456789", skus: ["RUBY-RED", "EARL-GREY"] });
      const { db, env } = environment(kind, recharge, {
        WORKERS: "2",
        PLATFORM: "http",
        PLATFORM_HTTP_URL: `${oms.url}/orders`,
        PLATFORM_HTTP_SECRET: "raw:oms-secret-0123456789",
        PLATFORM_DEADLINE_MS: "5000",
        SHUTDOWN_TIMEOUT_MS: "2500",
        RECHARGE_TIMEOUT_MS: "60000",
        JOB_LEASE_MS: "60000",
      });
      let server: RunningServer | undefined;
      try {
        server = await spawnServer(env);
        await waitFor("both workers", async () => ((server as RunningServer).output().match(/orderbridge listening on /g) ?? []).length >= 2);
        const pids = new Set([...server.output().matchAll(/"pid":(\d+)[^\n]*orderbridge listening on |orderbridge listening on [^\n]*"pid":(\d+)/g)].map((m) => m[1] ?? m[2]));
        assert.equal(pids.size, 2, "two worker processes");

        // A write-back that Recharge holds open, and a callback the platform answers slowly.
        recharge.defaultReply = "hang";
        const ack = await send(server, rcDelivery(800001));
        assert.equal(ack.status, 200);
        await recharge.waitForCalls(1);
        oms.queue("slow");
        const callsBefore = oms.calls.length;
        const inFlight = send(server, spDelivery("graceful-1"));
        await waitFor("this callback's platform call", async () => oms.calls.length > callsBefore);
        const exit = server.stop("SIGTERM");
        const answered = await inFlight;
        assert.equal(answered.status, 201, "the in-flight callback was finished, not cut");
        assert.equal(await exit, 0, "a clean exit");
        const refused = await send(server, spDelivery("graceful-2")).catch((e: unknown) => e);
        assert.ok(refused instanceof Error, "no new connections after the stop");

        // The write-back Recharge never answered is back in the queue, its attempt not spent.
        const store = await openStore(loadConfig(env).database, silent);
        try {
          const job = await store.db.selectFrom("jobs").selectAll().where("kind", "=", "recharge.order_writeback").executeTakeFirstOrThrow();
          assert.equal(job.state, "pending");
          assert.equal(job.locked_by, null);
          assert.equal(job.attempts, 0);
        } finally {
          await store.close();
        }
      } finally {
        if (server !== undefined && server.child.exitCode === null && server.child.signalCode === null) await server.stop("SIGKILL");
        await oms.close();
        await recharge.close();
        await db.cleanup();
      }
    });
  });
}
