import { randomBytes } from "node:crypto";
import { AppError, RechargeApiError } from "../errors.js";
import type { Tx } from "../store/handle.js";
import { replayJob, type Lane } from "../store/jobs.js";
import type { RateSpec } from "../outbound/retry-policy.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { knownRechargeOrders, readSweepStates, releaseSweepLease, saveSweepProgress, takeSweepLease, type RechargeSweepStateRow } from "../store/recharge-sweep.js";
import type { Validator } from "../validation/schemas.js";
import { queueWriteBacksFor } from "./catch-up.js";
import type { RechargeClient } from "./client.js";
import { JOB_PUT_ORDER, JOB_WEBHOOK } from "./handlers.js";
import { detectVersion, readOrderView, type RechargeApiVersion } from "./order.js";
import { inboxEvent, storeInboxEvent } from "./receive.js";
import { nextWatermark, readOrdersPage, rechargeTime, reconcileOrder, sweepWindow, SWEEP_PAGE_SIZE, type SweepDecision, type SweepWindow } from "./reconcile.js";
import { rechargeCall } from "./webhooks.js";

/**
 * The Recharge sweep's I/O: a run takes the "orders" lease (one sweeper among all instances), lists
 * the successful orders updated in its window (`GET /orders`, the largest page, cursor pagination),
 * decides each (src/recharge/reconcile.ts) and acts: a missed order goes into the inbox as a webhook
 * would (same dedupe key, so a webhook of the same order state is a duplicate, and the order is placed
 * once whatever arrives when), marked as coming from the sweep; a placed order Recharge shows without
 * an external id gets its write-back (queued, or the dead one replayed). After each page the next
 * page's cursor is stored, so a run interrupted by a restart goes on where it was.
 */
export interface SweeperDeps {
  db: Tx;
  client: RechargeClient;
  /** The version the orders are read in (RECHARGE_API_VERSION): the events' and write-backs' version. */
  version: RechargeApiVersion;
  validateOrder: Validator<{ order: Record<string, unknown> }>;
  maxAttempts: number;
  lookbackMs: number;
  /** RECHARGE_SWEEP_RATE_SHARE: the share of the rate limit the sweep may use. */
  rateShare: number;
  rate: RateSpec;
  cursorParam: "cursor" | "page_info";
  /** This instance's id (the lease holder). */
  holder: string;
  leaseMs?: number;
  clock: () => number;
  log: Logger;
  onEnqueued: (lane: Lane) => void;
  metrics?: Pick<Metrics, "rechargeSweepRuns" | "rechargeSweepOrders">;
}

export interface SweptOrder {
  id: string;
  action: SweepDecision["action"] | "invalid";
  reason: string;
  /** The inbox event it was fed as (place), or the write-back jobs replayed. */
  jobs?: string[];
}

export interface SweepReport {
  from: string;
  until: string;
  resumed: boolean;
  dryRun: boolean;
  /** False when the run stopped before its last page (it goes on from its cursor next time). */
  complete: boolean;
  pages: number;
  seen: number;
  /** Orders fed to the inbox (missed ones). */
  placed: number;
  /** Placed orders given their write-back: jobs queued, dead ones replayed. */
  writeBacksQueued: number;
  writeBacksReplayed: number;
  none: number;
  invalid: number;
  orders: SweptOrder[];
}

class LostLease extends AppError {
  readonly code = "sweep_lease_lost";
  readonly httpStatus = 503;
}

const LEASE_MS = 120_000;

export interface Sweeper {
  /** A scheduled run: under the lease, from the stored cursor; undefined when another instance holds the lease. */
  run(): Promise<SweepReport | undefined>;
  /** A run by hand over a window (`orderbridge recharge sweep --since`): no lease, the stored cursor untouched. */
  sweepWindow(o: { from: number; until: number; dryRun: boolean }): Promise<SweepReport>;
  start(intervalMs: number): void;
  stop(): Promise<void>;
}

