// The Subscribe Pro order callback: every selected target, measured in rounds, the targets alternating within each round.

import { describe, measure, spOrderRequests } from "../lib/load.js";
import { stopServer, type Server } from "../lib/processes.js";
import type { Results } from "../lib/results.js";
import { log, ROUNDS, type CallbackTarget } from "../lib/settings.js";
import { smokeTest, startTarget } from "../lib/targets.js";

export async function runCallbackRounds(targets: readonly CallbackTarget[], results: Results): Promise<void> {
  if (targets.length === 0) return;
  const servers = new Map<CallbackTarget, Server>();
  try {
    for (const t of targets) {
      const s = await startTarget(t);
      servers.set(t, s);
      await smokeTest(s);
      log(`${t} listening on ${s.port} (pid ${String(s.child.pid)})`);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of targets) {
        const s = servers.get(t) as Server;
        const m = await measure([s], spOrderRequests);
        const list = results.callback.get(t) ?? [];
        list.push(m);
        results.callback.set(t, list);
        log(`round ${round}/${ROUNDS} ${t.padEnd(16)} ${describe(m)}`);
      }
    }
  } finally {
    for (const s of servers.values()) await stopServer(s);
  }
}
