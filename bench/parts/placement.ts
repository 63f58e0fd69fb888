// Placement with write-back on: a burst of Recharge orders is placed as fast with write-back on (its
// calls waiting for Recharge's 2/s in their own lane) as with it off.

import { setTimeout as sleep } from "node:timers/promises";
import { startRechargeStandIn, type RechargeStandIn } from "../../tools/stand-ins/recharge-api.js";
import { fmtSec } from "../lib/format.js";
import { deliverWebhooks } from "../lib/load.js";
import { alive, startServer, stopServer, type Server } from "../lib/processes.js";
import type { Results } from "../lib/results.js";
import { BACKLOG_BURST, BACKLOG_PER_SECOND, log, PLACEMENT_ORDERS, PLACEMENT_TIMEOUT_MS, RC_SECRET, RC_TOKEN, ROUNDS } from "../lib/settings.js";
import { dataDir, orderbridgeEnv } from "../lib/targets.js";

/** Delivers `n` signed order/created webhooks (20 at a time) and resolves when all are placed: ms from the first delivery. */
async function placeBurst(server: Server, n: number): Promise<number> {
  const start = Date.now();
  const accepted = await deliverWebhooks(server.url, n);
  if (accepted !== n) throw new Error(`placement: ${accepted}/${n} webhooks accepted`);
  // Placed = the inbox event done (its counter in /metrics).
  for (;;) {
    const scrape = () => fetch(`${server.url}/metrics`);
    const text = await (await scrape().catch(scrape)).text();
    const m = /^orderbridge_job_attempts_total\{kind="recharge\.webhook",result="done"\} (\d+)/m.exec(text);
    if (m !== null && Number(m[1]) >= n) return Date.now() - start;
    if (Date.now() - start > PLACEMENT_TIMEOUT_MS) throw new Error(`placement: ${m?.[1] ?? 0}/${n} orders placed in ${PLACEMENT_TIMEOUT_MS / 1000} s`);
    if (!alive(server.child)) throw new Error("placement: the server exited");
    await sleep(20);
  }
}

export async function runPlacement(results: Results): Promise<void> {
  const r = { on: [] as number[], off: [] as number[] };
  results.placement = r;
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of round % 2 === 1 ? (["on", "off"] as const) : (["off", "on"] as const)) {
      let standIn: RechargeStandIn | undefined;
      let server: Server | undefined;
      try {
        standIn = await startRechargeStandIn({ token: RC_TOKEN, bucket: { size: BACKLOG_BURST, leakPerSecond: BACKLOG_PER_SECOND } });
        server = await startServer(
          `ob-placement-${mode}`,
          ["dist/main.js"],
          orderbridgeEnv({
            DATA_DIR: dataDir(`placement-${mode}-${round}`),
            RECHARGE_CLIENT_SECRETS: RC_SECRET,
            RECHARGE_API_TOKEN: RC_TOKEN,
            RECHARGE_API_URL: standIn.url,
            RECHARGE_WRITEBACK: mode,
          }),
        );
        const ms = await placeBurst(server, PLACEMENT_ORDERS);
        r[mode].push(ms);
        log(
          `round ${round}/${ROUNDS} placement, write-back ${mode.padEnd(3)}: ${PLACEMENT_ORDERS} orders placed in ${fmtSec(ms)} (${standIn.calls.length} write-backs sent meanwhile)`,
        );
      } finally {
        await stopServer(server);
        await standIn?.close();
      }
    }
  }
}
