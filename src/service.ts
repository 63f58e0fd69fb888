import { randomBytes } from "node:crypto";
import os from "node:os";
import type express from "express";
import type { Config } from "./config.js";
import type { Logger } from "./logger.js";
import { createApp } from "./http/app.js";
import type { AdminDeps } from "./http/admin.js";
import { createMetrics, instrumentInStore, instrumentPlatform } from "./metrics.js";
import { VERSION } from "./version.js";
import { createInStorePlacement, createRemotePlacement, type Placement } from "./orders/placement.js";
import { createRateLimiter } from "./outbound/rate-limiter.js";
import { createWorker, type Worker } from "./jobs/worker.js";
import { createPlatform } from "./platforms/index.js";
import { createLocalPlatform } from "./platforms/local/adapter.js";
import { loadCatalog } from "./platforms/local/catalog.js";
import { getOrder, listOrders } from "./platforms/local/orders-query.js";
import { rechargeLimiterName } from "./recharge/api.js";
import { createRechargeClient } from "./recharge/client.js";
import { createRechargeHandlers, JOB_KINDS } from "./recharge/handlers.js";
import { createRechargeReceiver } from "./recharge/receive.js";
import { createSweeper, type Sweeper } from "./recharge/sweep.js";
import { createWebhookCheck, createWebhookSubscriptions, type WebhookCheck } from "./recharge/webhooks.js";
import { openStore, type Store } from "./store/db.js";
import { replayJob } from "./store/jobs.js";
import { getEvent, listEvents } from "./store/events.js";
import { attemptsOf } from "./store/job-attempts.js";
import { callbacksOfToken, getCallback, listCallbacks } from "./store/callback-log.js";
import { countMatchingJobs, listActions, matchingJobIds, overview as consoleOverview, recordAction, refusedSignIns, resolveDead, sessionEnded } from "./store/console.js";
import { createCallbackLog, type CallbackLog } from "./subscribe-pro/callback-log.js";
import { createPruner } from "./store/retention.js";
import { createSubscribeProCallback } from "./subscribe-pro/callback.js";
import type { SpCallbackRequest } from "./subscribe-pro/types.js";
import type { PlatformAdapter } from "./orders/types.js";
import { createSchemaRegistry } from "./validation/schemas.js";
import { traceHandlers, traceInStore, tracePlatform, traceRechargeClient, tracedValidator } from "./telemetry/instrument.js";
import { startTracing, traced, type Tracing } from "./telemetry/tracing.js";

export interface Service {
  app: express.Express;
  store: Store;
  /** Runs inbox events and write-backs in this process. */
  worker: Worker;
  /** The Recharge sweep (with RECHARGE_API_TOKEN and RECHARGE_SWEEP_INTERVAL > 0) and the webhook check (with PUBLIC_URL too). */
  rechargeTasks: { sweeper: Sweeper | undefined; webhookCheck: WebhookCheck | undefined };
  /** The Subscribe Pro callback log's writer (flush() writes what is queued). */
  callbackLog: CallbackLog;
  close(): Promise<void>;
}

/**
 * The composition root: the one place that picks concrete implementations (store, platform,
 * Recharge client) and wires them into the HTTP app and the worker. Used by main.ts and by the
 * tests, with a real database.
 */
export interface ServiceOptions {
  clock?: () => number;
  /** Use this platform instead of the one PLATFORM names (embedding, stand-in platforms in tests). */
  platform?: PlatformAdapter;
  /** Start the worker (default true); false leaves inbox and outbox untouched (tests of receipt). */
  startWorker?: boolean;
  /** The periodic pruner's first run after start (default: a minute, or PRUNE_INTERVAL_MS when shorter). */
  firstPruneDelayMs?: number;
  /** Start the Recharge sweep's and webhook check's timers (default true); false leaves them to be run by hand (tests). */
  startRechargeTasks?: boolean;
}

