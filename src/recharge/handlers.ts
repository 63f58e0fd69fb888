import { errorText, PlatformError } from "../errors.js";
import type { Tx } from "../store/handle.js";
import { enqueue, type JobRow, type NewJob } from "../store/jobs.js";
import { getInboxEvent, type RechargeInboxRow } from "../store/recharge-inbox.js";
import { INBOX_EVENT_KIND } from "../store/events.js";
import { chargeIdOf, findPlaced, recordPlaced as recordPlacedOrder, setChargeIdIfUnknown } from "../store/recharge-orders.js";
import { classifyHttpStatus, parseRetryAfter } from "../outbound/retry-policy.js";
import { JobError, type JobContext, type JobHandler, type JobResult } from "../jobs/worker.js";
import { defineTask, field, handlersOf, parseJsonColumn, PayloadError } from "../jobs/tasks.js";
import type { Ledger, Placed, Placement } from "../orders/placement.js";
import type { PlatformAdapter, PlatformOrderResult } from "../orders/types.js";
import { remoteRequestId, scrubber, type Scrub } from "../security/scrub.js";
import { RateLimitDeferral, type RechargeClient, type RechargeResponse } from "./client.js";
type Obj = Record<string, unknown>;

import { chargeWriteBackBody, checkoutCartId, decide, mapRechargeOrder, orderWriteBackBody, readOrderView, type ExternalIds, type RechargeApiVersion } from "./order.js";

export const JOB_WEBHOOK = INBOX_EVENT_KIND;
export const JOB_PUT_ORDER = "recharge.order_writeback";
export const JOB_PUT_CHARGE = "recharge.charge_writeback";
/** Every kind of job there is (the queue gauges show each, 0 when it has none). */
export const JOB_KINDS = [JOB_WEBHOOK, JOB_PUT_ORDER, JOB_PUT_CHARGE] as const;

interface WriteBackPayload extends ExternalIds {
  rechargeOrderId: string;
  chargeId?: string;
  apiVersion: RechargeApiVersion;
}

const API_VERSIONS: readonly RechargeApiVersion[] = ["2021-01", "2021-11"];

function decodeWriteBack(raw: unknown): WriteBackPayload {
  const o = field.obj(raw, "the payload");
  const chargeId = field.optionalString(o, "chargeId");
  return {
    rechargeOrderId: field.string(o, "rechargeOrderId"),
    apiVersion: field.oneOf(o, "apiVersion", API_VERSIONS),
    externalOrderId: field.string(o, "externalOrderId"),
    externalOrderNumber: field.string(o, "externalOrderNumber"),
    ...(chargeId === undefined ? {} : { chargeId }),
  };
}

/** A received webhook (its inbox event): its topic and the resource it carries. */
type Webhook = { topic: "checkout/processed"; checkout: Obj; apiVersion: RechargeApiVersion } | { topic: string; order: Obj; apiVersion: RechargeApiVersion };

/** An inbox event as the webhook it is; a PayloadError when it holds none (the job goes dead at once, saying why). */
export function decodeInboxEvent(row: RechargeInboxRow): Webhook {
  const body = field.obj(parseJsonColumn(row.body, "body"), "the webhook's body");
  if (row.topic === null) throw new PayloadError("the webhook has no topic");
  const apiVersion = (API_VERSIONS as readonly string[]).includes(row.api_version ?? "") ? (row.api_version as RechargeApiVersion) : "2021-11";
  if (row.topic === "checkout/processed") return { topic: "checkout/processed", checkout: field.obj(body["checkout"], "the webhook's checkout"), apiVersion };
  return { topic: row.topic, order: field.obj(body["order"], "the webhook's order"), apiVersion };
}

/**
 * Processing an inbox event: placing a received order (or clearing a checkout's cart). Its jobs are
 * queued with their event by the receiver (receive.ts) and the sweep; the payload names the event.
 */
export const WEBHOOK_TASK = defineTask<{ eventId: string }>(JOB_WEBHOOK, {
  lane: "inbox",
  prefix: "evt",
  decodePayload: (raw) => ({ eventId: field.string(field.obj(raw, "the payload"), "eventId") }),
});
export const PUT_ORDER_TASK = defineTask<WriteBackPayload>(JOB_PUT_ORDER, { lane: "writeback", prefix: "job", decodePayload: decodeWriteBack });
export const PUT_CHARGE_TASK = defineTask<WriteBackPayload>(JOB_PUT_CHARGE, { lane: "writeback", prefix: "job", decodePayload: decodeWriteBack });

