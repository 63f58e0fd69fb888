// The Recharge write-back backlog: 500 webhooks at once, written back under Recharge's leaky bucket.

import { setTimeout as sleep } from "node:timers/promises";
import { startRechargeStandIn, type RechargeStandIn } from "../../tools/stand-ins/recharge-api.js";
import { fmtSec } from "../lib/format.js";
import { deliverWebhooks } from "../lib/load.js";
import { alive, startServer, stopServer, type Server } from "../lib/processes.js";
import type { Results } from "../lib/results.js";
import { sampleRss } from "../lib/sampling.js";
import { BACKLOG_BURST, BACKLOG_PER_SECOND, BACKLOG_TIMEOUT_MS, BACKLOG_WEBHOOKS, log, RC_SECRET, RC_TOKEN } from "../lib/settings.js";
import { dataDir, orderbridgeEnv } from "../lib/targets.js";

export interface BacklogResult {
  delivered: number;
  accepted: number;
  deliverMs: number;
  succeeded: number;
  firstToLastMs: number | undefined;
  fortiethMs: number | undefined;
  rate: number | undefined;
  percentOfLimit: number | undefined;
  rejections429: number;
  /** When the 429s came: "+s after the first PUT (call #n)", the first few. */
  rejectionTimes: string[];
  otherFailures: number;
  rssMb: number;
  timedOut: boolean;
}

export async function runBacklog(results: Results): Promise<void> {
  let standIn: RechargeStandIn | undefined;
  let server: Server | undefined;
  try {
    standIn = await startRechargeStandIn({ token: RC_TOKEN, bucket: { size: BACKLOG_BURST, leakPerSecond: BACKLOG_PER_SECOND } });
    server = await startServer(
      "ob-backlog",
      ["dist/main.js"],
      orderbridgeEnv({
        DATA_DIR: dataDir("backlog"),
        RECHARGE_CLIENT_SECRETS: RC_SECRET,
        RECHARGE_API_TOKEN: RC_TOKEN,
        RECHARGE_API_URL: standIn.url,
        RECHARGE_RATE_LIMIT_BURST: String(BACKLOG_BURST),
        RECHARGE_RATE_LIMIT_PER_SECOND: String(BACKLOG_PER_SECOND),
        WORKER_CONCURRENCY: "4",
      }),
    );
    const rss = sampleRss([server]);
    const url = server.url;
    // Deliver the webhooks as fast as possible (20 at a time); each is acknowledged at once.
    const deliverStart = Date.now();
    const accepted = await deliverWebhooks(url, BACKLOG_WEBHOOKS);
    const deliverMs = Date.now() - deliverStart;
    log(`backlog: ${accepted}/${BACKLOG_WEBHOOKS} webhooks accepted in ${deliverMs} ms; waiting for the write-backs (up to ${BACKLOG_TIMEOUT_MS / 60_000} min)`);
    const putOrders = (): number => (standIn as RechargeStandIn).succeeded().filter((c) => c.method === "PUT" && c.path.startsWith("/orders/")).length;
    const waitStart = Date.now();
    let lastReport = Date.now();
    while (putOrders() < BACKLOG_WEBHOOKS && Date.now() - waitStart < BACKLOG_TIMEOUT_MS && alive(server.child)) {
      await sleep(250);
      if (Date.now() - lastReport >= 30_000) {
        lastReport = Date.now();
        log(`backlog: ${putOrders()}/${BACKLOG_WEBHOOKS} written back, ${standIn.bucketRejections} × 429`);
      }
    }
    const rssMb = rss.stop();
    const puts = standIn.calls.filter((c) => c.method === "PUT" && c.path.startsWith("/orders/"));
    const ok = puts.filter((c) => c.status >= 200 && c.status < 300).sort((x, y) => x.at - y.at);
    const first = puts.length > 0 ? Math.min(...puts.map((c) => c.at)) : undefined;
    const at40 = ok[BACKLOG_BURST - 1]?.at;
    const atLast = ok[BACKLOG_WEBHOOKS - 1]?.at;
    const firstToLastMs = first !== undefined && atLast !== undefined ? atLast - first : undefined;
    const fortiethMs = first !== undefined && at40 !== undefined ? at40 - first : undefined;
    const rate =
      firstToLastMs !== undefined && fortiethMs !== undefined && firstToLastMs > fortiethMs
        ? (BACKLOG_WEBHOOKS - BACKLOG_BURST) / ((firstToLastMs - fortiethMs) / 1000)
        : undefined;
    const r: BacklogResult = {
      delivered: BACKLOG_WEBHOOKS,
      accepted,
      deliverMs,
      succeeded: ok.length,
      firstToLastMs,
      fortiethMs,
      rate,
      percentOfLimit: rate === undefined ? undefined : (rate / BACKLOG_PER_SECOND) * 100,
      rejections429: standIn.calls.filter((c) => c.status === 429).length,
      rejectionTimes: puts
        .map((c, i) => ({ c, i }))
        .filter(({ c }) => c.status === 429)
        .slice(0, 5)
        .map(({ c, i }) => `PUT #${i + 1} at +${((c.at - (first ?? c.at)) / 1000).toFixed(2)} s`),
      otherFailures: standIn.calls.filter((c) => c.status !== 429 && (c.status < 200 || c.status >= 300)).length,
      rssMb,
      timedOut: ok.length < BACKLOG_WEBHOOKS,
    };
    results.backlog = r;
    log(
      `backlog: ${r.succeeded}/${BACKLOG_WEBHOOKS} written back; first→500th ${fmtSec(r.firstToLastMs)}, ` +
        `rate after the burst ${r.rate?.toFixed(3) ?? "–"}/s (${r.percentOfLimit?.toFixed(1) ?? "–"}% of ${BACKLOG_PER_SECOND}/s), ${r.rejections429} × 429` +
        (r.rejectionTimes.length > 0 ? ` (${r.rejectionTimes.join(", ")})` : ""),
    );
  } finally {
    await stopServer(server);
    await standIn?.close();
  }
}
