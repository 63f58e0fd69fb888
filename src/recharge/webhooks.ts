import { setTimeout as sleep } from "node:timers/promises";
import { RechargeApiError } from "../errors.js";
import type { Logger } from "../logger.js";
import { classifyHttpStatus } from "../outbound/retry-policy.js";
import { remoteRequestId } from "../security/scrub.js";
import type { Tx } from "../store/handle.js";
import { releaseSweepLease, takeSweepLease } from "../store/recharge-sweep.js";
import { RateLimitDeferral, type RechargeClient, type RechargeResponse } from "./client.js";
import { compareSubscriptions, readWebhooksPage, type RemoteWebhook, type SubscriptionReport, type SyncAction, type WantedWebhooks } from "./subscriptions.js";

/**
 * One call of orderbridge's own to Recharge (webhook registrations, the sweep's lists): waits for a
 * rate-limit slot as long as it takes (these are not jobs holding a claim), and returns a 2xx
 * answer; anything else is a RechargeApiError with Recharge's words, the token scrubbed.
 */
export async function rechargeCall(
  client: RechargeClient,
  send: () => Promise<RechargeResponse>,
  what: string,
  o: { signal?: AbortSignal | undefined; beforeWait?: (ms: number) => Promise<void> | void } = {},
): Promise<RechargeResponse> {
  for (;;) {
    let res: RechargeResponse;
    try {
      res = await send();
    } catch (e) {
      if (e instanceof RateLimitDeferral) {
        await o.beforeWait?.(e.waitMs);
        await sleep(Math.max(10, e.waitMs), undefined, o.signal === undefined ? {} : { signal: o.signal });
        continue;
      }
      throw new RechargeApiError(client.scrub(`${what} failed: ${e instanceof Error ? e.message : String(e)}`), undefined, true);
    }
    if (classifyHttpStatus(res.status) === "ok") return res;
    if (res.status === 429) await client.limiter.penalize(undefined);
    const rid = remoteRequestId(res.headers["x-request-id"], client.scrub);
    const data = res.data;
    const errors = typeof data === "object" && data !== null && "errors" in data ? (data as { errors: unknown }).errors : data;
    const detail = errors === undefined || errors === null || errors === "" ? "" : client.scrub.excerpt(typeof errors === "string" ? errors : JSON.stringify(errors), 300);
    throw new RechargeApiError(
      `${what} → ${res.status}${rid === undefined ? "" : ` (request id ${rid})`}${detail === "" ? "" : `: ${detail}`}`,
      res.status,
      classifyHttpStatus(res.status) === "retry",
    );
  }
}

export interface SyncResult {
  before: SubscriptionReport;
  /** Each action of `before.actions`, done or failed. */
  applied: { action: SyncAction; ok: boolean; error?: string }[];
  after: SubscriptionReport;
}

export interface WebhookSubscriptions {
  readonly wanted: WantedWebhooks;
  /** The store's registrations (`GET /webhooks`, every page). */
  list(): Promise<RemoteWebhook[]>;
  status(): Promise<SubscriptionReport>;
  /** Creates what is missing, corrects a wrong version or address, deletes our duplicates; never touches other apps' webhooks. Idempotent. */
  sync(): Promise<SyncResult>;
}