export interface RechargeHandlerDeps {
  db: Tx;
  /** How orders are placed (in-store or remote, as the composition root picked). */
  placement: Placement;
  /** The platform itself, for clearing carts. */
  platform: PlatformAdapter;
  /** Undefined when write-back is switched off (RECHARGE_WRITEBACK=off). */
  client: RechargeClient | undefined;
  /** Send external_order_number with the order write-back. */
  sendOrderNumber: boolean;
  maxAttempts: number;
  clock: () => number;
  /** Called after write-back jobs were added (nudges the worker). */
  onEnqueued: () => void;
  /** Scrub customers' emails from what platforms say, as well as payment values (LOG_REDACT_EMAIL). */
  redactEmail: boolean;
}

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The write-back jobs of a placed Recharge order: the order's PUT, and for a prepaid order the
 * charge's, also when the payload did not name the charge (its job learns it from Recharge first).
 * Their dedupe keys make queueing them again a no-op (recordPlaced, and the catch-up of
 * `orderbridge recharge writeback`). Both are keyed by the order alone: an order has one charge, and
 * a key holding the charge id would let a later payload that names it (or the catch-up, once the
 * charge id is learnt) queue a second charge write-back for the same order.
 */
export function writeBackJobs(o: {
  rechargeOrderId: string;
  chargeId: string | undefined;
  isPrepaid: boolean;
  apiVersion: RechargeApiVersion;
  placed: { platformOrderId: string; orderNumber: string };
  maxAttempts: number;
  correlationId: string | null;
}): NewJob[] {
  const payload: WriteBackPayload = {
    rechargeOrderId: o.rechargeOrderId,
    apiVersion: o.apiVersion,
    externalOrderId: o.placed.platformOrderId,
    externalOrderNumber: o.placed.orderNumber,
    ...(o.chargeId === undefined ? {} : { chargeId: o.chargeId }),
  };
  const common = { maxAttempts: o.maxAttempts, correlationId: o.correlationId, resourceId: o.rechargeOrderId };
  const jobs: NewJob[] = [PUT_ORDER_TASK.job(payload, { ...common, dedupeKey: `recharge:put-order:${o.rechargeOrderId}` })];
  if (o.isPrepaid) jobs.push(PUT_CHARGE_TASK.job(payload, { ...common, dedupeKey: `recharge:put-charge:${o.rechargeOrderId}` }));
  return jobs;
}

/**
 * The three kinds of Recharge work: processing a received webhook (place the order, or clear a
 * cart), and the two write-backs. Each is idempotent, so running one twice (a replay, a worker that
 * died after finishing) changes nothing.
 */
