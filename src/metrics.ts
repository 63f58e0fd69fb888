import cluster from "node:cluster";
import { randomUUID } from "node:crypto";
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { AppError, ServiceUnavailableError } from "./errors.js";
import type { InStorePlatform } from "./orders/placement.js";
import type { CartToClear, CreateOrderContext, NormalizedOrder, PlatformAdapter, PlatformOrderResult } from "./orders/types.js";
import { HANDLED_TOPICS } from "./recharge/order.js";
import { QUEUE_STATES, queueCounts } from "./store/counts.js";
import type { Tx } from "./store/handle.js";

export { QUEUE_STATES } from "./store/counts.js";
import { readSweepStates } from "./store/recharge-sweep.js";

/**
 * What orderbridge exposes at GET /metrics (Prometheus text format). One registry per service, so
 * several services in one process (tests) do not mix their figures. Queue figures are read from the
 * database when scraped, so they describe the whole service, whichever instance answers. With
 * WORKERS>1 a scrape answers for every worker of the machine (summed through the cluster primary).
 */
export interface Metrics {
  readonly registry: Registry;
  httpRequests: Counter<"method" | "route" | "status">;
  httpDuration: Histogram<"method" | "route">;
  callbackOutcomes: Counter<"outcome">;
  webhooks: Counter<"topic" | "result">;
  /** Deprecated name of `webhooks` (orderbridge_webhooks_total), counted alike for one release. */
  webhooksDeprecated: Counter<"topic" | "result">;
  jobAttempts: Counter<"kind" | "result">;
  rechargeCalls: Counter<"status">;
  rateLimitWaits: Counter;
  rateLimitWaitSeconds: Counter;
  platformDuration: Histogram<"platform" | "outcome">;
  /** 1 when the topic's Recharge webhook is registered as wanted, 0 when it is missing or wrong (PUBLIC_URL set). */
  rechargeWebhookOk: Gauge<"topic">;
  rechargeWebhookChecks: Counter<"result">;
  rechargeSweepRuns: Counter<"result">;
  rechargeSweepOrders: Counter<"action">;
}

/** The closed label values of the Recharge reconciliation metrics. */
export const WEBHOOK_CHECK_RESULTS = ["ok", "problem", "repaired", "error"] as const;
export const SWEEP_RUN_RESULTS = ["finished", "failed", "lost_lease"] as const;
export const SWEEP_ORDER_ACTIONS = ["place", "write_back", "none", "invalid"] as const;

/**
 * Label values come from closed sets only: every distinct value is a time series kept until the
 * process ends, and most requests are sent by anyone (an unsigned POST to any URL, any method).
 * Routes are the app's route patterns (src/http/context.ts), statuses the ones it answers, kinds
 * and platforms its own names; the two below close what the sender chooses.
 */
const SERVED_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
/** The method, or "(other)" for the rest of what Node's parser accepts (PROPFIND, MKCOL, … some 25 more). */
export const methodLabel = (method: string): string => (SERVED_METHODS.has(method) ? method : "(other)");
/** A handled topic's name, "(other)" for any other topic, "(none)" when the delivery named none. */
export function webhookTopicLabel(topic: string | null | undefined): string {
  if (topic === undefined || topic === null) return "(none)";
  return (HANDLED_TOPICS as readonly string[]).includes(topic) ? topic : "(other)";
}

export interface MetricsOptions {
  /** Every job kind there is: each gets a figure (0 when it has no jobs), so no series vanishes. */
  jobKinds: readonly string[];
  /** What orderbridge_build_info says: the package version, and the commit when it is known. */
  build: { version: string; commit: string | undefined };
}

