import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import pg from "pg";
import { signRechargeLegacy } from "../../src/security/recharge-signature.js";
import { signSpHmac } from "../../src/security/sp-hmac.js";
import { startPrivatePostgres, type PrivatePostgres } from "../helpers/private-postgres.js";
import { spawnServer, type RunningServer } from "../helpers/process.js";
import { startRechargeStandIn, type RechargeStandIn } from "../../tools/stand-ins/recharge-api.js";
import { RC_SECRET, RC_TOKEN, rcFixture, waitFor } from "../helpers/recharge.js";
import { ADMIN_TOKEN, CALLBACK, minimalOrder } from "../helpers/service.js";

/*
 * Fault test: under a steady stream of Subscribe Pro callbacks and Recharge webhooks, PostgreSQL is
 * stopped (`pg_ctl stop -m immediate`, a crash; then, in a second run, `-m fast`, an orderly stop),
 * stays down for ~2 s, and is started again. Each run has its own throwaway cluster
 * (test/helpers/private-postgres.ts), never the shared test PostgreSQL.
 */

const SP_SECRET = "sp-secret-for-restart-tests";
const SCHEMA = "ob_restart";
type StopMode = "fast" | "immediate";
/** Both by default; OB_PG_STOP_MODE=fast or =immediate runs one. */
const ONLY_MODE = process.env["OB_PG_STOP_MODE"];
const MODES: StopMode[] = ONLY_MODE === "fast" || ONLY_MODE === "immediate" ? [ONLY_MODE] : ["immediate", "fast"];

const TOTAL = 60; // requests in the stream, half callbacks, half webhooks
const LANES = 4; // at most this many in flight
/** Around the stop, extra senders keep transactions in flight, so the stop cuts some mid-way. */
const HAMMER_LANES = 6;
const HAMMER_LEAD_MS = 250;
const HAMMER_MAX = 120;
const SPACING_MS = 160; // request i is due at start + i × SPACING_MS (~9.6 s in all)
const STOP_AT_MS = 3_500;
const DOWN_FOR_MS = 2_000;

interface Delivery {
  kind: "sp" | "rc";
  /** The salesOrderToken or the Recharge order id. */
  key: string;
  path: string;
  raw: string;
  headers: Record<string, string>;
}

interface Outcome {
  status: number; // 0: no HTTP answer at all
  body: unknown;
  text: string;
  contentType: string;
  retryAfter: string | null;
  error?: string;
  sentAt: number;
  doneAt: number;
}

function delivery(i: number, runId: string): Delivery {
  if (i % 2 === 0) {
    const token = `restart-${runId}-${String(i).padStart(3, "0")}`;
    const raw = JSON.stringify(minimalOrder(token));
    return {
      kind: "sp",
      key: token,
      path: CALLBACK,
      raw,
      headers: { "Content-Type": "application/json", "Sp-Hmac": signSpHmac(SP_SECRET, raw) },
    };
  }
  const body = rcFixture("2021-11", "order-created");
  const id = 700_000_000 + i;
  body["order"]["id"] = id;
  const raw = JSON.stringify(body);
  return {
    kind: "rc",
    key: String(id),
    path: "/webhooks/recharge/order/created",
    raw,
    headers: { "Content-Type": "application/json", "X-Recharge-Hmac-Sha256": signRechargeLegacy(RC_SECRET, raw) },
  };
}