export function createRechargeHandlers(deps: RechargeHandlerDeps): Record<string, JobHandler> {
  const processWebhook = WEBHOOK_TASK.handle(async ({ eventId }, job, ctx) => {
    const event = await getInboxEvent(deps.db, eventId);
    if (event === undefined) throw new PayloadError(`its inbox event ${eventId} is not there`);
    const webhook = decodeInboxEvent(event);
    if ("checkout" in webhook) {
      const checkout = webhook.checkout;
      const cartId = checkoutCartId(checkout);
      if (cartId === undefined) return { state: "skipped", outcome: "the checkout names no external cart (external_checkout_id)" };
      if (deps.platform.clearCart === undefined) return { state: "skipped", outcome: `the ${deps.platform.name} platform has no carts` };
      const email = typeof checkout["email"] === "string" ? checkout["email"] : undefined;
      try {
        await deps.platform.clearCart(
          { cartId, source: "recharge", ...(email === undefined ? {} : { customerEmail: email }) },
          { signal: ctx.signal, log: ctx.log, scrub: scrubber(deps.redactEmail ? [email] : []) },
        );
      } catch (e) {
        // Retried whatever the platform said (a cart is not an order); the last error gets its scrubbed words.
        throw e instanceof PlatformError ? new JobError(errorText(e), { retry: true }) : e;
      }
      return { state: "done", outcome: `cleared cart ${cartId}` };
    }

    const order = webhook.order;
    const view = readOrderView(order);
    const decision = decide(view, await findPlaced(deps.db, view.id));
    if (decision.action === "skip") return { state: "skipped", outcome: decision.reason };
    if (decision.action === "noop") return { state: "done", outcome: decision.reason };

    const mapped = mapRechargeOrder(order);
    if (mapped.problems.length > 0 || mapped.order.lines.length === 0) {
      const why = mapped.problems.length > 0 ? mapped.problems.join("; ") : "it has no line items";
      throw new JobError(`Recharge order ${view.id} cannot be placed: ${why}`, { retry: false });
    }
    const version = webhook.apiVersion;
    const ledger: Ledger<boolean> = {
      // The job's lease is the claim: only its worker runs it.
      claim: async () => ({ kind: "owner" }),
      // Whether write-backs were added; built afresh on each run of the transaction (it may be run again after a deadlock).
      record: async (tx, r) => ({ kind: "kept", value: r?.order == null ? false : await recordPlaced(tx, job, r.order, view, version) }),
      failed: async () => undefined,
    };
    let placed: Placed<boolean>;
    try {
      placed = await deps.placement.place({ order: mapped.order, idempotencyKey: `recharge:order:${view.id}`, log: ctx.log, signal: ctx.signal }, ledger);
    } catch (e) {
      throw platformFailure(e);
    }
    const result = placed.result;
    if (result === null) throw new Error(`the placement of Recharge order ${view.id} answered no result`);
    if (result.order === null) {
      const failed = result.lines.flatMap((l) => (l.ok ? [] : [`${l.sku}: ${l.message}`]));
      throw new JobError(
        `The ${deps.placement.platformName} platform did not place Recharge order ${view.id} (the customer has paid for every line, so it is not placed in part): ${failed.join("; ") || "no reason given"}. Fix the cause, then replay this event.`,
        { retry: false },
      );
    }
    if (placed.value) deps.onEnqueued();
    const failedLines = result.lines.filter((l) => !l.ok).length;
    return {
      state: "done",
      outcome: `${result.replayed ? "found" : "placed"} order ${result.order.orderNumber}${failedLines > 0 ? ` (${failedLines} line(s) failed)` : ""}`,
    };
  });

  /** The order's sync row and its write-back jobs, in the transaction that records the order. */
  async function recordPlaced(
    tx: Tx,
    job: JobRow,
    placed: NonNullable<PlatformOrderResult["order"]>,
    view: ReturnType<typeof readOrderView>,
    version: RechargeApiVersion,
  ): Promise<boolean> {
    const now = deps.clock();
    await recordPlacedOrder(tx, {
      rechargeOrderId: view.id,
      platform: deps.platform.name,
      platformOrderId: placed.platformOrderId,
      orderNumber: placed.orderNumber,
      chargeId: view.chargeId ?? null,
      isPrepaid: view.isPrepaid,
      apiVersion: version,
      eventId: job.id,
      placedAt: now,
    });
    if (deps.client === undefined) return false;
    const jobs = writeBackJobs({
      rechargeOrderId: view.id,
      chargeId: view.chargeId,
      isPrepaid: view.isPrepaid,
      apiVersion: version,
      placed,
      maxAttempts: deps.maxAttempts,
      correlationId: job.correlation_id,
    });
    let added = false;
    for (const j of jobs) added = (await enqueue(tx, j, now)).inserted || added;
    return added;
  }

  /**
   * One call to Recharge for a job: the answer when it is a 2xx; otherwise the job's failure (a
   * rate-limit wait, a retry or dead, as the status says), with Recharge's words scrubbed.
   */
  async function call(client: RechargeClient, method: "GET" | "PUT", path: string, body: unknown, version: RechargeApiVersion, signal: AbortSignal): Promise<RechargeResponse> {
    let res: RechargeResponse;
    try {
      res = method === "GET" ? await client.get(path, version, signal) : await client.put(path, body, version, signal);
    } catch (e) {
      if (e instanceof RateLimitDeferral) throw new JobError(e.message, { retry: true, retryAfterMs: e.waitMs, countsAsAttempt: false });
      const message = e instanceof Error ? e.message : String(e);
      // Without the cause: the worker would add its unscrubbed message to the job's last error.
      throw new JobError(client.scrub(`${method} ${path} failed: ${message}`), { retry: true });
    }
    const verdict = classifyHttpStatus(res.status);
    if (verdict === "ok") return res;
    const retryAfterMs = parseRetryAfter(res.headers["retry-after"], deps.clock());
    if (res.status === 429) await client.limiter.penalize(retryAfterMs);
    // The job's last error and log line are read by operators: Recharge's words are kept, with
    // the access token scrubbed (what we send holds ids and the order number only).
    const rid = remoteRequestId(res.headers["x-request-id"], client.scrub);
    const detail = describeErrorBody(res.data, client.scrub);
    throw new JobError(`${method} ${path} → ${res.status}${rid === undefined ? "" : ` (request id ${rid})`}${detail === "" ? "" : `: ${detail}`}`, {
      retry: verdict === "retry",
      remoteStatus: res.status,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }

  /**
   * The charge of a prepaid order whose payload did not name it (Recharge's own prepaid example has
   * no `charge`): learnt once from `GET /orders/{id}` (2021-11 answers `order.charge.id`, 2021-01
   * `order.charge_id`) and kept on the order's sync row, so a retry of the PUT (a rate-limit wait, a
   * 5xx) does not read the order again. Undefined when Recharge's order has no charge either.
   */
  async function learnChargeId(client: RechargeClient, p: WriteBackPayload, signal: AbortSignal): Promise<string | undefined> {
    const known = await chargeIdOf(deps.db, p.rechargeOrderId);
    if (known !== null) return known;
    const path = `/orders/${encodeURIComponent(p.rechargeOrderId)}`;
    const res = await call(client, "GET", path, undefined, p.apiVersion, signal);
    const order = isObj(res.data) ? res.data["order"] : undefined;
    if (!isObj(order)) {
      throw new JobError(`GET ${path} → ${res.status} answered no order: ${describeErrorBody(res.data, client.scrub) || "an empty body"}`, { retry: false });
    }
    const chargeId = readOrderView(order).chargeId;
    if (chargeId === undefined) return undefined;
    await setChargeIdIfUnknown(deps.db, p.rechargeOrderId, chargeId);
    return chargeId;
  }

  const writeBack =
    (what: "order" | "charge") =>
    async (payload: WriteBackPayload, _job: JobRow, ctx: JobContext): Promise<JobResult> => {
      const client = deps.client;
      if (client === undefined) throw new JobError("write-back is off (RECHARGE_WRITEBACK=off, or no RECHARGE_API_TOKEN)", { retry: false });
      const p = { ...payload };
      let learnt = "";
      if (what === "charge" && p.chargeId === undefined) {
        const chargeId = await learnChargeId(client, p, ctx.signal);
        if (chargeId === undefined) {
          const outcome = `PUT /charges skipped: the charge of prepaid Recharge order ${p.rechargeOrderId} is unknown (neither its webhook nor GET /orders/${p.rechargeOrderId} names one)`;
          ctx.log.warn("Recharge charge write-back skipped: the charge is unknown", { rechargeOrderId: p.rechargeOrderId, externalOrderNumber: p.externalOrderNumber });
          return { state: "skipped", outcome };
        }
        p.chargeId = chargeId;
        learnt = `, charge id from GET /orders/${p.rechargeOrderId}`;
      }
      const path = what === "order" ? `/orders/${encodeURIComponent(p.rechargeOrderId)}` : `/charges/${encodeURIComponent(p.chargeId ?? "")}`;
      const body = what === "order" ? orderWriteBackBody(p.apiVersion, p, deps.sendOrderNumber) : chargeWriteBackBody(p.apiVersion, p);
      const res = await call(client, "PUT", path, body, p.apiVersion, ctx.signal);
      return { state: "done", outcome: `PUT ${path} → ${res.status} (external order ${p.externalOrderNumber}${learnt})`, remoteStatus: res.status };
    };

  return handlersOf([processWebhook, PUT_ORDER_TASK.handle(writeBack("order")), PUT_CHARGE_TASK.handle(writeBack("charge"))]);
}

/**
 * A platform's failure as a job failure, the platform's scrubbed words included (the job's last
 * error is what an operator fixes the cause from). A platform that refuses the request or answers
 * against its contract will not change its mind: dead at once; anything else is retried.
 */
function platformFailure(e: unknown): unknown {
  if (!(e instanceof PlatformError)) return e;
  if (!e.retryable) return new JobError(`${errorText(e)}. Fix the cause, then replay this event.`, { retry: false });
  return new JobError(errorText(e), { retry: true });
}

function describeErrorBody(data: unknown, scrub: Scrub): string {
  if (data === undefined || data === null || data === "") return "";
  const errors = typeof data === "object" && "errors" in data ? (data as { errors: unknown }).errors : data;
  return scrub.excerpt(typeof errors === "string" ? errors : JSON.stringify(errors), 500);
}
