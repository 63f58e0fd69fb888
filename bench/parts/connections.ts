// Fewer connections: the durable peer and orderbridge on SQLite FULL at 10 connections (autocannon,
// as the 50-connection rounds), and at 1 connection one request at a time, timed to the microsecond.
// Group commit shares one fsync among the commits that arrive together: at 50 connections many do,
// at 10 fewer, at 1 none — there it costs what one commit costs.

import { describe, measure, sequentialLatency, spOrderRequests, type Measurement, type SequentialLatency } from "../lib/load.js";
import { stopServer, type Server } from "../lib/processes.js";
import type { Results } from "../lib/results.js";
import { log, ROUNDS } from "../lib/settings.js";
import { smokeTest, startTarget } from "../lib/targets.js";

export const FEW_CONNECTIONS = 10;
export const CONNECTION_TARGETS = ["peer-full", "ob-sqlite-full"] as const;
export type ConnectionTarget = (typeof CONNECTION_TARGETS)[number];

export interface ConnectionsResult {
  few: Map<ConnectionTarget, Measurement[]>;
  one: Map<ConnectionTarget, SequentialLatency[]>;
}

export async function runConnections(results: Results): Promise<void> {
  const r: ConnectionsResult = { few: new Map(), one: new Map() };
  results.connections = r;
  const servers = new Map<ConnectionTarget, Server>();
  try {
    for (const t of CONNECTION_TARGETS) {
      const s = await startTarget(t);
      servers.set(t, s);
      await smokeTest(s);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of CONNECTION_TARGETS) {
        const s = servers.get(t) as Server;
        const few = await measure([s], spOrderRequests, undefined, FEW_CONNECTIONS);
        r.few.set(t, [...(r.few.get(t) ?? []), few]);
        log(`round ${round}/${ROUNDS} ${t.padEnd(16)} ${FEW_CONNECTIONS} connections: ${describe(few)}`);
        const one = await sequentialLatency(s);
        r.one.set(t, [...(r.one.get(t) ?? []), one]);
        log(`round ${round}/${ROUNDS} ${t.padEnd(16)} 1 connection: p50 ${one.p50.toFixed(2)} ms, p99 ${one.p99.toFixed(2)} ms, ${one.reqPerSec.toFixed(0)} req/s`);
      }
    }
  } finally {
    for (const s of servers.values()) await stopServer(s);
  }
}
