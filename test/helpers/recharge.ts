import fs from "node:fs";
import path from "node:path";
import request from "supertest";
import { SAMPLES_DIR } from "../../src/cli/samples.js";
import { signRechargeLegacy, rechargeSignatureHeader } from "../../src/security/recharge-signature.js";
import { getEvent, listEvents, type EventRow } from "../../src/store/events.js";
import { inboxEvent, storeInboxEvent } from "../../src/recharge/receive.js";
import { startRechargeStandIn, type RechargeStandIn, type RechargeStandInOptions } from "../../tools/stand-ins/recharge-api.js";
import { ADMIN_TOKEN, startService, type StartOptions, type TestService } from "./service.js";
import type { StoreKind } from "./stores.js";

export const RC_SECRET = "rc_client_secret_example";
export const RC_TOKEN = "rc_api_token_for_tests";
// Recharge's payloads (samples/recharge/<version>/), which `orderbridge send` sends too.
const FIXTURES = path.join(SAMPLES_DIR, "recharge");

export type Version = "2021-01" | "2021-11";

/** A fixture's exact text (as Recharge would send it: pretty-printed). */
export function rcFixtureText(version: Version, name: string): string {
  return fs.readFileSync(path.join(FIXTURES, version, `${name}.json`), "utf8");
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- webhook bodies are free-form JSON in tests
export type Json = Record<string, any>;
export function rcFixture(version: Version, name: string): Json {
  return JSON.parse(rcFixtureText(version, name)) as Json;
}

export interface RechargeTestService extends TestService {
  recharge: RechargeStandIn;
  /** POSTs a webhook body (objects serialised compactly) to /webhooks/recharge/<topic>, signed (legacy) unless told otherwise. */
  webhook(
    topic: string | null,
    body: unknown,
    opts?: { sign?: "legacy" | "timestamped" | "none"; secret?: string; headers?: Record<string, string>; timestamp?: number },
  ): Promise<request.Response>;
  /** An event (a job with its inbox event, or an ignored inbox event) as the admin API reads it. */
  job(id: string): Promise<EventRow>;
  /** Every event, oldest first. */
  jobs(where?: { kind?: string; state?: string }): Promise<EventRow[]>;
  /** Stores an order/created inbox event with this body text, as the receiver would (its job queued), bypassing HTTP; its id. */
  storeEvent(text: string, o?: { maxAttempts?: number; resourceId?: string | null }): Promise<string>;
  /** Waits until the queue has nothing due or running (the worker's idle signal, then a re-check). */
  settle(timeoutMs?: number): Promise<void>;
  adminPost(url: string): Promise<request.Response>;
}

/**
 * The environment of another instance on the service's database (a second service, the CLI): the
 * same database, secrets and Recharge stand-in, and `extra`.
 */
export function sameDatabaseEnv(t: RechargeTestService, extra: Record<string, string> = {}): Record<string, string> {
  const db: Record<string, string> =
    t.config.database.kind === "sqlite" ? { DATA_DIR: t.dataDir } : { DATA_DIR: t.dataDir, DATABASE_URL: t.config.database.url, DATABASE_SCHEMA: t.config.database.schema ?? "" };
  return {
    ...db,
    NODE_ENV: "test",
    SP_HMAC_SECRETS: "sp-secret-0123456789",
    RECHARGE_CLIENT_SECRETS: RC_SECRET,
    RECHARGE_API_TOKEN: RC_TOKEN,
    RECHARGE_API_URL: t.recharge.url,
    ...extra,
  };
}

export async function startRechargeService(kind: StoreKind, o: StartOptions & { standIn?: Partial<RechargeStandInOptions> } = {}): Promise<RechargeTestService> {
  const recharge = await startRechargeStandIn({ token: RC_TOKEN, ...o.standIn });
  let t: TestService;
  try {
    t = await startService(kind, {
      ...o,
      env: {
        RECHARGE_CLIENT_SECRETS: RC_SECRET,
        RECHARGE_API_TOKEN: RC_TOKEN,
        RECHARGE_API_URL: recharge.url,
        RECHARGE_TIMEOUT_MS: "1000",
        WORKER_POLL_MS: "50",
        JOB_BACKOFF_BASE_MS: "40",
        JOB_BACKOFF_MAX_MS: "400",
        JOB_MAX_ATTEMPTS: "6",
        // The reference order numbers of the spec (§7.4: external_order_id 100271, number ABC-100271).
        ORDER_NUMBER_PREFIX: "ABC-",
        ORDER_NUMBER_START: "100271",
        ...o.env,
      },
    });
  } catch (e) {
    await recharge.close();
    throw e;
  }
  const db = t.store.db;
  const rt: RechargeTestService = {
    ...t,
    recharge,
    webhook(topic, body, opts = {}) {
      const raw = typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
      const secret = opts.secret ?? RC_SECRET;
      let req = request(t.app)
        .post(topic === null ? "/webhooks/recharge" : `/webhooks/recharge/${topic}`)
        .set("Content-Type", "application/json")
        .serialize((x: unknown) => x as string);
      const sign = opts.sign ?? "legacy";
      if (sign === "legacy") req = req.set("X-Recharge-Hmac-Sha256", signRechargeLegacy(secret, raw));
      if (sign === "timestamped") {
        req = req.set("X-Recharge-Webhook-Signature", rechargeSignatureHeader(secret, opts.timestamp ?? Math.floor(Date.now() / 1000), raw));
      }
      for (const [k, v] of Object.entries(opts.headers ?? {})) req = req.set(k, v);
      return req.send(raw).then((r) => r);
    },
    async job(id) {
      const e = await getEvent(t.store.handle, id);
      if (e === undefined) throw new Error(`no event ${id}`);
      return e;
    },
    async jobs(where = {}) {
      const all: EventRow[] = [];
      for (let cursor: { createdAt: number; id: string } | undefined; ;) {
        const page = await listEvents(t.store.handle, {
          limit: 500,
          ...(where.kind === undefined ? {} : { kind: where.kind }),
          ...(where.state === undefined ? {} : { state: where.state as EventRow["state"] }),
          ...(cursor === undefined ? {} : { cursor }),
        });
        all.push(...page);
        const last = page.at(-1);
        if (page.length < 500 || last === undefined) return all.reverse();
        cursor = { createdAt: last.created_at, id: last.id };
      }
    },
    async storeEvent(text, o = {}) {
      const event = inboxEvent({
        source: "webhook",
        topic: "order/created",
        topicSource: "path",
        text,
        resourceId: o.resourceId ?? null,
        updatedAt: undefined,
        apiVersion: "2021-11",
        correlationId: null,
      });
      return (await storeInboxEvent(t.store.handle, event, { maxAttempts: o.maxAttempts ?? 6, now: Date.now() })).id;
    },
    async settle(timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        await t.worker.idle();
        const busy = await db
          .selectFrom("jobs")
          .select("id")
          .where((eb) => eb.or([eb("state", "=", "running"), eb.and([eb("state", "=", "pending"), eb("run_at", "<=", Date.now() + 2_000)])]))
          .execute();
        if (busy.length === 0) return;
        if (Date.now() > until) throw new Error(`the queue did not settle: ${busy.length} job(s) still due or running`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    adminPost(url) {
      return request(t.app)
        .post(url)
        .set("Authorization", `Bearer ${ADMIN_TOKEN}`)
        .then((r) => r);
    },
    async stop() {
      await t.stop();
      await recharge.close();
    },
  };
  return rt;
}

/** Polls `check` until it returns a value that is not undefined/false. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The environment of a spawned orderbridge process that receives Recharge webhooks and writes back to `recharge`. */
export function rechargeProcessEnv(dbEnv: Record<string, string>, recharge: RechargeStandIn, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...dbEnv,
    SP_HMAC_SECRETS: "sp-secret-for-process-tests",
    ADMIN_TOKEN,
    RECHARGE_CLIENT_SECRETS: RC_SECRET,
    RECHARGE_API_TOKEN: RC_TOKEN,
    RECHARGE_API_URL: recharge.url,
    RECHARGE_TIMEOUT_MS: "60000",
    JOB_LEASE_MS: "1500",
    WORKER_POLL_MS: "100",
    ...extra,
  };
}

/** POSTs a legacy-signed Recharge webhook to a spawned server on 127.0.0.1. */
export async function postWebhook(port: number, topic: string, raw: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}/webhooks/recharge/${topic}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Recharge-Hmac-Sha256": signRechargeLegacy(RC_SECRET, raw) },
    body: raw,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
