// orderbridge's benchmark harness: `npm run bench` (builds src/ to dist/, then runs this file).
//
// Every server runs as its own child process on 127.0.0.1; the load (autocannon, 50 connections,
// every request a different, validly signed order) is generated in this process, on the same two
// cores. The Subscribe Pro callback targets are measured in rounds, alternating the targets within
// each round so that machine noise hits all alike; the median of the rounds is reported. Results go
// to BENCHMARKS.md and a compact summary to stdout.
//
// Knobs: BENCH_SECONDS (measured seconds per run, default 8), BENCH_ROUNDS (default 3), BENCH_ONLY
// (comma list of parts: ceiling, reference, front-door, ob-sqlite-full, ob-sqlite-normal, ob-sqlite-nogroup,
// ob-sqlite-2workers, ob-postgres,
// recharge-ack, pg-scale, backlog, placement, retention), BENCH_SKIP_BACKLOG=1, BENCH_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/test), BENCH_RETENTION_ROWS (finished rows seeded into each of
// jobs and sp_callbacks for the retention part, default 1 000 000).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import autocannon, { type RawResult, type Request as AcRequest } from "autocannon";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { openStore } from "../src/store/db.js";
import { DAY_MS } from "../src/store/retention.js";
import { startRechargeStandIn, type RechargeStandIn } from "../tools/stand-ins/recharge-api.js";

// ---------------------------------------------------------------------------------------------
// Settings

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const REPORT = path.join(ROOT, "BENCHMARKS.md");
const ANALYSIS = path.join(ROOT, "bench", "analysis.md");

function intEnv(name: string, def: number, min: number, max: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
  return n;
}

const CONNECTIONS = 50;
const WARM_SECONDS = 2;
const SECONDS = intEnv("BENCH_SECONDS", 8, 1, 600);
const ROUNDS = intEnv("BENCH_ROUNDS", 3, 1, 50);
const SKIP_BACKLOG = process.env["BENCH_SKIP_BACKLOG"] === "1";
const DATABASE_URL = process.env["BENCH_DATABASE_URL"]?.trim() || "postgres://postgres@127.0.0.1:5432/test";
const FAIL_RATE = 0.01; // a run with more than 1% non-2xx answers (or errors) failed
const BACKLOG_WEBHOOKS = 500;
const BACKLOG_BURST = 40;
const BACKLOG_PER_SECOND = 2;
const BACKLOG_TIMEOUT_MS = 5 * 60_000;
/** The placement part: a burst of Recharge orders, placed with write-back on and off. */
const PLACEMENT_ORDERS = 300;
const PLACEMENT_TIMEOUT_MS = 2 * 60_000;
const RETENTION_ROWS = intEnv("BENCH_RETENTION_ROWS", 1_000_000, 1000, 20_000_000);
/** Scrapes of /metrics per retention target (sequential, on the idle server). */
const RETENTION_SCRAPES = 100;
/** The seeded rows finished over this many days before the run: all within the default RETENTION_DAYS (30). */
const RETENTION_SPREAD_DAYS = 29;
/** The pruning variant's RETENTION_DAYS: the rows older than this (≈ 22/29 of them) are pruned while it is measured. */
const RETENTION_PRUNE_DAYS = 7;

const CALLBACK_TARGETS = [
  "ceiling",
  "reference",
  "front-door",
  "ob-sqlite-full",
  "ob-sqlite-normal",
  "ob-sqlite-nogroup",
  "ob-sqlite-2workers",
  "ob-postgres",
] as const;
type CallbackTarget = (typeof CALLBACK_TARGETS)[number];
const EXTRA_PARTS = ["recharge-ack", "pg-scale", "backlog", "placement", "retention"] as const;
type Part = CallbackTarget | (typeof EXTRA_PARTS)[number];
const ALL_PARTS: readonly Part[] = [...CALLBACK_TARGETS, ...EXTRA_PARTS];

const ONLY: ReadonlySet<Part> = (() => {
  const raw = process.env["BENCH_ONLY"]?.trim();
  if (raw === undefined || raw === "") return new Set(ALL_PARTS);
  const names = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const unknown = names.filter((n) => !(ALL_PARTS as readonly string[]).includes(n));
  if (unknown.length > 0) throw new Error(`BENCH_ONLY: unknown part(s) ${unknown.join(", ")}; known: ${ALL_PARTS.join(", ")}`);
  return new Set(names as Part[]);
})();
const wants = (p: Part): boolean => ONLY.has(p) && !(p === "backlog" && SKIP_BACKLOG);

const RUN_ID = randomBytes(4).toString("hex");
const SP_SECRET = randomBytes(24).toString("hex");
const RC_SECRET = randomBytes(24).toString("hex");
const RC_TOKEN = `rc_bench_${randomBytes(8).toString("hex")}`;

const log = (line: string): void => {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

// ---------------------------------------------------------------------------------------------
// Child processes: each server its own process group, output to a file, killed in `finally`.

interface Server {
  name: string;
  child: ChildProcess;
  port: number;
  url: string;
  logFile: string;
}

const children = new Set<ChildProcess>();
let tmpDir = "";

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || !alive(child)) return;
  try {
    process.kill(-child.pid, signal); // the child's own process group (spawned detached)
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (alive(child)) {
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    signalGroup(child, "SIGTERM");
    const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
    if (timedOut) {
      signalGroup(child, "SIGKILL");
      await Promise.race([exited, sleep(2000)]);
    }
  }
  children.delete(child);
}

async function stopServer(s: Server | undefined): Promise<void> {
  if (s !== undefined) await stopChild(s.child);
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no output)";
  }
}

/** Spawns `node <args>` with only the given environment (plus PATH), output to a file; waits for "listening on port N". */
async function startServer(name: string, args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<Server> {
  const logFile = path.join(tmpDir, `${name}.log`);
  const fd = fs.openSync(logFile, "a");
  // A log may hold an earlier server's lines (the same name started again): read this one's only.
  const from = fs.fstatSync(fd).size;
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...env },
      stdio: ["ignore", fd, fd],
      detached: true,
    });
  } finally {
    fs.closeSync(fd);
  }
  children.add(child);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /listening on port (\d+)/.exec(fs.readFileSync(logFile, "utf8").slice(from));
    if (m !== null) {
      const port = Number(m[1]);
      return { name, child, port, url: `http://127.0.0.1:${port}`, logFile };
    }
    if (!alive(child) || Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`${name} did not start (${alive(child) ? "timeout" : `exit ${String(child.exitCode ?? child.signalCode)}`}):\n${tail(logFile)}`);
    }
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// Memory: VmRSS of a process and its descendants (cluster workers), sampled every 250 ms.

function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

function withDescendants(pid: number): number[] {
  const out = [pid];
  try {
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      const kids = fs.readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (kids !== "") for (const k of kids.split(/\s+/)) out.push(...withDescendants(Number(k)));
    }
  } catch {
    /* gone */
  }
  return out;
}