async function send(base: string, d: Delivery): Promise<Outcome> {
  const sentAt = Date.now();
  try {
    const res = await fetch(base + d.path, { method: "POST", headers: d.headers, body: d.raw, signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    let body: unknown = undefined;
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      // not JSON: judged below
    }
    return {
      status: res.status,
      body,
      text,
      contentType: res.headers.get("content-type") ?? "",
      retryAfter: res.headers.get("retry-after"),
      sentAt,
      doneAt: Date.now(),
    };
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const error = `${(e as Error).name}: ${(e as Error).message}${cause === undefined ? "" : ` (${cause.code ?? ""} ${cause.message ?? ""})`}`;
    return { status: 0, body: undefined, text: "", contentType: "", retryAfter: null, error, sentAt, doneAt: Date.now() };
  }
}

function field(body: unknown, name: string): unknown {
  return typeof body === "object" && body !== null ? (body as Record<string, unknown>)[name] : undefined;
}

/** "ok" (the delivery is in), "503" (a clean, retryable refusal), or "bad" (anything else). */
function judge(d: Delivery, o: Outcome, retry: boolean): "ok" | "503" | "bad" {
  if (d.kind === "sp" && o.status === 201 && typeof field(o.body, "orderNumber") === "string") return "ok";
  if (d.kind === "rc" && o.status === 200) {
    const s = field(o.body, "status");
    // A retry may find the first attempt committed after all ("duplicate"): nothing is lost either way.
    if (s === "accepted" || (retry && s === "duplicate")) return "ok";
  }
  const msg = field(o.body, "errorMessage");
  if (o.status === 503 && /^application\/json/.test(o.contentType) && typeof msg === "string" && msg.length > 0 && o.retryAfter !== null) {
    return "503";
  }
  return "bad";
}

function describeOutcome(d: Delivery, o: Outcome, t0: number): string {
  const what = o.status === 0 ? `no answer: ${o.error ?? "?"}` : `${o.status} ${o.contentType} Retry-After=${String(o.retryAfter)} ${o.text.slice(0, 300)}`;
  return `${d.kind} ${d.key} sent +${o.sentAt - t0} ms, answered +${o.doneAt - t0} ms: ${what}`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The service's unexpected log output, for failure messages: anything not JSON (a crash's stack trace),
 * errors other than the expected "database unavailable" 503s, and job failures.
 */
function problemLines(server: RunningServer | undefined, max = 40): string {
  if (server === undefined) return "(no server)";
  const lines = server
    .output()
    .split("\n")
    .filter((l) => {
      if (l.trim() === "") return false;
      let entry: { level?: string; message?: string };
      try {
        entry = JSON.parse(l) as { level?: string; message?: string };
      } catch {
        return true;
      }
      if (entry.level === "error") return entry.message !== "database unavailable";
      return entry.level === "warn" && /job|lost|unhandled/i.test(entry.message ?? "");
    });
  return lines.length === 0 ? "(nothing unexpected logged)" : lines.slice(-max).join("\n");
}

describe("PostgreSQL restarted under load", () => {
  for (const STOP_MODE of MODES) {
    it(`503 while it is down, recovery on its own, no event lost (pg_ctl stop -m ${STOP_MODE})`, { timeout: 60_000 }, async (t) => {
      const started = Date.now();
      const cluster = await startPrivatePostgres();
      if ("skip" in cluster) {
        t.skip(cluster.skip);
        return;
      }
      const pgc: PrivatePostgres = cluster;
      let recharge: RechargeStandIn | undefined;
      let server: RunningServer | undefined;
      let exitedWith: string | undefined;
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "orderbridge-pgrestart-"));
      try {
        recharge = await startRechargeStandIn({ token: RC_TOKEN });
        server = await spawnServer({
          DATA_DIR: dataDir,
          DATABASE_URL: pgc.url,
          DATABASE_SCHEMA: SCHEMA,
          DATABASE_POOL_SIZE: "5",
          SP_HMAC_SECRETS: SP_SECRET,
          ADMIN_TOKEN,
          RECHARGE_CLIENT_SECRETS: RC_SECRET,
          RECHARGE_API_TOKEN: RC_TOKEN,
          RECHARGE_API_URL: recharge.url,
          RECHARGE_TIMEOUT_MS: "2000",
          RECHARGE_RATE_LIMIT_BURST: "100",
          RECHARGE_RATE_LIMIT_PER_SECOND: "50",
          // A callback cut off by the outage keeps its key for 1.5 × this: keep the sender's retry short.
          PLATFORM_DEADLINE_MS: "3000",
          WORKER_POLL_MS: "100",
          JOB_BACKOFF_BASE_MS: "100",
          JOB_BACKOFF_MAX_MS: "1000",
          JOB_LEASE_MS: "3000",
        });
        const srv = server;
        srv.child.once("exit", (code, signal) => (exitedWith = `code ${String(code)}, signal ${String(signal)}`));
        const base = `http://127.0.0.1:${srv.port}`;
        const get = async (p: string, auth = false): Promise<{ status: number; body: unknown }> => {
          const res = await fetch(base + p, {
            headers: auth ? { Authorization: `Bearer ${ADMIN_TOKEN}` } : {},
            signal: AbortSignal.timeout(5_000),
          });
          const text = await res.text();
          let body: unknown = text;
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            // keep the text
          }
          return { status: res.status, body };
        };
        assert.equal((await get("/readyz")).status, 200, "ready before the stream");

        const runId = Date.now().toString(36);
        const deliveries = Array.from({ length: TOTAL }, (_, i) => delivery(i, runId));
        /** Every delivery sent (stream and hammer) with its first answer. */
        const results: { d: Delivery; o: Outcome }[] = [];

        // The fault, on its own timeline beside the stream.
        const fault = {
          stopBegin: 0,
          stopDone: 0,
          startBegin: 0,
          startDone: 0,
          readyAgain: 0,
          readyzWhileDown: -1,
          healthzWhileDown: -1,
        };
        const t0 = Date.now();
        const faultDone = (async () => {
          await sleep(STOP_AT_MS);
          fault.stopBegin = Date.now();
          await pgc.stop(STOP_MODE);
          fault.stopDone = Date.now();
          await sleep(300);
          fault.readyzWhileDown = (await get("/readyz").catch(() => ({ status: 0 }))).status;
          fault.healthzWhileDown = (await get("/healthz").catch(() => ({ status: 0 }))).status;
          await sleep(Math.max(0, DOWN_FOR_MS - (Date.now() - fault.stopDone)));
          fault.startBegin = Date.now();
          await pgc.start();
          fault.startDone = Date.now();
          // Recovery without restarting orderbridge: /readyz answers 200 again on its own.
          const until = Date.now() + 10_000;
          for (;;) {
            const r = await get("/readyz").catch(() => ({ status: 0, body: null }));
            if (r.status === 200) break;
            if (exitedWith !== undefined) throw new Error(`orderbridge exited (${exitedWith}): /readyz cannot recover`);
            if (Date.now() > until) throw new Error(`/readyz did not answer 200 within 10 s of the restart (last ${r.status})`);
            await sleep(100);
          }
          fault.readyAgain = Date.now();
        })();
        faultDone.catch(() => undefined); // awaited below, after the stream

        let hammered = 0;
        // The stream: LANES senders, request i due at t0 + i × SPACING_MS.
        await Promise.all([
          ...Array.from({ length: LANES }, async (_, lane) => {
            for (let i = lane; i < TOTAL; i += LANES) {
              const due = t0 + i * SPACING_MS;
              if (due > Date.now()) await sleep(due - Date.now());
              const d = deliveries[i] as Delivery;
              results.push({ d, o: await send(base, d) });
            }
          }),
          // The hammer: back-to-back requests from just before the stop until pg_ctl returns.
          ...Array.from({ length: HAMMER_LANES }, async () => {
            await sleep(Math.max(0, t0 + STOP_AT_MS - HAMMER_LEAD_MS - Date.now()));
            while (fault.stopDone === 0 && hammered < HAMMER_MAX && exitedWith === undefined) {
              const d = delivery(1000 + hammered++, runId);
              results.push({ d, o: await send(base, d) });
            }
          }),
        ]);
        const faultError = await faultDone.then(
          () => undefined,
          (e: Error) => e,
        );
        assert.equal(exitedWith, undefined, `orderbridge kept running through the outage\n${problemLines(srv)}`);
        if (faultError !== undefined) throw faultError;
        const rel = (x: number): string => `+${x - t0} ms`;
        t.diagnostic(
          `stop ${rel(fault.stopBegin)}–${rel(fault.stopDone)}, start ${rel(fault.startBegin)}–${rel(fault.startDone)}, ` +
            `/readyz 200 again ${rel(fault.readyAgain)} (${fault.readyAgain - fault.startDone} ms after the start); stream ended ${rel(Date.now())}`,
        );

        // 1. Every answer was a success or a clean 503: never a 500, never a dropped connection.
        const firstRound = results.map(({ d, o }) => ({ d, o, verdict: judge(d, o, false) }));
        const bad = firstRound.filter((r) => r.verdict === "bad");
        const refused = firstRound.filter((r) => r.verdict === "503");
        t.diagnostic(
          `first round: ${firstRound.length} requests (${hammered} around the stop): ` +
            `${firstRound.length - refused.length - bad.length} ok, ${refused.length} × 503, ${bad.length} bad`,
        );
        assert.deepEqual(
          bad.map((r) => describeOutcome(r.d, r.o, t0)),
          [],
          `answers other than success or a clean 503 (JSON errorMessage + Retry-After)\nservice log:\n${problemLines(srv)}`,
        );
        assert.ok(refused.length > 0, "the outage was felt: at least one request was answered 503");
        // 503s only from the outage: none answered before the stop began, none sent after recovery.
        const early = refused.filter((r) => r.o.doneAt < fault.stopBegin || r.o.sentAt > fault.readyAgain);
        assert.deepEqual(
          early.map((r) => describeOutcome(r.d, r.o, t0)),
          [],
          `503s outside the outage (stop began ${rel(fault.stopBegin)}, ready again ${rel(fault.readyAgain)})\nservice log:\n${problemLines(srv)}`,
        );
        assert.equal(fault.readyzWhileDown, 503, "/readyz said 503 while PostgreSQL was down");
        assert.equal(fault.healthzWhileDown, 200, "/healthz kept answering while PostgreSQL was down");

        // 2. The sender's retry: every 503 again, same bytes, until it is in.
        const retryUntil = Date.now() + 20_000;
        const retryBad: string[] = [];
        let retries = 0;
        await Promise.all(
          refused.map(async ({ d }) => {
            for (;;) {
              retries++;
              const o = await send(base, d);
              const v = judge(d, o, true);
              if (v === "ok") return;
              if (v === "bad") retryBad.push(describeOutcome(d, o, t0));
              if (Date.now() > retryUntil) {
                retryBad.push(`still refused after 20 s of retries: ${describeOutcome(d, o, t0)}`);
                return;
              }
              const hinted = Number(o.retryAfter ?? "1") * 1000;
              await sleep(Math.min(Number.isFinite(hinted) && hinted > 0 ? hinted : 1000, 500));
            }
          }),
        );
        t.diagnostic(`retried ${refused.length} refused request(s) with ${retries} attempt(s)`);
        assert.deepEqual(retryBad, [], `retries that did not end in success\nservice log:\n${problemLines(srv)}`);

        // 3. Reconcile, in the private database and through the admin API.
        const tokens = results
          .filter((r) => r.d.kind === "sp")
          .map((r) => r.d.key)
          .sort();
        const rcIds = results
          .filter((r) => r.d.kind === "rc")
          .map((r) => r.d.key)
          .sort();
        const db = new pg.Client({ connectionString: pgc.url, connectionTimeoutMillis: 5_000 });
        await db.connect();
        try {
          const queue = async (): Promise<{ kind: string; state: string; n: number }[]> =>
            (await db.query<{ kind: string; state: string; n: number }>(`select kind, state, count(*)::int as n from ${SCHEMA}.jobs group by kind, state order by kind, state`))
              .rows;
          await waitFor(
            "every Recharge event and write-back to finish",
            async () => {
              const rows = await queue();
              const busy = rows.some((r) => r.state === "pending" || r.state === "running");
              const writebacks = rows.filter((r) => r.kind === "recharge.order_writeback").reduce((n, r) => n + r.n, 0);
              return !busy && writebacks >= rcIds.length;
            },
            20_000,
          ).catch(async (e: Error) => {
            const stuck = await db.query(`select id, kind, state, attempts, resource_id, last_error from ${SCHEMA}.jobs where state <> 'done'`);
            throw new Error(`${e.message}: ${JSON.stringify(await queue())}\n${JSON.stringify(stuck.rows)}\nservice log:\n${problemLines(srv)}`);
          });
          const byKindState = await queue();
          t.diagnostic(`jobs: ${byKindState.map((r) => `${r.kind}/${r.state}=${r.n}`).join(", ")}`);
          assert.deepEqual(
            byKindState,
            [
              { kind: "recharge.order_writeback", state: "done", n: rcIds.length },
              { kind: "recharge.webhook", state: "done", n: rcIds.length },
            ],
            `every Recharge event and write-back is done, none dead or left over\nservice log:\n${problemLines(srv)}`,
          );
          const webhookIds = (await db.query<{ id: string }>(`select resource_id as id from ${SCHEMA}.jobs where kind = 'recharge.webhook' order by 1`)).rows.map((r) => r.id);
          assert.deepEqual(webhookIds, rcIds, "one inbox event per Recharge order id");

          const orders = (
            await db.query<{ source: string; source_order_id: string }>(`select source, source_order_id from ${SCHEMA}.local_orders order by source, source_order_id`)
          ).rows;
          const count = Number((await db.query<{ n: string }>(`select count(*) as n from ${SCHEMA}.local_orders`)).rows[0]?.n);
          assert.equal(count, new Set(tokens).size + new Set(rcIds).size, "one local order per token and per Recharge order id");
          assert.deepEqual(
            orders.filter((o) => o.source === "subscribe-pro").map((o) => o.source_order_id),
            tokens,
            "exactly the callbacks' tokens, each once",
          );
          assert.deepEqual(
            orders.filter((o) => o.source === "recharge").map((o) => o.source_order_id),
            rcIds,
            "exactly the Recharge order ids, each once",
          );
        } finally {
          await db.end().catch(() => undefined);
        }

        const listed = await get("/admin/orders?limit=200", true);
        assert.equal(listed.status, 200);
        assert.equal((field(listed.body, "orders") as unknown[]).length, tokens.length + rcIds.length, "the admin API lists the same orders");
        const deadOrPending = [
          ...((field((await get("/admin/events?state=dead&limit=200", true)).body, "events") as unknown[]) ?? []),
          ...((field((await get("/admin/events?state=pending&limit=200", true)).body, "events") as unknown[]) ?? []),
        ];
        assert.deepEqual(deadOrPending, [], "no event dead or pending (admin API)");

        // 4. Every order written back to Recharge (at least once, with the same body each time).
        const rc = recharge;
        const callsByPath = new Map<string, typeof rc.calls>();
        for (const c of rc.calls) callsByPath.set(`${c.method} ${c.path}`, [...(callsByPath.get(`${c.method} ${c.path}`) ?? []), c]);
        const expectedPaths = rcIds.map((id) => `PUT /orders/${id}`);
        // First what must hold in any case: each order written back, nothing else called, every call answered 2xx.
        assert.deepEqual([...callsByPath.keys()].sort(), expectedPaths, "write-backs go to exactly the Recharge orders received");
        assert.deepEqual(
          rc.calls.filter((c) => c.status < 200 || c.status > 299).map((c) => `${c.method} ${c.path} → ${c.status}`),
          [],
          "every write-back call succeeded",
        );
        const repeated = [...callsByPath.entries()].filter(([, calls]) => calls.length > 1);
        const repeatedText = repeated.map(([p, calls]) => `${p} × ${calls.length} at ${calls.map((c) => rel(c.at)).join(", ")}`).join("; ");
        if (repeated.length > 0) t.diagnostic(`repeated write-backs (stop ${rel(fault.stopBegin)}–${rel(fault.stopDone)}): ${repeatedText}`);
        for (const [p, calls] of repeated) {
          assert.ok(
            calls.every((c) => JSON.stringify(c.body) === JSON.stringify(calls[0]?.body)),
            `a repeated write-back sends the same body (${p})`,
          );
        }
        // A write-back is at least once: a PUT that reached Recharge just as the database went away
        // cannot be recorded, so it is sent again after its lease. It is an idempotent update (the
        // same body, checked above) and never places an order again (the reconcile above).
        assert.equal(exitedWith, undefined, "orderbridge never exited");
        assert.equal((await get("/readyz")).status, 200);
        t.diagnostic(`total ${Date.now() - started} ms`);
      } catch (e) {
        // The spec reporter does not show diagnostics of a failed test: print the evidence.
        if (server !== undefined) {
          const tail = exitedWith === undefined ? "" : `\nlast output:\n${server.output().split("\n").slice(-40).join("\n")}`;
          console.error(`orderbridge exit: ${exitedWith ?? "none"}\nservice warnings/errors:\n${problemLines(server, 60)}${tail}`);
        }
        throw e;
      } finally {
        if (server !== undefined && server.child.exitCode === null && server.child.signalCode === null) await server.stop("SIGKILL");
        await recharge?.close();
        await pgc.destroy();
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }
});