export function createWebhookSubscriptions(deps: { client: RechargeClient; wanted: WantedWebhooks }): WebhookSubscriptions {
  const { client, wanted } = deps;
  const v = wanted.version;
  async function list(): Promise<RemoteWebhook[]> {
    const all: RemoteWebhook[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const path = cursor === undefined ? "/webhooks?limit=250" : `/webhooks?limit=250&cursor=${encodeURIComponent(cursor)}`;
      const res = await rechargeCall(client, () => client.get(path, v), `GET ${path.split("?")[0] ?? path}`);
      const read = readWebhooksPage(res.data);
      if (read === undefined) throw new RechargeApiError(`GET /webhooks → ${res.status} answered no list of webhooks`, res.status, false);
      all.push(...read.webhooks);
      if (read.next === undefined || read.webhooks.length === 0) break;
      cursor = read.next;
    }
    // The same registration twice (pages that overlap) counts once.
    return [...new Map(all.map((w) => [w.id, w])).values()];
  }
  const status = async (): Promise<SubscriptionReport> => compareSubscriptions(await list(), wanted);
  async function apply(a: SyncAction): Promise<void> {
    if (a.kind === "create") {
      await rechargeCall(client, () => client.post("/webhooks", { address: a.address, topic: a.topic, version: a.version }, v), "POST /webhooks");
    } else if (a.kind === "update") {
      const path = `/webhooks/${encodeURIComponent(a.id)}`;
      await rechargeCall(client, () => client.put(path, { address: a.address, version: a.version }, v), `PUT ${path}`);
    } else {
      const path = `/webhooks/${encodeURIComponent(a.id)}`;
      try {
        await rechargeCall(client, () => client.delete(path, v), `DELETE ${path}`);
      } catch (e) {
        // Gone already (another sync, a person): what was wanted.
        if (!(e instanceof RechargeApiError && e.status === 404)) throw e;
      }
    }
  }
  return {
    wanted,
    list,
    status,
    async sync() {
      const before = await status();
      const applied: SyncResult["applied"] = [];
      for (const action of before.actions) {
        try {
          await apply(action);
          applied.push({ action, ok: true });
        } catch (e) {
          applied.push({ action, ok: false, error: e instanceof Error ? e.message : String(e) });
        }
      }
      return { before, applied, after: before.actions.length === 0 ? before : await status() };
    },
  };
}

export interface WebhookCheckDeps {
  subscriptions: WebhookSubscriptions;
  db: Tx;
  /** This instance's id (the repair's lease holder). */
  holder: string;
  intervalMs: number;
  autosync: boolean;
  log: Logger;
  clock: () => number;
  /** Told each finding (metrics; the console's banner). */
  onReport: (r: SubscriptionReport) => void;
  onError: (e: unknown) => void;
  onRepair?: (applied: SyncResult["applied"]) => void;
}

export interface WebhookCheck {
  /** The last finding, undefined before the first check answered. */
  readonly last: SubscriptionReport | undefined;
  runOnce(): Promise<SubscriptionReport | undefined>;
  start(): void;
  stop(): Promise<void>;
}

/**
 * The periodic check (with PUBLIC_URL): every instance compares, so each one's metrics and console
 * tell; a repair (RECHARGE_WEBHOOKS_AUTOSYNC) is made by one instance at a time, under the
 * "webhooks" lease, so two instances never create the same registration twice.
 */
export function createWebhookCheck(deps: WebhookCheckDeps): WebhookCheck {
  let last: SubscriptionReport | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const describe = (r: SubscriptionReport): Record<string, string> => Object.fromEntries(r.topics.filter((t) => t.state !== "ok").map((t) => [t.topic, t.problem ?? t.state]));
  async function runOnce(): Promise<SubscriptionReport | undefined> {
    try {
      let report = await deps.subscriptions.status();
      if (!report.ok && deps.autosync) {
        const now = deps.clock();
        const lease = await takeSweepLease(deps.db, { task: "webhooks", holder: deps.holder, now, leaseMs: 60_000 });
        if (lease !== undefined) {
          try {
            const r = await deps.subscriptions.sync();
            deps.onRepair?.(r.applied);
            const failed = r.applied.filter((a) => !a.ok);
            deps.log.warn("Recharge webhooks repaired (RECHARGE_WEBHOOKS_AUTOSYNC)", {
              actions: r.applied.map((a) => `${a.action.kind} ${a.action.topic}${a.ok ? "" : ` failed: ${a.error ?? ""}`}`),
              failed: failed.length,
            });
            report = r.after;
          } finally {
            await releaseSweepLease(deps.db, { task: "webhooks", holder: deps.holder, now: deps.clock() });
          }
        }
      }
      last = report;
      deps.onReport(report);
      if (report.ok) deps.log.debug("Recharge webhooks ok", { topics: report.topics.map((t) => t.topic) });
      else {
        deps.log.error(
          "Recharge webhooks: orderbridge is missing deliveries (a webhook is missing or wrong); run `orderbridge recharge webhooks sync` or set RECHARGE_WEBHOOKS_AUTOSYNC=true",
          { problems: describe(report) },
        );
      }
      return report;
    } catch (e) {
      deps.onError(e);
      deps.log.error("Recharge webhooks could not be checked", { error: e instanceof Error ? e.message : String(e) });
      return undefined;
    }
  }
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce().finally(schedule);
    }, deps.intervalMs);
    timer.unref();
  };
  return {
    get last() {
      return last;
    },
    runOnce,
    start() {
      running = runOnce().finally(schedule);
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