function sampleRss(servers: readonly Server[]): { stop: () => number } {
  let maxKb = 0;
  const sample = (): void => {
    let kb = 0;
    for (const s of servers) if (s.child.pid !== undefined) for (const pid of withDescendants(s.child.pid)) kb += rssKb(pid);
    maxKb = Math.max(maxKb, kb);
  };
  sample();
  const timer = setInterval(sample, 250);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return maxKb / 1024;
    },
  };
}

// CPU time (user + system, ms) of a process and its descendants, from /proc/<pid>/stat.
const CLK_TCK = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

function cpuMs(servers: readonly Server[]): number {
  let ticks = 0;
  for (const s of servers) {
    if (s.child.pid === undefined) continue;
    for (const pid of withDescendants(s.child.pid)) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
      } catch {
        /* gone */
      }
    }
  }
  return (ticks * 1000) / CLK_TCK;
}

/** The machine's CPU time so far (ms, all cores): idle (with iowait) and total (steal included). */
function machineCpu(): { idleMs: number; totalMs: number } {
  const cpu = (fs.readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1, 9).map(Number);
  const toMs = (ticks: number): number => (ticks * 1000) / CLK_TCK;
  return { idleMs: toMs((cpu[3] ?? 0) + (cpu[4] ?? 0)), totalMs: toMs(cpu.reduce((a, b) => a + b, 0)) };
}

/** Share of the machine's CPU time that was idle over `ms` (to tell whether something else is running). */
async function machineIdle(ms: number): Promise<number> {
  const a = machineCpu();
  await sleep(ms);
  const b = machineCpu();
  return b.totalMs > a.totalMs ? (b.idleMs - a.idleMs) / (b.totalMs - a.totalMs) : Number.NaN;
}

// ---------------------------------------------------------------------------------------------
// Requests: each one a different, validly signed order.

let seq = 0;