export function createMetrics(db: Tx, opts: MetricsOptions): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics: Metrics = {
    registry,
    httpRequests: new Counter({
      name: "orderbridge_http_requests_total",
      help: "HTTP requests answered, by method, route and status",
      labelNames: ["method", "route", "status"],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "orderbridge_http_request_duration_seconds",
      help: "Time to answer an HTTP request",
      labelNames: ["method", "route"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    callbackOutcomes: new Counter({
      name: "orderbridge_callback_outcomes_total",
      help: "Subscribe Pro order callbacks by outcome: 201, 202, 409 (nothing ordered), 4xx (refused request), 5xx",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    webhooks: new Counter({
      name: "orderbridge_recharge_webhooks_total",
      help: "Recharge webhooks received, by topic (a handled one, (other) or (none)) and result (accepted, duplicate, ignored, refused)",
      labelNames: ["topic", "result"],
      registers: [registry],
    }),
    webhooksDeprecated: new Counter({
      name: "orderbridge_webhooks_total",
      help: "Deprecated (removed in the next release): orderbridge_recharge_webhooks_total under its old name",
      labelNames: ["topic", "result"],
      registers: [registry],
    }),
    jobAttempts: new Counter({
      name: "orderbridge_job_attempts_total",
      help: "Attempts at inbox events and write-back jobs, by kind and result (done, skipped, retry, dead, released)",
      labelNames: ["kind", "result"],
      registers: [registry],
    }),
    rechargeCalls: new Counter({
      name: "orderbridge_recharge_api_requests_total",
      help: "Calls to the Recharge API, by HTTP status (network errors as 'error')",
      labelNames: ["status"],
      registers: [registry],
    }),
    rateLimitWaits: new Counter({
      name: "orderbridge_recharge_rate_limit_waits_total",
      help: "Recharge calls that waited for a slot of the shared rate limit",
      registers: [registry],
    }),
    rateLimitWaitSeconds: new Counter({
      name: "orderbridge_recharge_rate_limit_wait_seconds_total",
      help: "Time Recharge calls spent waiting for a rate-limit slot",
      registers: [registry],
    }),
    platformDuration: new Histogram({
      name: "orderbridge_platform_duration_seconds",
      help: "Time the platform took to place an order, by platform and outcome (placed, replayed, not_placed, refused, error)",
      labelNames: ["platform", "outcome"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    rechargeWebhookOk: new Gauge({
      name: "orderbridge_recharge_webhook_subscription_ok",
      help: "1 when the topic's Recharge webhook is registered at PUBLIC_URL with the wanted version, 0 when it is missing, wrong or doubled (set by each instance's check)",
      labelNames: ["topic"],
      registers: [registry],
      aggregator: "min",
    }),
    rechargeWebhookChecks: new Counter({
      name: "orderbridge_recharge_webhook_checks_total",
      help: "Checks of the Recharge webhook registrations, by result (ok, problem, repaired, error: Recharge did not answer)",
      labelNames: ["result"],
      registers: [registry],
    }),
    rechargeSweepRuns: new Counter({
      name: "orderbridge_recharge_sweep_runs_total",
      help: "Runs of the Recharge sweep in this process, by result (finished, failed: it goes on from its cursor next time, lost_lease)",
      labelNames: ["result"],
      registers: [registry],
    }),
    rechargeSweepOrders: new Counter({
      name: "orderbridge_recharge_sweep_orders_total",
      help: "Recharge orders the sweep looked at, by what they needed (place: missed, fed to the inbox; write_back; none; invalid)",
      labelNames: ["action"],
      registers: [registry],
    }),
  };
  for (const result of WEBHOOK_CHECK_RESULTS) metrics.rechargeWebhookChecks.inc({ result }, 0);
  for (const result of SWEEP_RUN_RESULTS) metrics.rechargeSweepRuns.inc({ result }, 0);
  for (const action of SWEEP_ORDER_ACTIONS) metrics.rechargeSweepOrders.inc({ action }, 0);

  new Gauge({
    name: "orderbridge_recharge_sweep_last_finished_timestamp_seconds",
    help: "When the Recharge sweep last finished a run (any instance's: read from the database), 0 before the first",
    registers: [registry],
    aggregator: "max",
    async collect() {
      const row = (await readSweepStates(db)).find((r) => r.name === "orders");
      this.set(row?.last_finished_at == null ? 0 : Number(row.last_finished_at) / 1000);
    },
  });

  // Prometheus's info-metric convention: value 1, the facts as labels (joined onto other series by
  // instance). A fixed set of one series per process.
  new Gauge({
    name: "orderbridge_build_info",
    help: "orderbridge's version, the Node.js version it runs on and the commit it was built from (empty when unknown); always 1",
    labelNames: ["version", "node_version", "commit"],
    registers: [registry],
    aggregator: "max",
  }).set({ version: opts.build.version, node_version: process.version, commit: opts.build.commit ?? "" }, 1);

  // Read from the database when scraped: one grouped query serves both gauges. Every worker reads
  // the same rows, so a cluster-wide scrape takes the largest, not the sum.
  let reading: Promise<void> | undefined;
  const refreshQueue = (): Promise<void> => (reading ??= readQueue().finally(() => (reading = undefined)));
  const depth = new Gauge({
    name: "orderbridge_queue_jobs",
    help: "Inbox events and write-back jobs waiting, running or dead (dead letters) in the database, by kind and state",
    labelNames: ["kind", "state"],
    registers: [registry],
    aggregator: "max",
    collect: refreshQueue,
  });
  const oldest = new Gauge({
    name: "orderbridge_queue_oldest_due_age_seconds",
    help: "Age of the oldest pending job that is due, by kind (0 when none)",
    labelNames: ["kind"],
    registers: [registry],
    aggregator: "max",
    collect: refreshQueue,
  });
  async function readQueue(): Promise<void> {
    const now = Date.now();
    const rows = await queueCounts(db, now);
    depth.reset();
    oldest.reset();
    const oldestByKind = new Map<string, number>();
    for (const kind of opts.jobKinds) {
      for (const state of QUEUE_STATES) depth.set({ kind, state }, 0);
      oldestByKind.set(kind, Infinity);
    }
    for (const r of rows) {
      depth.set({ kind: r.kind, state: r.state }, r.n);
      const at = r.oldest ?? Infinity;
      oldestByKind.set(r.kind, Math.min(oldestByKind.get(r.kind) ?? Infinity, at));
    }
    for (const [kind, at] of oldestByKind) oldest.set({ kind }, at === Infinity ? 0 : (now - at) / 1000);
  }
  if (cluster.isWorker) {
    // Answer the primary's requests for this worker's figures (prom-client's cluster protocol).
    AggregatorRegistry.setRegistries([registry]);
    new AggregatorRegistry();
  }
  return metrics;
}

const METRICS_REQUEST = "orderbridge:cluster-metrics-request";
const METRICS_RESPONSE = "orderbridge:cluster-metrics-response";
const CLUSTER_METRICS_TIMEOUT_MS = 6_000;

interface MetricsMessage {
  type: string;
  id: string;
  text?: string;
  error?: string;
}
const isMetricsMessage = (m: unknown, type: string): m is MetricsMessage =>
  typeof m === "object" && m !== null && (m as { type?: unknown }).type === type && typeof (m as { id?: unknown }).id === "string";

/**
 * In the cluster primary (WORKERS>1): a worker asked for /metrics gets every worker's figures,
 * counters and histograms summed, the queue figures as read (see createMetrics).
 */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on("message", (worker, message: unknown) => {
    if (!isMetricsMessage(message, METRICS_REQUEST)) return;
    const reply = (answer: Omit<MetricsMessage, "type" | "id">): void => {
      if (worker.isConnected()) worker.send({ type: METRICS_RESPONSE, id: message.id, ...answer });
    };
    aggregator.clusterMetrics().then(
      (text) => reply({ text }),
      (e: unknown) => reply({ error: e instanceof Error ? e.message : String(e) }),
    );
  });
}

/** The whole cluster's Prometheus text, asked of the primary (in a cluster worker). */
function clusterMetrics(): Promise<string> {
  return new Promise((resolve, reject) => {
    const id = randomUUID();
    const done = (): void => {
      clearTimeout(timer);
      process.off("message", onMessage);
    };
    const onMessage = (message: unknown): void => {
      if (!isMetricsMessage(message, METRICS_RESPONSE) || message.id !== id) return;
      done();
      if (message.text !== undefined) resolve(message.text);
      else reject(new ServiceUnavailableError("metrics_unavailable", `The workers' metrics could not be gathered: ${message.error ?? "no answer"}.`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new ServiceUnavailableError("metrics_unavailable", "The workers' metrics could not be gathered in time."));
    }, CLUSTER_METRICS_TIMEOUT_MS);
    process.on("message", onMessage);
    process.send?.({ type: METRICS_REQUEST, id });
  });
}

/** The Prometheus text (the queue figures read fresh from the database); every worker's in a cluster. */
export function renderMetrics(m: Metrics): Promise<string> {
  return cluster.isWorker && process.send !== undefined ? clusterMetrics() : m.registry.metrics();
}

/** A platform adapter that times each order into the platform latency histogram. */
/** placed: a new order; replayed: the order placed earlier under the same key; not_placed: nothing ordered. */
function platformOutcome(r: PlatformOrderResult): "placed" | "replayed" | "not_placed" {
  if (r.order === null) return "not_placed";
  return r.replayed ? "replayed" : "placed";
}

export function instrumentPlatform(platform: PlatformAdapter, m: Metrics): PlatformAdapter {
  const instrumented: PlatformAdapter = {
    name: platform.name,
    async createOrder(order: NormalizedOrder, ctx: CreateOrderContext): Promise<PlatformOrderResult> {
      const end = m.platformDuration.startTimer({ platform: platform.name });
      try {
        const r = await platform.createOrder(order, ctx);
        end({ outcome: platformOutcome(r) });
        return r;
      } catch (e) {
        // A sender's mistake found on the way (a reused key, answered 4xx) is not a platform error.
        end({ outcome: e instanceof AppError && e.httpStatus < 500 ? "refused" : "error" });
        throw e;
      }
    },
  };
  if (platform.clearCart !== undefined) {
    const clear = platform.clearCart.bind(platform);
    instrumented.clearCart = (cart: CartToClear, ctx) => clear(cart, ctx);
  }
  if (platform.close !== undefined) instrumented.close = platform.close.bind(platform);
  return instrumented;
}

/** The in-store platform, timed into the same histogram (its record commits with the order, so it is timed too). */
export function instrumentInStore<P extends InStorePlatform>(platform: P, m: Metrics): InStorePlatform {
  return {
    name: platform.name,
    async placeAndRecord(order, key, record, o) {
      const end = m.platformDuration.startTimer({ platform: platform.name });
      try {
        const r = await platform.placeAndRecord(order, key, record, o);
        end({ outcome: platformOutcome(r.result) });
        return r;
      } catch (e) {
        end({ outcome: e instanceof AppError && e.httpStatus < 500 ? "refused" : "error" });
        throw e;
      }
    },
  };
}