export function createSweeper(deps: SweeperDeps): Sweeper {
  const leaseMs = deps.leaseMs ?? LEASE_MS;
  // Leave write-backs most of the bucket, and use at most the share of the sustained rate.
  const keepFree = Math.ceil((1 - deps.rateShare) * deps.rate.burst);
  const minIntervalMs = 1000 / (deps.rate.perSecond * deps.rateShare);
  let lastCallAt = Number.NEGATIVE_INFINITY;
  const abort = new AbortController();

  async function fetchPage(w: SweepWindow, cursor: string | undefined, renew: () => Promise<void>): Promise<{ orders: Record<string, unknown>[]; next: string | undefined }> {
    const q = new URLSearchParams({ limit: String(SWEEP_PAGE_SIZE) });
    if (cursor !== undefined) q.set(deps.cursorParam, cursor);
    else {
      q.set("status", "success");
      q.set("updated_at_min", rechargeTime(w.from));
      q.set("updated_at_max", rechargeTime(w.until));
    }
    const path = `/orders?${q.toString()}`;
    for (let attempt = 1; ; attempt++) {
      const pace = lastCallAt + minIntervalMs - Date.now();
      if (pace > 0) await sleep(pace);
      try {
        const res = await rechargeCall(
          deps.client,
          () => {
            lastCallAt = Date.now();
            return deps.client.get(path, deps.version, abort.signal, { keepFree });
          },
          "GET /orders",
          { signal: abort.signal, beforeWait: renew },
        );
        const page = readOrdersPage(res.data);
        if (page === undefined) throw new RechargeApiError(`GET /orders → ${res.status} answered no list of orders`, res.status, false);
        return page;
      } catch (e) {
        if (!(e instanceof RechargeApiError) || !e.retryable || attempt >= 5 || abort.signal.aborted) throw e;
        deps.log.warn("Recharge sweep: GET /orders failed, trying again", { error: e.message, attempt });
        await renew();
        await sleep(Math.min(30_000, 500 * 2 ** attempt));
      }
    }
  }

  async function sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      abort.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    });
    if (abort.signal.aborted) throw new LostLease("the sweep was stopped");
  }

  async function processOrders(orders: Record<string, unknown>[], report: SweepReport, o: { dryRun: boolean; correlationId: string }): Promise<void> {
    const valid: { raw: Record<string, unknown>; view: ReturnType<typeof readOrderView> }[] = [];
    for (const raw of orders) {
      const id = String(raw["id"] ?? "");
      try {
        deps.validateOrder({ order: raw });
        valid.push({ raw, view: readOrderView(raw) });
      } catch (e) {
        report.invalid++;
        report.orders.push({ id, action: "invalid", reason: e instanceof Error ? e.message : String(e) });
        deps.log.error("Recharge sweep: an order does not match the order schema, not placed", { rechargeOrderId: id, error: e instanceof Error ? e.message : String(e) });
      }
    }
    const known = await knownRechargeOrders(
      deps.db,
      valid.map((v) => v.view.id),
      [JOB_WEBHOOK, JOB_PUT_ORDER],
    );
    const now = deps.clock();
    const toWriteBack = [];
    let placedAny = false;
    for (const { raw, view } of valid) {
      const row = known.placed.get(view.id);
      const jobs = known.jobs.get(view.id) ?? [];
      const d = reconcileOrder({
        view,
        placed: row === undefined ? undefined : { platformOrderId: row.platformOrderId, orderNumber: row.orderNumber },
        events: jobs.filter((j) => j.kind === JOB_WEBHOOK),
        orderWriteBacks: jobs.filter((j) => j.kind === JOB_PUT_ORDER),
      });
      const entry: SweptOrder = { id: view.id, action: d.action, reason: d.reason };
      report.orders.push(entry);
      if (d.action === "none") report.none++;
      else if (d.action === "place") {
        report.placed++;
        if (!o.dryRun) {
          const topic = "order/created";
          const text = JSON.stringify({ order: raw });
          const r = await storeInboxEvent(
            deps.db,
            inboxEvent({
              source: "sweep",
              topic,
              topicSource: null,
              text,
              resourceId: view.id,
              updatedAt: raw["updated_at"],
              apiVersion: detectVersion(raw) ?? deps.version,
              correlationId: o.correlationId,
            }),
            { maxAttempts: deps.maxAttempts, now },
          );
          entry.jobs = [r.id];
          placedAny ||= r.inserted;
          deps.log.warn("Recharge sweep: an order no webhook placed is fed to the inbox", { rechargeOrderId: view.id, eventId: r.id, duplicate: !r.inserted, reason: d.reason });
        }
      } else if (d.replay.length > 0) {
        report.writeBacksReplayed += d.replay.length;
        entry.jobs = d.replay;
        if (!o.dryRun) for (const id of d.replay) await replayJob(deps.db, id, now);
      } else if (row !== undefined) toWriteBack.push(row);
      deps.metrics?.rechargeSweepOrders.inc({ action: d.action });
    }
    deps.metrics?.rechargeSweepOrders.inc({ action: "invalid" }, orders.length - valid.length);
    if (toWriteBack.length > 0) {
      const r = await queueWriteBacksFor(deps.db, toWriteBack, { maxAttempts: deps.maxAttempts, dryRun: o.dryRun, now, correlationId: o.correlationId });
      report.writeBacksQueued += r.queued;
      deps.log.warn("Recharge sweep: placed orders without an external id in Recharge get their write-back", {
        orders: toWriteBack.map((r) => r.rechargeOrderId),
        queued: r.queued,
        dryRun: o.dryRun,
      });
    }
    if (!o.dryRun && placedAny) deps.onEnqueued("inbox");
    if (!o.dryRun && (report.writeBacksQueued > 0 || report.writeBacksReplayed > 0)) deps.onEnqueued("writeback");
  }

  const newReport = (w: SweepWindow, dryRun: boolean): SweepReport => ({
    from: new Date(w.from).toISOString(),
    until: new Date(w.until).toISOString(),
    resumed: w.resumed,
    dryRun,
    complete: false,
    pages: 0,
    seen: 0,
    placed: 0,
    writeBacksQueued: 0,
    writeBacksReplayed: 0,
    none: 0,
    invalid: 0,
    orders: [],
  });
  const summary = (r: SweepReport): Omit<SweepReport, "orders"> => {
    const { orders: _orders, ...rest } = r;
    return rest;
  };

  async function run(): Promise<SweepReport | undefined> {
    const lease = await takeSweepLease(deps.db, { task: "orders", holder: deps.holder, now: deps.clock(), leaseMs });
    if (lease === undefined) return undefined;
    const w = sweepWindow(cursorOf(lease), deps.clock(), deps.lookbackMs);
    const report = newReport(w, false);
    const save = async (progress: Parameters<typeof saveSweepProgress>[1]["progress"]): Promise<void> => {
      if (!(await saveSweepProgress(deps.db, { task: "orders", holder: deps.holder, now: deps.clock(), leaseMs, progress }))) {
        throw new LostLease("another instance took the sweep's lease");
      }
    };
    const correlationId = `sweep_${randomBytes(6).toString("hex")}`;
    try {
      if (!w.resumed) await save({ run_from: w.from, run_until: w.until, page_cursor: null });
      else deps.log.info("Recharge sweep goes on with an interrupted run", { from: report.from, until: report.until, cursor: w.pageCursor !== undefined });
      let cursor = w.pageCursor;
      for (;;) {
        const page = await fetchPage(w, cursor, () => save({}));
        report.pages++;
        report.seen += page.orders.length;
        await processOrders(page.orders, report, { dryRun: false, correlationId });
        cursor = page.next;
        if (cursor === undefined || page.orders.length === 0) break;
        await save({ page_cursor: cursor });
      }
      report.complete = true;
      await save({ watermark: nextWatermark(w), run_from: null, run_until: null, page_cursor: null, last_finished_at: deps.clock(), last_result: JSON.stringify(summary(report)) });
      deps.metrics?.rechargeSweepRuns.inc({ result: "finished" });
      const fields = { ...summary(report), correlationId };
      if (report.placed > 0 || report.writeBacksQueued > 0 || report.writeBacksReplayed > 0 || report.invalid > 0)
        deps.log.warn("Recharge sweep found orders the webhooks missed", fields);
      else deps.log.info("Recharge sweep finished: nothing missed", fields);
      return report;
    } catch (e) {
      const lost = e instanceof LostLease;
      deps.metrics?.rechargeSweepRuns.inc({ result: lost ? "lost_lease" : "failed" });
      if (!abort.signal.aborted) {
        deps.log.error(lost ? "Recharge sweep stopped: another instance took its lease" : "Recharge sweep failed; the next run goes on from its cursor", {
          error: e instanceof Error ? e.message : String(e),
          ...summary(report),
        });
      }
      return report;
    } finally {
      await releaseSweepLease(deps.db, { task: "orders", holder: deps.holder, now: deps.clock() }).catch(() => undefined);
    }
  }

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  return {
    run,
    async sweepWindow(o) {
      const w: SweepWindow = { from: o.from, until: o.until, pageCursor: undefined, resumed: false };
      const report = newReport(w, o.dryRun);
      let cursor: string | undefined;
      const correlationId = `sweep_${randomBytes(6).toString("hex")}`;
      for (;;) {
        const page = await fetchPage(w, cursor, async () => undefined);
        report.pages++;
        report.seen += page.orders.length;
        await processOrders(page.orders, report, { dryRun: o.dryRun, correlationId });
        cursor = page.next;
        if (cursor === undefined || page.orders.length === 0) break;
      }
      report.complete = true;
      return report;
    },
    start(intervalMs) {
      // The first run one interval after start; sooner when the last one is older than that or was
      // interrupted (an instance restarted more often than the interval would never sweep).
      const first = (async (): Promise<number> => {
        const row = (await readSweepStates(deps.db)).find((r) => r.name === "orders");
        if (row === undefined) return intervalMs;
        const overdue = row.run_from !== null || row.last_finished_at === null || Number(row.last_finished_at) + intervalMs < deps.clock();
        return overdue ? Math.min(intervalMs, 5_000) : Math.max(0, Number(row.last_finished_at) + intervalMs - deps.clock());
      })();
      const tick = (delay: number): void => {
        if (stopped) return;
        timer = setTimeout(() => {
          running = run()
            .catch((e: unknown) => deps.log.error("Recharge sweep failed", { error: e instanceof Error ? e.message : String(e) }))
            .finally(() => tick(intervalMs));
        }, delay);
        timer.unref();
      };
      running = first.then(tick, (e: unknown) => {
        deps.log.error("Recharge sweep: its state could not be read; the first run is one interval away", { error: e instanceof Error ? e.message : String(e) });
        tick(intervalMs);
      });
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      abort.abort();
      await running;
    },
  };
}

function cursorOf(row: RechargeSweepStateRow) {
  return {
    watermark: row.watermark === null ? null : Number(row.watermark),
    runFrom: row.run_from === null ? null : Number(row.run_from),
    runUntil: row.run_until === null ? null : Number(row.run_until),
    pageCursor: row.page_cursor,
  };
}