const spOrderBody = (token: string): string =>
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
function spOrderRequests(): AcRequest[] {
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

const rcFixture = JSON.parse(
  fs.readFileSync(path.join(ROOT, "samples/recharge/2021-11/order-created.json"), "utf8"),
) as { order: Record<string, unknown> };
let rcOrderId = 700_000_000 + Math.floor(Math.random() * 100_000_000);

function rcWebhookBody(): string {
  return JSON.stringify({ ...rcFixture, order: { ...rcFixture.order, id: ++rcOrderId } });
}

const rcSign = (body: string): string => createHash("sha256").update(RC_SECRET).update(body).digest("hex");

/** A Recharge order/created webhook: unique order id, X-Recharge-Hmac-Sha256 = hex SHA-256(secret + body). */
function rcWebhookRequests(): AcRequest[] {
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

// ---------------------------------------------------------------------------------------------
// Load and measurement.

interface Measurement {
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
  return Promise.resolve(
    autocannon({ url, connections, duration: seconds, requests, timeout: 10, skipAggregateResult: true }),
  );
}

/** Load split evenly over the servers (one autocannon each, run together); warm-up first, then the measured run. */
async function measure(servers: readonly Server[], requests: () => AcRequest[], seconds = SECONDS): Promise<Measurement> {
  const each = Math.floor(CONNECTIONS / servers.length);
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
    const agg = autocannon.aggregateResult(raws, { url: servers[0]?.url ?? "", connections: CONNECTIONS });
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

function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

interface Summary {
  reqPerSec: number;
  p50: number;
  p99: number;
  rssMb: number;
  cpuMsPerReq: number;
  passed: number;
  rounds: number;
}

/** Median over the rounds that did not fail (NaN figures when every round failed). */
function summarise(ms: readonly Measurement[]): Summary {
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

const describe = (m: Measurement): string =>
  `${m.reqPerSec.toFixed(0)} req/s, p50 ${m.p50} ms, p99 ${m.p99} ms, RSS ${m.rssMb.toFixed(0)} MB, ` +
  `server CPU ${m.serverCpuMsPerReq.toFixed(2)} ms/req, load generator ${m.loadGenCpuPct.toFixed(0)}% / other ${m.otherCpuPct.toFixed(0)}% of a core` +
  (m.failed ? `, FAILED (${m.non2xx} non-2xx, ${m.errors} errors of ${m.total}; ${JSON.stringify(m.statusCodes)})` : "");

// ---------------------------------------------------------------------------------------------
// PostgreSQL.

const schemas: string[] = [];

async function postgresSkipReason(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query("select 1");
    return undefined;
  } catch (e) {
    return `PostgreSQL unreachable at ${DATABASE_URL} (${(e as Error).message})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function postgresVersion(): Promise<string> {
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    const r = await client.query<{ server_version: string }>("show server_version");
    return r.rows[0]?.server_version ?? "?";
  } finally {
    await client.end().catch(() => undefined);
  }
}

function newSchema(suffix: string): string {
  const name = `ob_bench_${RUN_ID}_${suffix}`;
  schemas.push(name);
  return name;
}

async function dropSchemas(): Promise<void> {
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    for (const s of schemas.splice(0)) {
      if (!/^ob_bench_[a-z0-9_]+$/.test(s)) continue;
      await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      log(`dropped schema ${s}`);
    }
  } catch (e) {
    log(`could not drop schema(s) ${schemas.join(", ")}: ${(e as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Targets.

let serversDir = "";

/** Compiles bench/servers/*.ts to plain JS (so the yardsticks run without a TypeScript loader in their memory). */
function compileServers(): void {
  serversDir = path.join(tmpDir, "servers");
  const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
  // rootDir is the project: the front door imports orderbridge's src/, compiled here alongside it
  // by the same compiler to the same target as dist/.
  const r = spawnSync(
    process.execPath,
    [
      tsc, "--ignoreConfig", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022",
      "--types", "node", "--skipLibCheck", "--strict", "--esModuleInterop", "--resolveJsonModule", "--rootDir", ROOT,
      "--outDir", serversDir,
      ...["ceiling", "reference", "front-door"].map((n) => path.join(ROOT, `bench/servers/${n}.ts`)),
    ],
    { cwd: ROOT, encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`compiling bench/servers failed:\n${r.stdout}${r.stderr}`);
  fs.writeFileSync(path.join(serversDir, "package.json"), '{"type":"module"}\n');
  // What the compiled src/ finds beside itself in the project: its packages, schemas and OpenAPI document.
  for (const name of ["node_modules", "schemas", "openapi.yaml"]) {
    fs.symlinkSync(path.join(ROOT, name), path.join(serversDir, name));
  }
}

const serverScript = (name: string): string => path.join(serversDir, "bench", "servers", `${name}.js`);

function orderbridgeEnv(extra: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: "production",
    LOG_LEVEL: "info",
    PORT: "0",
    HOST: "127.0.0.1",
    SP_HMAC_SECRETS: SP_SECRET,
    ...extra,
  };
}

function dataDir(name: string): string {
  const d = path.join(tmpDir, `data-${name}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

function startTarget(t: CallbackTarget): Promise<Server> {
  switch (t) {
    case "ceiling":
      return startServer(t, [serverScript("ceiling")], { PORT: "0", NODE_ENV: "production" });
    case "reference":
      return startServer(t, [serverScript("reference")], { PORT: "0", NODE_ENV: "production", SP_HMAC_SECRET: SP_SECRET });
    case "front-door":
      return startServer(t, [serverScript("front-door")], orderbridgeEnv({ DATA_DIR: dataDir(t) }));
    case "ob-sqlite-full":
      return startServer(t, ["dist/main.js"], orderbridgeEnv({ DATA_DIR: dataDir(t), SQLITE_SYNCHRONOUS: "FULL" }));
    case "ob-sqlite-normal":
      return startServer(t, ["dist/main.js"], orderbridgeEnv({ DATA_DIR: dataDir(t), SQLITE_SYNCHRONOUS: "NORMAL" }));
    case "ob-sqlite-nogroup":
      return startServer(t, ["dist/main.js"], orderbridgeEnv({ DATA_DIR: dataDir(t), SQLITE_SYNCHRONOUS: "FULL", SQLITE_GROUP_COMMIT: "false" }));
    case "ob-sqlite-2workers":
      return startServer(t, ["dist/main.js"], orderbridgeEnv({ DATA_DIR: dataDir(t), SQLITE_SYNCHRONOUS: "FULL", WORKERS: "2" }));
    case "ob-postgres":
      return startServer(
        t,
        ["dist/main.js"],
        orderbridgeEnv({ DATA_DIR: dataDir(t), DATABASE_URL, DATABASE_SCHEMA: newSchema("callback") }),
      );
  }
}

/** One request, checked, so a misconfigured target stops the run before it produces numbers. */
async function smokeTest(s: Server): Promise<void> {
  const body = spOrderBody(`bench-${RUN_ID}-smoke-${s.name}`);
  const res = await fetch(`${s.url}/callbacks/subscribe-pro/order`, {
    method: "POST",
    headers: { "content-type": "application/json", "sp-hmac": createHmac("sha256", SP_SECRET).update(body).digest("hex") },
    body,
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`${s.name}: a signed order got ${res.status}, not 201: ${text.slice(0, 300)}`);
}

// ---------------------------------------------------------------------------------------------
// Parts.

interface Results {
  pgSkip: string | undefined;
  pgVersion: string | undefined;
  callback: Map<CallbackTarget, Measurement[]>;
  rechargeAck: Measurement | undefined;
  scale: { one: Measurement[]; two: Measurement[] } | undefined;
  backlog: BacklogResult | undefined;
  placement: { on: number[]; off: number[] } | undefined;
  retention: RetentionResult | undefined;
  skipped: string[];
  /** Idle share of the machine's CPU in the second before the run, and the load averages then. */
  idleBefore: number;
  loadAvgBefore: number[];
}

async function runCallbackRounds(targets: readonly CallbackTarget[], results: Results): Promise<void> {
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

async function runRechargeAck(results: Results): Promise<void> {
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

async function runPgScale(results: Results): Promise<void> {
  const schema = newSchema("scale");
  const env = (name: string): Record<string, string> => orderbridgeEnv({ DATA_DIR: dataDir(name), DATABASE_URL, DATABASE_SCHEMA: schema });
  let a: Server | undefined;
  let b: Server | undefined;
  try {
    a = await startServer("ob-pg-a", ["dist/main.js"], env("pg-a"));
    b = await startServer("ob-pg-b", ["dist/main.js"], env("pg-b"));
    await smokeTest(a);
    await smokeTest(b);
    const scale = { one: [] as Measurement[], two: [] as Measurement[] };
    results.scale = scale;
    for (let round = 1; round <= ROUNDS; round++) {
      // (a) one instance takes all 50 connections (the other stays idle); (b) 25 connections each.
      const one = await measure([a], spOrderRequests);
      scale.one.push(one);
      log(`round ${round}/${ROUNDS} pg 1 instance    ${describe(one)}`);
      const two = await measure([a, b], spOrderRequests);
      scale.two.push(two);
      log(`round ${round}/${ROUNDS} pg 2 instances   ${describe(two)}`);
    }
  } finally {
    await stopServer(a);
    await stopServer(b);
  }
}

interface BacklogResult {
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

/** POSTs `n` signed order/created webhooks (each a new order), 20 at a time; resolves with how many were accepted. */
async function deliverWebhooks(url: string, n: number): Promise<number> {
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

async function runBacklog(results: Results): Promise<void> {
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

// ---------------------------------------------------------------------------------------------
// Placement with write-back on: a burst of Recharge orders is placed as fast with write-back on (its
// calls waiting for Recharge's 2/s in their own lane) as with it off.

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

async function runPlacement(results: Results): Promise<void> {
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
        log(`round ${round}/${ROUNDS} placement, write-back ${mode.padEnd(3)}: ${PLACEMENT_ORDERS} orders placed in ${fmtSec(ms)} (${standIn.calls.length} write-backs sent meanwhile)`);
      } finally {
        await stopServer(server);
        await standIn?.close();
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Retention: /metrics and the order path with a million finished rows, and while they are pruned.

interface ScrapeTimes {
  p50: number;
  p99: number;
}

interface RetentionResult {
  rows: number;
  seedMs: number;
  dbMb: number;
  empty: { scrapes: ScrapeTimes[]; load: Measurement[] };
  seeded: { scrapes: ScrapeTimes[]; load: Measurement[] };
  /** The seeded database again, with RETENTION_DAYS=7: pruning runs during the measured load. */
  pruning: { scrapes: ScrapeTimes; load: Measurement; prunable: number; pruned: number; runMs: number } | undefined;
}

/** `count` sequential GET /metrics, each timed from request to the end of the body (ms). */
async function scrapeTimes(s: Server, count = RETENTION_SCRAPES): Promise<ScrapeTimes> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const res = await fetch(`${s.url}/metrics`);
    await res.text();
    if (res.status !== 200) throw new Error(`${s.name}: GET /metrics answered ${res.status}`);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const at = (q: number): number => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)] as number;
  return { p50: median(times), p99: at(0.99) };
}

/**
 * Creates the database (migrated by orderbridge's own code) and seeds `rows` finished jobs (≈ 3.7 KB
 * each, like a Recharge event with its body) and `rows` placed callbacks (≈ 1.1 KB stored answer
 * each), finished evenly over the last RETENTION_SPREAD_DAYS days, with INSERT … SELECT over a
 * recursive CTE in chunks (seeding is set-up, not measured: synchronous=OFF).
 */
async function seedFinishedRows(dir: string, rows: number): Promise<void> {
  const store = await openStore(loadConfig({ DATA_DIR: dir }).database, createLogger({ level: "error", format: "json", silent: true }));
  await store.close();
  const db = new BetterSqlite3(path.join(dir, "orderbridge.sqlite"));
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = OFF");
    const now = Date.now();
    const spread = RETENTION_SPREAD_DAYS * DAY_MS;
    const jobBody = `{"order":{"id":0,"status":"success","email":"jane@example.com","shipping_address":{"first_name":"Jane","address1":"100 Main St"},"filler":"${"x".repeat(2900)}"}}`;
    const answer = `{"orderNumber":"SEED","orderDetails":{"customerEmail":"jane@example.com","shippingAddress":{"firstName":"Jane"},"filler":"${"x".repeat(950)}"}}`;
    const series = "with recursive s(i) as (select ? union all select i + 1 from s where i < ?)";
    const at = `(? - (i * ?) / ?)`; // finished evenly over the spread, newest first
    const jobs = db.prepare(
      `${series} insert into jobs (id, kind, topic, dedupe_key, body_hash, resource_id, api_version, body, payload, state, attempts,
         max_attempts, run_at, locked_by, lease_until, last_error, outcome, correlation_id, created_at, updated_at)
       select 'evt_seed_' || i, case when i % 2 = 0 then 'recharge.webhook' else 'recharge.order_writeback' end, 'order/created',
         'seed:' || i, 'seed:' || i, cast(i as text), '2021-11', ?, '{"rechargeOrderId":"0","apiVersion":"2021-11","externalOrderId":"100271","externalOrderNumber":"OB-100271"}',
         case when i % 50 = 0 then 'skipped' when i % 97 = 0 then 'ignored' else 'done' end, 1, 20, ${at}, null, null, null,
         'placed order OB-' || i, 'req-' || i, ${at}, ${at} from s`,
    );
    const callbacks = db.prepare(
      `${series} insert into sp_callbacks (idempotency_key, body_hash, state, attempt_id, lease_until, status, response_body, order_number,
         request_id, created_at, updated_at)
       select 'sp:seed-' || i, lower(hex(randomblob(32))), 'done', 'att-' || i, ${at}, 201, ?, 'SEED-' || i, 'req-' || i, ${at}, ${at} from s`,
    );
    const chunk = 50_000;
    for (let from = 1; from <= rows; from += chunk) {
      const to = Math.min(rows, from + chunk - 1);
      const time = [now, spread, rows];
      db.transaction(() => {
        jobs.run(from, to, jobBody, ...time, ...time, ...time);
        callbacks.run(from, to, ...time, answer, ...time, ...time);
      })();
    }
    db.pragma("wal_checkpoint(TRUNCATE)");
  } finally {
    db.close();
  }
}

function countRows(dir: string, sqlText: string, ...params: unknown[]): number {
  const db = new BetterSqlite3(path.join(dir, "orderbridge.sqlite"), { readonly: true });
  try {
    return Number((db.prepare(sqlText).pluck().get(...params) as number | bigint) ?? 0);
  } finally {
    db.close();
  }
}

async function runRetention(results: Results): Promise<void> {
  const emptyDir = dataDir("retention-empty");
  const seededDir = dataDir("retention-seeded");
  log(`retention: seeding ${RETENTION_ROWS} finished jobs and ${RETENTION_ROWS} placed callbacks`);
  const t0 = Date.now();
  await seedFinishedRows(seededDir, RETENTION_ROWS);
  const seedMs = Date.now() - t0;
  const dbMb = fs.statSync(path.join(seededDir, "orderbridge.sqlite")).size / 1024 ** 2;
  log(`retention: seeded in ${fmtSec(seedMs)} (database ${dbMb.toFixed(0)} MB)`);
  const r: RetentionResult = { rows: RETENTION_ROWS, seedMs, dbMb, empty: { scrapes: [], load: [] }, seeded: { scrapes: [], load: [] }, pruning: undefined };
  results.retention = r;
  const env = (dir: string, extra: Record<string, string> = {}) => orderbridgeEnv({ DATA_DIR: dir, SQLITE_SYNCHRONOUS: "FULL", ...extra });
  let empty: Server | undefined;
  let seeded: Server | undefined;
  try {
    empty = await startServer("ob-retention-empty", ["dist/main.js"], env(emptyDir));
    seeded = await startServer("ob-retention-seeded", ["dist/main.js"], env(seededDir));
    await smokeTest(empty);
    await smokeTest(seeded);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, s, into] of [["empty", empty, r.empty], ["seeded", seeded, r.seeded]] as const) {
        const scrapes = await scrapeTimes(s);
        into.scrapes.push(scrapes);
        const m = await measure([s], spOrderRequests);
        into.load.push(m);
        log(`round ${round}/${ROUNDS} retention ${name.padEnd(7)} /metrics p50 ${scrapes.p50.toFixed(1)} ms, p99 ${scrapes.p99.toFixed(1)} ms; ${describe(m)}`);
      }
    }
  } finally {
    await stopServer(empty);
    await stopServer(seeded);
  }

  // The same seeded database with a retention shorter than most of its rows' age: the pruner starts
  // one second after start-up and is still deleting while the load is measured.
  const cutoff = Date.now() - RETENTION_PRUNE_DAYS * DAY_MS;
  const finishedBefore = (): number =>
    countRows(seededDir, "select count(*) from jobs where state in ('done', 'skipped', 'ignored') and updated_at < ?", cutoff) +
    countRows(seededDir, "select count(*) from sp_callbacks where state = 'done' and updated_at < ?", cutoff);
  const prunable = finishedBefore();
  let pruner: Server | undefined;
  try {
    const started = Date.now();
    pruner = await startServer("ob-retention-pruning", ["dist/main.js"], env(seededDir, { RETENTION_DAYS: String(RETENTION_PRUNE_DAYS), PRUNE_INTERVAL_MS: "1000" }));
    const load = await measure([pruner], spOrderRequests);
    const scrapes = await scrapeTimes(pruner);
    await stopServer(pruner);
    const runMs = Date.now() - started;
    const pruned = prunable - finishedBefore();
    r.pruning = { scrapes, load, prunable, pruned, runMs };
    log(`retention pruning: ${pruned} of ${prunable} prunable rows pruned in the ${fmtSec(runMs)} it ran; /metrics p50 ${scrapes.p50.toFixed(1)} ms; ${describe(load)}`);
  } finally {
    await stopServer(pruner);
  }
}

// ---------------------------------------------------------------------------------------------
// Report.

const fmtSec = (ms: number | undefined): string => (ms === undefined ? "–" : `${(ms / 1000).toFixed(1)} s`);
const num = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : "–");
const ms = (x: number): string => (Number.isFinite(x) ? (Number.isInteger(x) ? String(x) : x.toFixed(1)) : "–");
const mark = (ok: boolean | undefined): string => (ok === undefined ? "–" : ok ? "✅" : "❌");
const ratio = (a: number, b: number): number => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : Number.NaN);
const ratioText = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "–");
const check = (x: number, ok: (v: number) => boolean): boolean | undefined => (Number.isFinite(x) ? ok(x) : undefined);

const LABELS: Record<CallbackTarget, string> = {
  ceiling: "ceiling (bare Express, raw body, fixed 201)",
  reference: "reference (Subscribe Pro's Node example)",
  "front-door": "orderbridge's front door only (its Express app, auth, access log, metrics; fixed 201, no order)",
  "ob-sqlite-full": "orderbridge, SQLite synchronous=FULL",
  "ob-sqlite-normal": "orderbridge, SQLite synchronous=NORMAL",
  "ob-sqlite-nogroup": "orderbridge, SQLite FULL, SQLITE_GROUP_COMMIT=false",
  "ob-sqlite-2workers": "orderbridge, SQLite FULL, WORKERS=2",
  "ob-postgres": "orderbridge, PostgreSQL",
};
const isOrderbridge = (t: CallbackTarget): boolean => t.startsWith("ob-");
/** More than this share of a core busy outside the server and the load generator: something else disturbed the run. */
const DISTURBED_OTHER_CPU_PCT = 25;
/** Only meaningful where nothing of ours runs outside the server and the load generator (not with PostgreSQL). */
const disturbed = (m: Measurement, usesPostgres: boolean): boolean => !usesPostgres && m.otherCpuPct > DISTURBED_OTHER_CPU_PCT;

interface Report {
  markdown: string;
  summary: string;
}

function buildReport(results: Results, started: Date, elapsedMs: number): Report {
  const md: string[] = [];
  const out: string[] = [];
  const cpus = os.cpus();
  const envUsed = Object.entries(process.env)
    .filter(([k]) => k.startsWith("BENCH_"))
    .map(([k, v]) => `${k}=${v ?? ""}`)
    .sort();
  const command = [...envUsed, "npm run bench"].join(" ");

  md.push("# orderbridge benchmarks", "");
  md.push(`Date: ${started.toISOString().replace("T", " ").slice(0, 16)} UTC (the run took ${(elapsedMs / 60_000).toFixed(1)} min)`, "");
  md.push("## Machine", "");
  md.push(`- CPU: ${cpus[0]?.model.trim() ?? "unknown"} × ${cpus.length}`);
  md.push(`- Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`);
  md.push(`- Node.js: ${process.version}; OS: ${os.type()} ${os.release()} (${os.arch()})`);
  md.push(`- PostgreSQL: ${results.pgVersion ?? `not used (${results.pgSkip ?? "not selected"})`}`);
  md.push(
    `- CPU idle in the second before the run: ${num(results.idleBefore * 100)}% (load averages then ${results.loadAvgBefore.map((x) => x.toFixed(2)).join(", ")}).`,
  );
  md.push(
    "- The load generator (autocannon, in the runner's process) and every server share these cores; all traffic is on 127.0.0.1.",
    "",
  );
  md.push("## Command", "", "```sh", command, "```", "");
  md.push(
    `Settings: ${CONNECTIONS} connections, HTTP/1.1 keep-alive, no pipelining; each run warms the target for ${WARM_SECONDS} s, ` +
      `then measures ${SECONDS} s; ${ROUNDS} round(s), the targets alternating within each round; the figures are the medians of the rounds. ` +
      "Every request is a different, validly signed order (a unique `salesOrderToken`, or a unique Recharge order id). " +
      `A run with more than ${FAIL_RATE * 100}% non-2xx answers or errors counts as failed and is left out of the median. ` +
      "Max RSS is the largest VmRSS (summed over the instance's processes) sampled every 250 ms under load. " +
      "orderbridge runs from `dist/` with `NODE_ENV=production` and `LOG_LEVEL=info` (the access log on, written to a file).",
    "",
  );
  if (results.skipped.length > 0) {
    md.push("Skipped: " + results.skipped.join("; ") + ".", "");
  }

  // --- the callback
  const sum = new Map<CallbackTarget, Summary>();
  for (const [t, list] of results.callback) sum.set(t, summarise(list));
  if (sum.size > 0) {
    md.push(`## Subscribe Pro order callback (${CONNECTIONS} connections)`, "");
    md.push(
      "| Target | req/s | p50 (ms) | p99 (ms) | max RSS (MB) | server CPU (ms/req) | rounds ok |",
      "|---|---:|---:|---:|---:|---:|---:|",
    );
    out.push(`Subscribe Pro callback, ${CONNECTIONS} connections, median of ${ROUNDS} round(s) × ${SECONDS} s:`);
    out.push(`  ${"target".padEnd(17)} ${"req/s".padStart(7)} ${"p50".padStart(6)} ${"p99".padStart(6)} ${"RSS MB".padStart(7)} ${"CPU ms/req".padStart(10)}`);
    for (const t of CALLBACK_TARGETS) {
      const s = sum.get(t);
      if (s === undefined) continue;
      const p99Mark = isOrderbridge(t) ? ` ${mark(check(s.p99, (v) => v < 50))}` : "";
      const rssMark = isOrderbridge(t) ? ` ${mark(check(s.rssMb, (v) => v < 200))}` : "";
      md.push(
        `| ${LABELS[t]} | ${num(s.reqPerSec)} | ${ms(s.p50)} | ${ms(s.p99)}${p99Mark} | ${num(s.rssMb)}${rssMark} | ${num(s.cpuMsPerReq, 2)} | ${s.passed}/${s.rounds}${s.passed < s.rounds ? " ❌" : ""} |`,
      );
      out.push(
        `  ${t.padEnd(17)} ${num(s.reqPerSec).padStart(7)} ${ms(s.p50).padStart(6)} ${ms(s.p99).padStart(6)} ${num(s.rssMb).padStart(7)} ${num(s.cpuMsPerReq, 2).padStart(10)}` +
          (s.passed < s.rounds ? `  (${s.rounds - s.passed} round(s) failed)` : ""),
      );
    }
    md.push(
      "",
      "For orderbridge: ✅/❌ against the targets p99 < 50 ms and RSS < 200 MB. Server CPU is the user + system time of the server " +
        "process per completed request in the measured runs (PostgreSQL's own processes not included).",
      "",
    );
    const runs = [...results.callback].flatMap(([t, list]) => list.map((m) => ({ t, m }))).filter(({ t }) => t !== "ob-postgres");
    const hit = runs.filter(({ t, m }) => disturbed(m, t === "ob-postgres"));
    if (hit.length > 0) {
      const line =
        `⚠ ${hit.length} of ${runs.length} runs of the yardsticks and SQLite targets were disturbed: more than ${DISTURBED_OTHER_CPU_PCT}% of a core ` +
        "was busy outside the server and the load generator (something else ran on the machine; see \"other CPU\" in every round). " +
        "Compare with care, or rerun on a quiet machine.";
      md.push(line, "");
      out.push(`  ${line}`);
    }
    md.push("<details><summary>Every round</summary>", "");
    md.push(
      "| Round | Target | req/s | p50 (ms) | p99 (ms) | max RSS (MB) | server CPU (ms/req) | load generator CPU (% of a core) | other CPU (% of a core) | requests | non-2xx | errors |",
      "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (let r = 0; r < ROUNDS; r++) {
      for (const t of CALLBACK_TARGETS) {
        const m = results.callback.get(t)?.[r];
        if (m === undefined) continue;
        md.push(
          `| ${r + 1} | ${t}${m.failed ? " (failed)" : ""} | ${num(m.reqPerSec)} | ${ms(m.p50)} | ${ms(m.p99)} | ${num(m.rssMb)} | ` +
            `${num(m.serverCpuMsPerReq, 2)} | ${num(m.loadGenCpuPct)} | ${num(m.otherCpuPct)}${disturbed(m, t === "ob-postgres") ? " ⚠" : ""} | ` +
            `${m.total} | ${m.non2xx} | ${m.errors} |`,
        );
      }
    }
    md.push(
      "",
      "Other CPU: the machine's busy time not spent by the server or the load generator (PostgreSQL's processes, the kernel's " +
        "share outside them, anything else running); a round where it is high for a SQLite target or a yardstick was disturbed.",
      "",
      "</details>",
      "",
    );
  }

  // --- ratios and targets
  const full = sum.get("ob-sqlite-full");
  const ref = sum.get("reference");
  const ceil = sum.get("ceiling");
  const rows: { name: string; value: string; target: string; ok: boolean | undefined }[] = [];
  for (const t of ["ob-sqlite-full", "ob-sqlite-normal", "ob-sqlite-nogroup", "ob-sqlite-2workers", "ob-postgres"] as const) {
    const s = sum.get(t);
    if (s === undefined) continue;
    const isFull = t === "ob-sqlite-full";
    if (ref !== undefined) {
      const x = ratio(s.reqPerSec, ref.reqPerSec);
      rows.push({ name: `${t} / reference (req/s)`, value: ratioText(x), target: isFull ? "≥ 1.0×" : "", ok: isFull ? check(x, (v) => v >= 1) : undefined });
    }
    if (ceil !== undefined) {
      const x = ratio(s.reqPerSec, ceil.reqPerSec);
      rows.push({ name: `${t} / ceiling (req/s)`, value: ratioText(x), target: isFull ? "≥ 0.6×" : "", ok: isFull ? check(x, (v) => v >= 0.6) : undefined });
    }
  }
  // How much of the gap is the front door (HTTP, auth, log, metrics) and how much the order itself.
  const door = sum.get("front-door");
  if (door !== undefined) {
    if (ref !== undefined) rows.push({ name: "front-door / reference (req/s)", value: ratioText(ratio(door.reqPerSec, ref.reqPerSec)), target: "", ok: undefined });
    if (ceil !== undefined) rows.push({ name: "front-door / ceiling (req/s)", value: ratioText(ratio(door.reqPerSec, ceil.reqPerSec)), target: "", ok: undefined });
    if (full !== undefined) rows.push({ name: "ob-sqlite-full / front-door (req/s)", value: ratioText(ratio(full.reqPerSec, door.reqPerSec)), target: "", ok: undefined });
  }
  const pgSum = sum.get("ob-postgres");
  if (pgSum !== undefined && full !== undefined) {
    const x = ratio(pgSum.reqPerSec, full.reqPerSec);
    rows.push({ name: "ob-postgres / ob-sqlite-full (req/s)", value: ratioText(x), target: "≥ 0.6×", ok: check(x, (v) => v >= 0.6) });
  }
  if (full !== undefined) {
    rows.push({ name: `ob-sqlite-full p99 at ${CONNECTIONS} connections`, value: `${ms(full.p99)} ms`, target: "< 50 ms", ok: check(full.p99, (v) => v < 50) });
    rows.push({ name: "ob-sqlite-full max RSS", value: `${num(full.rssMb)} MB`, target: "< 200 MB", ok: check(full.rssMb, (v) => v < 200) });
  }
  const scaleOne = results.scale === undefined ? undefined : summarise(results.scale.one);
  const scaleTwo = results.scale === undefined ? undefined : summarise(results.scale.two);
  if (scaleOne !== undefined && scaleTwo !== undefined) {
    rows.push({ name: "PostgreSQL 2 instances / 1 instance (req/s)", value: ratioText(ratio(scaleTwo.reqPerSec, scaleOne.reqPerSec)), target: "", ok: undefined });
  }
  const bl = results.backlog;
  if (bl !== undefined) {
    const ok = bl.percentOfLimit !== undefined && !bl.timedOut ? bl.percentOfLimit >= 95 && bl.rejections429 === 0 : false;
    rows.push({
      name: "Recharge write-back backlog: rate after the burst, 429s",
      value: `${bl.percentOfLimit === undefined ? "–" : `${bl.percentOfLimit.toFixed(1)}%`} of ${BACKLOG_PER_SECOND}/s, ${bl.rejections429} × 429`,
      target: "≥ 95%, 0 × 429",
      ok,
    });
  }
  const pl = results.placement;
  if (pl !== undefined && pl.on.length > 0 && pl.off.length > 0) {
    const ratio = median(pl.on) / median(pl.off);
    rows.push({
      name: `Placing ${PLACEMENT_ORDERS} burst Recharge orders: write-back on / off`,
      value: `${ratio.toFixed(2)}× (${fmtSec(median(pl.on))} / ${fmtSec(median(pl.off))})`,
      target: "≤ 1.2×",
      ok: ratio <= 1.2,
    });
  }
  if (rows.length > 0) {
    md.push("## Ratios and targets", "");
    md.push("Ratios of the medians above, from the same run.", "");
    md.push("| | Value | Target | |", "|---|---:|---|---|");
    for (const r of rows) md.push(`| ${r.name} | ${r.value} | ${r.target} | ${r.target === "" ? "" : mark(r.ok)} |`);
    md.push("");
    out.push("Ratios and targets:");
    for (const r of rows) out.push(`  ${r.target === "" ? "  " : mark(r.ok)} ${r.name}: ${r.value}${r.target === "" ? "" : ` (target ${r.target})`}`);
  }

  // --- Recharge acknowledgement
  const ack = results.rechargeAck;
  if (ack !== undefined) {
    md.push(`## Recharge webhook acknowledgement (${CONNECTIONS} connections)`, "");
    md.push(
      "orderbridge on SQLite (FULL) with Recharge webhooks on; signed `order/created` deliveries (the 2021-11 fixture, a unique order id each) " +
        "to `/webhooks/recharge/order/created`, each answered once it is in the durable inbox. The worker places the orders and queues the " +
        "write-backs (to a local Recharge API stand-in) in the same process meanwhile.",
      "",
    );
    md.push(
      "| req/s | p50 (ms) | p99 (ms) | max RSS (MB) | server CPU (ms/req) | requests | non-2xx | errors |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    md.push(
      `| ${num(ack.reqPerSec)} | ${ms(ack.p50)} | ${ms(ack.p99)} | ${num(ack.rssMb)} | ${num(ack.serverCpuMsPerReq, 2)} | ${ack.total} | ${ack.non2xx} | ${ack.errors} |`,
    );
    if (ack.failed) md.push("", `❌ failed: ${JSON.stringify(ack.statusCodes)}`);
    if (disturbed(ack, false)) {
      md.push("", `⚠ disturbed: ${num(ack.otherCpuPct)}% of a core was busy outside orderbridge and the load generator during the run.`);
    }
    md.push("");
    out.push(`Recharge webhook ack: ${describe(ack)}`);
  }

  // --- PostgreSQL scale-out
  if (results.scale !== undefined && scaleOne !== undefined && scaleTwo !== undefined) {
    md.push("## PostgreSQL: one and two instances", "");
    md.push(
      `Two orderbridge processes on one schema. (a) all ${CONNECTIONS} connections to one instance (the other idle); (b) ${CONNECTIONS / 2} ` +
        "connections to each, from two autocannon instances run together, summed (latency percentiles over both). " +
        `Median of ${ROUNDS} round(s), (a) and (b) alternating. On this 2-core machine the load generator, both instances and PostgreSQL share the cores.`,
      "",
    );
    md.push(
      "| | req/s | p50 (ms) | p99 (ms) | max RSS (MB, all instances) | server CPU (ms/req) | rounds ok |",
      "|---|---:|---:|---:|---:|---:|---:|",
    );
    for (const [label, x] of [["(a) 1 instance", scaleOne], ["(b) 2 instances", scaleTwo]] as const) {
      md.push(`| ${label} | ${num(x.reqPerSec)} | ${ms(x.p50)} | ${ms(x.p99)} | ${num(x.rssMb)} | ${num(x.cpuMsPerReq, 2)} | ${x.passed}/${x.rounds} |`);
    }
    md.push(`| ratio (b)/(a) | ${ratioText(ratio(scaleTwo.reqPerSec, scaleOne.reqPerSec))} | | | | | |`, "");
    out.push(
      `PostgreSQL 1 instance: ${num(scaleOne.reqPerSec)} req/s (p99 ${ms(scaleOne.p99)} ms); 2 instances: ${num(scaleTwo.reqPerSec)} req/s ` +
        `(p99 ${ms(scaleTwo.p99)} ms); ratio ${ratioText(ratio(scaleTwo.reqPerSec, scaleOne.reqPerSec))}`,
    );
  }

  // --- backlog
  if (bl !== undefined) {
    md.push("## Recharge write-back backlog", "");
    md.push(
      `${BACKLOG_WEBHOOKS} signed \`order/created\` webhooks delivered as fast as possible to orderbridge (SQLite, ` +
        `\`RECHARGE_RATE_LIMIT_BURST=${BACKLOG_BURST}\`, \`RECHARGE_RATE_LIMIT_PER_SECOND=${BACKLOG_PER_SECOND}\`, \`WORKER_CONCURRENCY=4\`), ` +
        `whose Recharge API stand-in enforces the same leaky bucket (${BACKLOG_BURST}, ${BACKLOG_PER_SECOND}/s) and answers 429 when it overflows. ` +
        `Ideal: ${BACKLOG_BURST} write-backs at once, then ${BACKLOG_PER_SECOND}/s, so the ${BACKLOG_WEBHOOKS}th comes ` +
        `${(BACKLOG_WEBHOOKS - BACKLOG_BURST) / BACKLOG_PER_SECOND} s after the first. ` +
        `Achieved rate = ${BACKLOG_WEBHOOKS - BACKLOG_BURST} / (time of the ${BACKLOG_WEBHOOKS}th − time of the ${BACKLOG_BURST}th).`,
      "",
    );
    md.push("| | Value |", "|---|---:|");
    md.push(`| webhooks accepted | ${bl.accepted}/${bl.delivered} in ${fmtSec(bl.deliverMs)} |`);
    md.push(`| write-backs succeeded (\`PUT /orders/{id}\`) | ${bl.succeeded}/${BACKLOG_WEBHOOKS}${bl.timedOut ? ` (stopped after ${BACKLOG_TIMEOUT_MS / 60_000} min)` : ""} |`);
    md.push(`| first PUT → ${BACKLOG_BURST}th success | ${fmtSec(bl.fortiethMs)} |`);
    md.push(`| first PUT → ${BACKLOG_WEBHOOKS}th success | ${fmtSec(bl.firstToLastMs)} (ideal ≈ ${(BACKLOG_WEBHOOKS - BACKLOG_BURST) / BACKLOG_PER_SECOND} s) |`);
    md.push(
      `| rate after the burst | ${bl.rate === undefined ? "–" : `${bl.rate.toFixed(3)}/s`} = ${bl.percentOfLimit === undefined ? "–" : `${bl.percentOfLimit.toFixed(1)}%`} of ${BACKLOG_PER_SECOND}/s ${mark(bl.percentOfLimit === undefined ? false : bl.percentOfLimit >= 95)} |`,
    );
    md.push(
      `| 429 answers | ${bl.rejections429} ${mark(bl.rejections429 === 0)}${bl.rejectionTimes.length > 0 ? ` (${bl.rejectionTimes.join(", ")}, counted from the first PUT)` : ""} |`,
    );
    md.push(`| other failed calls | ${bl.otherFailures} |`);
    md.push(`| max RSS | ${num(bl.rssMb)} MB |`, "");
    out.push(
      `Backlog: ${bl.succeeded}/${BACKLOG_WEBHOOKS} written back, first→${BACKLOG_WEBHOOKS}th ${fmtSec(bl.firstToLastMs)}, ` +
        `${bl.rate?.toFixed(3) ?? "–"}/s (${bl.percentOfLimit?.toFixed(1) ?? "–"}% of ${BACKLOG_PER_SECOND}/s), ${bl.rejections429} × 429`,
    );
  }

  // --- retention
  const rt = results.retention;
  if (rt !== undefined) {
    const rows = rt.rows.toLocaleString("en-US").replace(/,/g, " ");
    md.push(`## Retention: ${rows} finished rows (SQLite FULL, ${CONNECTIONS} connections)`, "");
    md.push(
      `Two orderbridge processes on SQLite FULL, measured alternately: one on a new database, one on a database seeded with ${rows} ` +
        `finished jobs (done, some skipped and ignored; ≈ 3.7 KB each, like a Recharge event with its body and payload) and ${rows} placed ` +
        `callbacks (done, ≈ 1.1 KB of stored answer each), finished over the last ${RETENTION_SPREAD_DAYS} days, so within the default ` +
        `\`RETENTION_DAYS\` (30) and kept (seeded in ${fmtSec(rt.seedMs)} with INSERT … SELECT over a recursive CTE; database file ` +
        `${num(rt.dbMb)} MB; local orders are not seeded). For each, ${RETENTION_SCRAPES} sequential \`GET /metrics\` on the idle server ` +
        "(request to the end of the body; the queue gauges read the database on every scrape), then the order callback under load as above. " +
        `Last, the seeded database once more with \`RETENTION_DAYS=${RETENTION_PRUNE_DAYS}\` and \`PRUNE_INTERVAL_MS=1000\`: the pruner starts ` +
        "a second after start-up and deletes (in batches, yielding between them) while the load is measured, and the scrapes follow.",
      "",
    );
    md.push(
      "| | /metrics p50 (ms) | /metrics p99 (ms) | req/s | p50 (ms) | p99 (ms) | max RSS (MB) | rounds ok |",
      "|---|---:|---:|---:|---:|---:|---:|---:|",
    );
    const scr = (xs: readonly ScrapeTimes[]): ScrapeTimes => ({ p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)) });
    const rowsOut: [string, ScrapeTimes, Summary][] = [
      ["new database", scr(rt.empty.scrapes), summarise(rt.empty.load)],
      [`${rows} finished rows, kept`, scr(rt.seeded.scrapes), summarise(rt.seeded.load)],
    ];
    if (rt.pruning !== undefined) rowsOut.push([`${rows} finished rows, being pruned (RETENTION_DAYS=${RETENTION_PRUNE_DAYS})`, rt.pruning.scrapes, summarise([rt.pruning.load])]);
    for (const [label, sc, x] of rowsOut) {
      md.push(`| ${label} | ${num(sc.p50, 1)} | ${num(sc.p99, 1)} | ${num(x.reqPerSec)} | ${ms(x.p50)} | ${ms(x.p99)} | ${num(x.rssMb)} | ${x.passed}/${x.rounds} |`);
    }
    md.push("");
    const e = summarise(rt.empty.load);
    const k = summarise(rt.seeded.load);
    md.push(
      `Throughput with the rows kept / on a new database: ${ratioText(ratio(k.reqPerSec, e.reqPerSec))}.` +
        (rt.pruning === undefined
          ? ""
          : ` While pruning: ${ratioText(ratio(rt.pruning.load.reqPerSec, e.reqPerSec))}; ${rt.pruning.pruned} of the ${rt.pruning.prunable} prunable rows ` +
            `(jobs and stored answers older than ${RETENTION_PRUNE_DAYS} days) went in the ${fmtSec(rt.pruning.runMs)} the server ran.`),
      "",
    );
    out.push(
      `Retention (${rows} finished rows): /metrics p50 ${num(scr(rt.empty.scrapes).p50, 1)} → ${num(scr(rt.seeded.scrapes).p50, 1)} ms; ` +
        `req/s ${num(e.reqPerSec)} → ${num(k.reqPerSec)}` +
        (rt.pruning === undefined ? "" : `, ${num(rt.pruning.load.reqPerSec)} while pruning (${rt.pruning.pruned}/${rt.pruning.prunable} pruned)`),
    );
  }

  // The analysis (profiles, what was tried) is kept beside the runner, so that a new run keeps it.
  md.push(fs.readFileSync(ANALYSIS, "utf8").trim(), "");
  return { markdown: md.join("\n"), summary: out.join("\n") };
}

// ---------------------------------------------------------------------------------------------
// Main.

async function cleanup(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
  await dropSchemas();
  if (tmpDir !== "") {
    fs.rmSync(tmpDir, { recursive: true, force: true });
    tmpDir = "";
  }
}

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping every server, dropping the schema(s), removing temp files`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const started = new Date();
  const t0 = Date.now();
  if (!fs.existsSync(path.join(ROOT, "dist/main.js"))) throw new Error("dist/main.js is missing: run `npm run build` first (npm run bench does)");
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-bench-"));
  const results: Results = {
    pgSkip: undefined,
    pgVersion: undefined,
    callback: new Map(),
    rechargeAck: undefined,
    scale: undefined,
    backlog: undefined,
    placement: undefined,
    retention: undefined,
    skipped: [],
    idleBefore: Number.NaN,
    loadAvgBefore: os.loadavg(),
  };
  try {
    // Wait (up to a minute) for the machine to be quiet: the figures are only comparable on an idle machine.
    const waitUntil = Date.now() + 60_000;
    results.idleBefore = await machineIdle(1000);
    while (results.idleBefore < 0.9 && Date.now() < waitUntil) {
      log(`machine only ${(results.idleBefore * 100).toFixed(0)}% idle: something else is running; waiting for it to calm down`);
      await sleep(4000);
      results.idleBefore = await machineIdle(1000);
    }
    results.loadAvgBefore = os.loadavg();
    const busy = results.idleBefore < 0.9 ? " (something else is running: expect noisy figures)" : "";
    log(`machine ${(results.idleBefore * 100).toFixed(0)}% idle before the run${busy}`);
    log(`run ${RUN_ID}: ${SECONDS} s per run after ${WARM_SECONDS} s warm-up, ${ROUNDS} round(s), ${CONNECTIONS} connections; temp dir ${tmpDir}`);
    const needsPg = wants("ob-postgres") || wants("pg-scale");
    if (needsPg) {
      results.pgSkip = await postgresSkipReason();
      if (results.pgSkip === undefined) results.pgVersion = await postgresVersion();
      else {
        log(`skipping the PostgreSQL parts: ${results.pgSkip}`);
        results.skipped.push(`the PostgreSQL parts (${results.pgSkip})`);
      }
    }
    if (SKIP_BACKLOG && ONLY.has("backlog")) results.skipped.push("the write-back backlog (BENCH_SKIP_BACKLOG=1)");

    const targets = CALLBACK_TARGETS.filter((t) => wants(t) && !(t === "ob-postgres" && results.pgSkip !== undefined));
    if (targets.includes("ceiling") || targets.includes("reference") || targets.includes("front-door")) compileServers();
    await runCallbackRounds(targets, results);
    if (wants("recharge-ack")) await runRechargeAck(results);
    if (wants("pg-scale") && results.pgSkip === undefined) await runPgScale(results);
    if (wants("backlog")) await runBacklog(results);
    if (wants("placement")) await runPlacement(results);
    if (wants("retention")) await runRetention(results);

    const report = buildReport(results, started, Date.now() - t0);
    fs.writeFileSync(REPORT, report.markdown);
    process.stdout.write(`\n${report.summary}\n\nWritten to ${path.relative(process.cwd(), REPORT) || REPORT} (${((Date.now() - t0) / 60_000).toFixed(1)} min)\n`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
