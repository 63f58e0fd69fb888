// Recharge webhook acknowledgement: signed order/created deliveries under load, each answered once in the durable inbox.

import { startRechargeStandIn, type RechargeStandIn } from "../../tools/stand-ins/recharge-api.js";
import { describe, measure, rcWebhookRequests } from "../lib/load.js";
import { startServer, stopServer, type Server } from "../lib/processes.js";
import type { Results } from "../lib/results.js";
import { BACKLOG_BURST, BACKLOG_PER_SECOND, log, RC_SECRET, RC_TOKEN } from "../lib/settings.js";
import { dataDir, orderbridgeEnv } from "../lib/targets.js";

export async function runRechargeAck(results: Results): Promise<void> {
  let standIn: RechargeStandIn | undefined;
  let server: Server | undefined;
  try {
    standIn = await startRechargeStandIn({ token: RC_TOKEN, bucket: { size: BACKLOG_BURST, leakPerSecond: BACKLOG_PER_SECOND } });
    server = await startServer(
      "ob-recharge-ack",
      ["dist/main.js"],
      orderbridgeEnv({
        DATA_DIR: dataDir("recharge-ack"),
        RECHARGE_CLIENT_SECRETS: RC_SECRET,
        RECHARGE_API_TOKEN: RC_TOKEN,
        RECHARGE_API_URL: standIn.url,
      }),
    );
    const m = await measure([server], rcWebhookRequests);
    results.rechargeAck = m;
    log(`recharge-ack ${describe(m)}`);
  } finally {
    await stopServer(server);
    await standIn?.close();
  }
}
