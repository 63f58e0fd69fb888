// The load: requests (each one a different, validly signed order), autocannon runs and what they measure.

import { createHash, createHmac } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import autocannon, { type RawResult, type Request as AcRequest } from "autocannon";
import type { Server } from "./processes.js";
import { cpuMs, machineCpu, sampleRss } from "./sampling.js";
import { CONNECTIONS, FAIL_RATE, RC_SECRET, ROOT, RUN_ID, SECONDS, SP_SECRET, WARM_SECONDS } from "./settings.js";

// Requests: each one a different, validly signed order.

let seq = 0;

export const spOrderBody = (token: string): string =>
  JSON.stringify({
    customerId: "1",
    customerEmail: "a@example.com",
    platformCustomerId: "P1",
    salesOrderToken: token,
    currency: "USD",
    shippingMethodCode: "ups_ground",
    payment: { paymentProfileId: "1" },
    shippingAddress: { city: "X", country: "US" },
    items: [{ productSku: "RUBY-RED", qty: "2", subscription: { id: "s1" } }],
  });

/** A Subscribe Pro order callback: unique salesOrderToken, Sp-Hmac = hex HMAC-SHA256(secret, body). */
export function spOrderRequests(): AcRequest[] {
  return [
    {
      method: "POST",
      path: "/callbacks/subscribe-pro/order",
      setupRequest: (req) => {
        const body = spOrderBody(`bench-${RUN_ID}-${++seq}`);
        const hmac = createHmac("sha256", SP_SECRET).update(body).digest("hex");
        return { ...req, body, headers: { ...req.headers, "content-type": "application/json", "sp-hmac": hmac } };
      },
    },
  ];
}

const rcFixture = JSON.parse(fs.readFileSync(path.join(ROOT, "samples/recharge/2021-11/order-created.json"), "utf8")) as { order: Record<string, unknown> };
let rcOrderId = 700_000_000 + Math.floor(Math.random() * 100_000_000);

function rcWebhookBody(): string {
  return JSON.stringify({ ...rcFixture, order: { ...rcFixture.order, id: ++rcOrderId } });
}

const rcSign = (body: string): string => createHash("sha256").update(RC_SECRET).update(body).digest("hex");

/** A Recharge order/created webhook: unique order id, X-Recharge-Hmac-Sha256 = hex SHA-256(secret + body). */
export function rcWebhookRequests(): AcRequest[] {
  return [
    {
      method: "POST",
      path: "/webhooks/recharge/order/created",
      setupRequest: (req) => {
        const body = rcWebhookBody();
        return {
          ...req,
          body,
          headers: { ...req.headers, "content-type": "application/json", "x-recharge-hmac-sha256": rcSign(body) },
        };
      },
    },
  ];
}

// Load and measurement.

export interface Measurement {
  reqPerSec: number;
  p50: number;
  p99: number;
  rssMb: number;
  total: number;
  non2xx: number;
  errors: number;
  statusCodes: Record<string, number>;
  failed: boolean;
  /** CPU time the server process(es) spent per completed request in the measured run. */
  serverCpuMsPerReq: number;
  /** CPU used by this process (the load generator) during the measured run, in % of one core. */
  loadGenCpuPct: number;
  /** CPU busy on the machine but used neither by the server(s) nor by the load generator, in % of one core (PostgreSQL counts here). */
  otherCpuPct: number;
}

function cannon(url: string, requests: AcRequest[], connections: number, seconds: number): Promise<RawResult> {
  return Promise.resolve(autocannon({ url, connections, duration: seconds, requests, timeout: 10, skipAggregateResult: true }));
}

/** Load split evenly over the servers (one autocannon each, run together); warm-up first, then the measured run. */
export async function measure(servers: readonly Server[], requests: () => AcRequest[], seconds = SECONDS, connections = CONNECTIONS): Promise<Measurement> {
  const each = Math.floor(connections / servers.length);
  const rss = sampleRss(servers);
  try {
    await Promise.all(servers.map((s) => cannon(s.url, requests(), each, WARM_SECONDS)));
    const cpu0 = cpuMs(servers);
    const machine0 = machineCpu();
    const self0 = process.cpuUsage();
    const wall0 = Date.now();
    const raws = await Promise.all(servers.map((s) => cannon(s.url, requests(), each, seconds)));
    const self = process.cpuUsage(self0);
    const wallMs = Date.now() - wall0;
    const machine1 = machineCpu();
    const selfMs = (self.user + self.system) / 1000;
    const loadGenCpuPct = (selfMs / wallMs) * 100;
    const serverCpu = cpuMs(servers) - cpu0;
    const machineBusyMs = machine1.totalMs - machine0.totalMs - (machine1.idleMs - machine0.idleMs);
    const otherCpuPct = (Math.max(0, machineBusyMs - serverCpu - selfMs) / wallMs) * 100;
    const rssMb = rss.stop();
    const agg = autocannon.aggregateResult(raws, { url: servers[0]?.url ?? "", connections });
    const total = raws.reduce((n, r) => n + r.totalCompletedRequests, 0);
    const non2xx = raws.reduce((n, r) => n + r.non2xx, 0);
    const errors = raws.reduce((n, r) => n + r.errors, 0);
    const statusCodes: Record<string, number> = {};
    for (const r of raws) for (const [code, { count }] of Object.entries(r.statusCodeStats)) statusCodes[code] = (statusCodes[code] ?? 0) + count;
    const reqPerSec = raws.reduce((n, r) => n + r.totalCompletedRequests / r.duration, 0);
    return {
      reqPerSec,
      p50: agg.latency.p50,
      p99: agg.latency.p99,
      rssMb,
      total,
      non2xx,
      errors,
      statusCodes,
      failed: total === 0 || (non2xx + errors) / (total + errors) > FAIL_RATE,
      serverCpuMsPerReq: total > 0 ? serverCpu / total : Number.NaN,
      loadGenCpuPct,
      otherCpuPct,
    };
  } finally {
    rss.stop();
  }
}