export async function createService(config: Config, log: Logger, opts: ServiceOptions = {}): Promise<Service> {
  const clock = opts.clock ?? Date.now;
  const schemas = createSchemaRegistry();
  const validateRequest = tracedValidator("subscribe-pro.validate", schemas.validator<SpCallbackRequest>("subscribe-pro/order-callback-request"));
  const catalog = loadCatalog(config.catalogFile, schemas);
  const store = await openStore(config.database, log);
  let tracing: Tracing | undefined;
  try {
    tracing = await startTracing(config.tracing, { log });
    const local = createLocalPlatform({
      db: store.handle,
      catalog,
      orderNumberPrefix: config.orderNumbers.prefix,
      orderNumberStart: config.orderNumbers.start,
      clock,
    });
    await local.init();
    const metrics = createMetrics(store.handle, { jobKinds: JOB_KINDS, build: { version: VERSION, commit: config.buildCommit } });
    const chosen = opts.platform ?? (await createPlatform(config.platform, { local, schemas, log, clock, env: process.env }));
    const platform = tracePlatform(instrumentPlatform(chosen, metrics));
    // The local platform's orders live in this database: each commits with its source's record
    // (one transaction). Any other platform is asked between a claim and the record.
    const placement: Placement =
      chosen === local
        ? createInStorePlacement({ db: store.handle, platform: traceInStore(instrumentInStore(local, metrics)), deadlineMs: config.platform.deadlineMs })
        : createRemotePlacement({ db: store.handle, platform, deadlineMs: config.platform.deadlineMs, redactEmail: config.log.redactEmail });
    const handleCallback = traced(
      "subscribe-pro.callback",
      {},
      createSubscribeProCallback({
        db: store.handle,
        placement,
        validate: validateRequest,
        platformDeadlineMs: config.platform.deadlineMs,
        clock,
      }),
      (span, out) => span.setAttribute("http.response.status_code", out.status),
    );

    const rc = config.recharge;
    // One bucket per token, shared by every instance using this database.
    const limiter = rc.apiToken === undefined ? undefined : createRateLimiter(store.handle, rechargeLimiterName(rc.apiToken), rc.rateLimit, clock);
    const client =
      rc.apiToken === undefined || limiter === undefined
        ? undefined
        : traceRechargeClient(
            createRechargeClient({
              baseUrl: rc.apiUrl,
              token: rc.apiToken,
              timeoutMs: rc.timeoutMs,
              // The write-back lane claims a job only when a slot is free (its `ready` below), so a
              // call rarely waits at all; a slot further away than this is not taken (the job is
              // given back, its attempt not spent).
              maxWaitMs: Math.min(1000, Math.floor(config.jobs.leaseMs / 4)),
              onResponse: (status) => metrics.rechargeCalls.inc({ status: String(status) }),
              onWait: (ms) => {
                metrics.rateLimitWaits.inc();
                metrics.rateLimitWaitSeconds.inc(ms / 1000);
              },
              limiter,
            }),
          );
    const nudgeInbox = (): void => worker.nudge("inbox");
    const nudgeWriteBacks = (): void => worker.nudge("writeback");
    const worker = createWorker({
      db: store.handle,
      handlers: traceHandlers(
        createRechargeHandlers({
          db: store.handle,
          placement,
          platform,
          client,
          sendOrderNumber: rc.sendOrderNumber,
          maxAttempts: config.jobs.maxAttempts,
          clock,
          onEnqueued: nudgeWriteBacks,
          redactEmail: config.log.redactEmail,
        }),
      ),
      // Placing orders (inbox events) and write-backs run in lanes of their own: a write-back
      // waiting for Recharge's rate limit never holds up an order.
      lanes: [
        { lane: "inbox", concurrency: config.jobs.concurrency },
        // With write-back off this instance leaves write-backs (queued by `orderbridge recharge
        // writeback`, or by an instance that has it on) to an instance that can send them.
        // While orders are being placed here, write-backs keep to Recharge's sustained rate and
        // leave its burst for later: they take no database and CPU time from the placing.
        ...(limiter === undefined
          ? []
          : [
              {
                lane: "writeback" as const,
                concurrency: config.jobs.writebackConcurrency,
                ready: () => limiter.wait(),
                yieldTo: { lane: "inbox" as const, intervalMs: 1000 / rc.rateLimit.perSecond },
              },
            ]),
      ],
      log,
      pollMs: config.jobs.pollMs,
      leaseMs: config.jobs.leaseMs,
      backoff: { baseMs: config.jobs.backoffBaseMs, maxMs: config.jobs.backoffMaxMs },
      clock,
      onAttempt: (kind, result) => metrics.jobAttempts.inc({ kind, result }),
    });
    const receiveRecharge =
      rc.clientSecrets.length === 0
        ? undefined
        : traced(
            "recharge.receive",
            {},
            createRechargeReceiver({
              db: store.handle,
              secrets: rc.clientSecrets,
              toleranceSeconds: rc.signatureToleranceSeconds,
              defaultVersion: rc.apiVersion,
              validateOrder: schemas.validator("recharge/order-webhook"),
              validateCheckout: schemas.validator("recharge/checkout-webhook"),
              maxAttempts: config.jobs.maxAttempts,
              clock,
              onEnqueued: nudgeInbox,
            }),
            (span, ack) => span.setAttributes({ "orderbridge.recharge.ack": ack.status, ...(ack.topic === null ? {} : { "orderbridge.recharge.topic": ack.topic }) }),
          );

    // Recharge stops sending after 48 hours of failed deliveries (it deletes the webhook), and
    // anyone with the token can remove one: the sweep and the webhook check keep "nothing lost".
    const holder = `${os.hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
    const sweeper =
      client === undefined || rc.sweep.intervalMs === 0
        ? undefined
        : createSweeper({
            db: store.handle,
            client,
            version: rc.apiVersion,
            validateOrder: schemas.validator("recharge/order-webhook"),
            maxAttempts: config.jobs.maxAttempts,
            lookbackMs: rc.sweep.lookbackMs,
            rateShare: rc.sweep.rateShare,
            rate: rc.rateLimit,
            cursorParam: rc.sweep.cursorParam,
            holder,
            clock,
            log,
            onEnqueued: (lane) => worker.nudge(lane),
            metrics,
          });
    const webhookCheck =
      client === undefined || config.publicUrl === undefined
        ? undefined
        : createWebhookCheck({
            subscriptions: createWebhookSubscriptions({ client, wanted: { publicUrl: config.publicUrl, topics: rc.subscriptions.topics, version: rc.subscriptions.version } }),
            db: store.handle,
            holder,
            intervalMs: rc.subscriptions.checkIntervalMs,
            autosync: rc.subscriptions.autosync,
            log,
            clock,
            onReport: (r) => {
              for (const t of r.topics) metrics.rechargeWebhookOk.set({ topic: t.topic }, t.state === "ok" ? 1 : 0);
              metrics.rechargeWebhookChecks.inc({ result: r.ok ? "ok" : "problem" });
            },
            onRepair: () => metrics.rechargeWebhookChecks.inc({ result: "repaired" }),
            onError: () => metrics.rechargeWebhookChecks.inc({ result: "error" }),
          });

    if (platform.name !== "local") log.info("platform", { platform: platform.name, clearsCarts: platform.clearCart !== undefined });
    if (config.trustProxy === true || typeof config.trustProxy === "number") {
      // Allowed with SP_AUTH=hmac only (config.ts refuses it with the allowlist), where it changes
      // nothing but the client address that is logged: say that it can be forged.
      log.warn(
        "TRUST_PROXY takes the client address from X-Forwarded-For as whoever connects sends it: logged client addresses can be forged. " +
          "Set TRUST_PROXY to your proxies' own addresses or CIDR ranges for addresses you can rely on",
        { trustProxy: config.trustProxy },
      );
    }
    // Every Subscribe Pro callback, whatever the platform, for the admin API and the console.
    const callbackLog = createCallbackLog({ db: store.handle, log, redactEmail: config.log.redactEmail });
    // What the admin API and the console read and do: the same functions for both.
    const admin: AdminDeps = {
      callbacks: {
        list: (q) => listCallbacks(store.handle, q),
        get: (id) => getCallback(store.handle, id),
        ofToken: (token) => callbacksOfToken(store.handle, token),
      },
      orders: { list: (q) => listOrders(store.handle, q), get: (n) => getOrder(store.handle, n) },
      events: {
        list: (q) => listEvents(store.handle, q),
        get: (id) => getEvent(store.handle, id),
        attempts: (id) => attemptsOf(store.handle, id),
        async replay(id) {
          const r = await replayJob(store.handle, id, clock());
          if (r.kind === "replayed") worker.nudge(r.job.lane);
          return r;
        },
        matching: (q) => matchingJobIds(store.handle, q),
        count: (q) => countMatchingJobs(store.handle, q),
        resolve: async (id, outcome) => ((await resolveDead(store.handle, id, outcome, clock())) === undefined ? undefined : getEvent(store.handle, id)),
      },
    };
    const app = createApp({
      config,
      metrics,
      log,
      spAuth: {
        mode: config.subscribePro.auth,
        secrets: config.subscribePro.hmacSecrets,
        allowlist: config.subscribePro.allowlist,
      },
      handleCallback,
      receiveRecharge,
      ping: () => store.ping(),
      recordCallback: (c) => callbackLog.record(c),
      ...(config.adminToken === undefined
        ? {}
        : {
            console: {
              adminToken: config.adminToken,
              clock,
              ...admin,
              overview: () => consoleOverview(store.handle, clock()),
              async recharge() {
                const last = webhookCheck?.last;
                return {
                  ...(limiter === undefined ? {} : { rateLimit: { waitMs: await limiter.wait(), burst: rc.rateLimit.burst, perSecond: rc.rateLimit.perSecond } }),
                  ...(webhookCheck === undefined
                    ? {}
                    : {
                        webhooks:
                          last === undefined
                            ? { ok: true, problems: [] }
                            : {
                                ok: last.ok,
                                problems: last.topics.filter((x) => x.state !== "ok").map((x) => ({ topic: x.topic, problem: x.problem ?? x.state })),
                              },
                      }),
                };
              },
              actions: {
                record: (a) => recordAction(store.handle, { ...a, at: clock() }),
                list: (n) => listActions(store.handle, n),
                ended: (id) => sessionEnded(store.handle, id),
                refusedSignIns: (address, since, limit) => refusedSignIns(store.handle, address, since, limit),
              },
            },
          }),
      admin,
    });
    if (opts.startWorker !== false) worker.start();
    if (opts.startRechargeTasks !== false) {
      sweeper?.start(rc.sweep.intervalMs);
      webhookCheck?.start();
    }
    const pruner =
      config.retention.days === 0
        ? undefined
        : createPruner({
            db: store.handle,
            retentionDays: config.retention.days,
            intervalMs: config.retention.pruneIntervalMs,
            ...(opts.firstPruneDelayMs === undefined ? {} : { firstDelayMs: opts.firstPruneDelayMs }),
            log,
            clock,
          });
    pruner?.start();
    return {
      app,
      store,
      worker,
      rechargeTasks: { sweeper, webhookCheck },
      callbackLog,
      async close() {
        await callbackLog.close();
        await pruner?.stop();
        await sweeper?.stop();
        await webhookCheck?.stop();
        await worker.stop(config.shutdownTimeoutMs);
        await platform.close?.();
        await store.close();
        await tracing?.shutdown();
      },
    };
  } catch (e) {
    await store.close();
    await tracing?.shutdown();
    throw e;
  }
}