/** Latency at one connection: one request at a time, timed to the microsecond (autocannon's are whole ms). */
export interface SequentialLatency {
  p50: number;
  p99: number;
  reqPerSec: number;
  total: number;
  failed: boolean;
}

/**
 * Signed orders sent one after the other over one keep-alive connection for `seconds` (after
 * `warm` seconds not counted), each timed from the write of the request to the end of the answer.
 */
export async function sequentialLatency(s: Server, seconds = SECONDS, warm = WARM_SECONDS): Promise<SequentialLatency> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const one = (): Promise<{ ms: number; status: number }> => {
    const body = spOrderBody(`bench-${RUN_ID}-seq-${++seq}`);
    const hmac = createHmac("sha256", SP_SECRET).update(body).digest("hex");
    return new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const req = http.request(
        {
          host: "127.0.0.1",
          port: s.port,
          method: "POST",
          path: "/callbacks/subscribe-pro/order",
          agent,
          headers: { "content-type": "application/json", "sp-hmac": hmac, "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          res.on("data", () => undefined);
          res.on("end", () => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, status: res.statusCode ?? 0 }));
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  };
  try {
    for (const until = Date.now() + warm * 1000; Date.now() < until;) await one();
    const times: number[] = [];
    let bad = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < seconds * 1000) {
      const r = await one();
      times.push(r.ms);
      if (r.status < 200 || r.status > 299) bad++;
    }
    const wall = (Date.now() - t0) / 1000;
    times.sort((a, b) => a - b);
    const at = (q: number): number => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? Number.NaN;
    return { p50: at(0.5), p99: at(0.99), reqPerSec: times.length / wall, total: times.length, failed: times.length === 0 || bad / times.length > FAIL_RATE };
  } finally {
    agent.destroy();
  }
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export interface Summary {
  reqPerSec: number;
  p50: number;
  p99: number;
  rssMb: number;
  cpuMsPerReq: number;
  passed: number;
  rounds: number;
}

/** Median over the rounds that did not fail (NaN figures when every round failed). */
export function summarise(ms: readonly Measurement[]): Summary {
  const ok = ms.filter((m) => !m.failed);
  return {
    reqPerSec: median(ok.map((m) => m.reqPerSec)),
    p50: median(ok.map((m) => m.p50)),
    p99: median(ok.map((m) => m.p99)),
    rssMb: median(ok.map((m) => m.rssMb)),
    cpuMsPerReq: median(ok.map((m) => m.serverCpuMsPerReq)),
    passed: ok.length,
    rounds: ms.length,
  };
}

export const describe = (m: Measurement): string =>
  `${m.reqPerSec.toFixed(0)} req/s, p50 ${m.p50} ms, p99 ${m.p99} ms, RSS ${m.rssMb.toFixed(0)} MB, ` +
  `server CPU ${m.serverCpuMsPerReq.toFixed(2)} ms/req, load generator ${m.loadGenCpuPct.toFixed(0)}% / other ${m.otherCpuPct.toFixed(0)}% of a core` +
  (m.failed ? `, FAILED (${m.non2xx} non-2xx, ${m.errors} errors of ${m.total}; ${JSON.stringify(m.statusCodes)})` : "");

/** POSTs `n` signed order/created webhooks (each a new order), 20 at a time; resolves with how many were accepted. */
export async function deliverWebhooks(url: string, n: number): Promise<number> {
  const bodies = Array.from({ length: n }, () => rcWebhookBody());
  let next = 0;
  let accepted = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++] as string;
        const post = () =>
          fetch(`${url}/webhooks/recharge/order/created`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-recharge-hmac-sha256": rcSign(body) },
            body,
          });
        // fetch keeps connections alive across servers: a new server given the port of one stopped
        // a moment ago meets a pooled socket that is closed. A delivery is idempotent, so send it again.
        const res = await post().catch(post);
        const answer = (await res.json()) as { status?: string };
        if (res.status === 200 && (answer.status === "accepted" || answer.status === "duplicate")) accepted++;
      }
    }),
  );
  return accepted;
}
