import type { Kysely } from "kysely";
import { PlatformError } from "../errors.js";
import { enqueue } from "../jobs/queue.js";
import { classifyHttpStatus, parseRetryAfter } from "../jobs/retry-policy.js";
import { JobError, type JobHandler } from "../jobs/worker.js";
import { placeWithDeadline } from "../orders/place.js";
import type { PlatformAdapter, PlatformOrderResult } from "../orders/types.js";
import type { Database, JobRow } from "../store/schema.js";
import { RateLimitDeferral, type RechargeClient, type RechargeResponse } from "./client.js";
import {
  chargeWriteBackBody,
  checkoutCartId,
  decide,
  mapRechargeOrder,
  orderWriteBackBody,
  readOrderView,
  type ExternalIds,
  type RechargeApiVersion,
} from "./order.js";

export const JOB_WEBHOOK = "recharge.webhook";
export const JOB_PUT_ORDER = "recharge.order_writeback";
export const JOB_PUT_CHARGE = "recharge.charge_writeback";
/** Every kind of job there is (the queue gauges show each, 0 when it has none). */
export const JOB_KINDS = [JOB_WEBHOOK, JOB_PUT_ORDER, JOB_PUT_CHARGE] as const;

interface WriteBackPayload extends ExternalIds {
  rechargeOrderId: string;
  chargeId?: string;
  apiVersion: RechargeApiVersion;
}

export interface RechargeHandlerDeps {
  db: Kysely<Database>;
  platform: PlatformAdapter;
  platformDeadlineMs: number;
  /** Undefined when write-back is switched off (RECHARGE_WRITEBACK=off). */
  client: RechargeClient | undefined;
  /** Send external_order_number with the order write-back. */
  sendOrderNumber: boolean;
  maxAttempts: number;
  clock: () => number;
  /** Called after write-back jobs were added (nudges the worker). */
  onEnqueued: () => void;
}

type Obj = Record<string, unknown>;

/**
 * The three kinds of Recharge work: processing a received webhook (place the order, or clear a
 * cart), and the two write-backs. Each is idempotent, so running one twice (a replay, a worker that
 * died after finishing) changes nothing.
 */
export function createRechargeHandlers(deps: RechargeHandlerDeps): Record<string, JobHandler> {
  const processWebhook: JobHandler = async (job, ctx) => {
    const body = JSON.parse(job.body ?? "null") as Obj;
    if (job.topic === "checkout/processed") {
      const checkout = body["checkout"] as Obj;
      const cartId = checkoutCartId(checkout);
      if (cartId === undefined) return { state: "skipped", outcome: "the checkout names no external cart (external_checkout_id)" };
      if (deps.platform.clearCart === undefined) return { state: "skipped", outcome: `the ${deps.platform.name} platform has no carts` };
      const email = typeof checkout["email"] === "string" ? checkout["email"] : undefined;
      await deps.platform.clearCart(
        { cartId, source: "recharge", ...(email === undefined ? {} : { customerEmail: email }) },
        { signal: ctx.signal, log: ctx.log },
      );
      return { state: "done", outcome: `cleared cart ${cartId}` };
    }

    const order = body["order"] as Obj;
    const view = readOrderView(order);
    const known = await deps.db
      .selectFrom("recharge_orders")
      .select(["platform_order_id", "order_number"])
      .where("recharge_order_id", "=", view.id)
      .executeTakeFirst();
    const decision = decide(view, known && { platformOrderId: known.platform_order_id, orderNumber: known.order_number });
    if (decision.action === "skip") return { state: "skipped", outcome: decision.reason };
    if (decision.action === "noop") return { state: "done", outcome: decision.reason };

    const mapped = mapRechargeOrder(order);
    if (mapped.problems.length > 0 || mapped.order.lines.length === 0) {
      const why = mapped.problems.length > 0 ? mapped.problems.join("; ") : "it has no line items";
      throw new JobError(`Recharge order ${view.id} cannot be placed: ${why}`, { retry: false });
    }
    const version = (job.api_version ?? "2021-11") as RechargeApiVersion;
    let added = false;
    const record = async (tx: Kysely<Database>, r: PlatformOrderResult): Promise<void> => {
      if (r.order === null) return;
      added = await recordPlaced(tx, job, r.order, view, version);
    };
    let result: PlatformOrderResult;
    try {
      result = await placeWithDeadline(deps.platform, mapped.order, {
        idempotencyKey: `recharge:order:${view.id}`,
        deadlineMs: deps.platformDeadlineMs,
        log: ctx.log,
        atomically: record,
        signal: ctx.signal,
      });
    } catch (e) {
      // A platform that refuses the request or answers against its contract will not change its mind.
      if (e instanceof PlatformError && !e.retryable) throw new JobError(`${e.message}. Fix the cause, then replay this event.`, { retry: false, cause: e });
      throw e;
    }
    if (result.order === null) {
      const failed = result.lines.flatMap((l) => (l.ok ? [] : [`${l.sku}: ${l.message}`]));
      throw new JobError(
        `The ${deps.platform.name} platform did not place Recharge order ${view.id} (the customer has paid for every line, so it is not placed in part): ${failed.join("; ") || "no reason given"}. Fix the cause, then replay this event.`,
        { retry: false },
      );
    }
    if (!result.ranAtomically) await deps.db.transaction().execute((tx) => record(tx, result));
    if (added) deps.onEnqueued();
    const failedLines = result.lines.filter((l) => !l.ok).length;
    return {
      state: "done",
      outcome: `${result.replayed ? "found" : "placed"} order ${result.order.orderNumber}${failedLines > 0 ? ` (${failedLines} line(s) failed)` : ""}`,
    };
  };

  /** The order's sync row and its write-back jobs, in the transaction that records the order. */
  async function recordPlaced(
    tx: Kysely<Database>,
    job: JobRow,
    placed: NonNullable<PlatformOrderResult["order"]>,
    view: ReturnType<typeof readOrderView>,
    version: RechargeApiVersion,
  ): Promise<boolean> {
    const now = deps.clock();
    await tx
      .insertInto("recharge_orders")
      .values({
        recharge_order_id: view.id,
        platform: deps.platform.name,
        platform_order_id: placed.platformOrderId,
        order_number: placed.orderNumber,
        charge_id: view.chargeId ?? null,
        is_prepaid: view.isPrepaid ? 1 : 0,
        api_version: version,
        event_id: job.id,
        placed_at: now,
      })
      .onConflict((oc) => oc.column("recharge_order_id").doNothing())
      .execute();
    if (deps.client === undefined) return false;
    const payload: WriteBackPayload = {
      rechargeOrderId: view.id,
      apiVersion: version,
      externalOrderId: placed.platformOrderId,
      externalOrderNumber: placed.orderNumber,
      ...(view.chargeId === undefined ? {} : { chargeId: view.chargeId }),
    };
    const common = { prefix: "job" as const, apiVersion: version, maxAttempts: deps.maxAttempts, correlationId: job.correlation_id, payload };
    const a = await enqueue(tx, { ...common, kind: JOB_PUT_ORDER, dedupeKey: `recharge:put-order:${view.id}`, resourceId: view.id }, now);
    let b = { inserted: false };
    if (view.isPrepaid && view.chargeId !== undefined) {
      b = await enqueue(
        tx,
        { ...common, kind: JOB_PUT_CHARGE, dedupeKey: `recharge:put-charge:${view.chargeId}:${view.id}`, resourceId: view.id },
        now,
      );
    }
    return a.inserted || b.inserted;
  }

  const writeBack =
    (what: "order" | "charge"): JobHandler =>
    async (job, ctx) => {
      const client = deps.client;
      if (client === undefined) throw new JobError("write-back is off (RECHARGE_WRITEBACK=off, or no RECHARGE_API_TOKEN)", { retry: false });
      const p = JSON.parse(job.payload) as WriteBackPayload;
      const path = what === "order" ? `/orders/${encodeURIComponent(p.rechargeOrderId)}` : `/charges/${encodeURIComponent(p.chargeId ?? "")}`;
      const body = what === "order" ? orderWriteBackBody(p.apiVersion, p, deps.sendOrderNumber) : chargeWriteBackBody(p.apiVersion, p);
      let res: RechargeResponse;
      try {
        res = await client.put(path, body, p.apiVersion, ctx.signal);
      } catch (e) {
        if (e instanceof RateLimitDeferral) throw new JobError(e.message, { retry: true, retryAfterMs: e.waitMs, countsAsAttempt: false });
        const message = e instanceof Error ? e.message : String(e);
        throw new JobError(`PUT ${path} failed: ${message}`, { retry: true, cause: e });
      }
      const verdict = classifyHttpStatus(res.status);
      if (verdict === "ok") return { state: "done", outcome: `PUT ${path} → ${res.status} (external order ${p.externalOrderNumber})` };
      const retryAfterMs = parseRetryAfter(res.headers["retry-after"], deps.clock());
      if (res.status === 429) await client.limiter.penalize(retryAfterMs);
      const detail = describeErrorBody(res.data);
      throw new JobError(`PUT ${path} → ${res.status}${detail === "" ? "" : `: ${detail}`}`, {
        retry: verdict === "retry",
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    };

  return { [JOB_WEBHOOK]: processWebhook, [JOB_PUT_ORDER]: writeBack("order"), [JOB_PUT_CHARGE]: writeBack("charge") };
}

function describeErrorBody(data: unknown): string {
  if (data === undefined || data === null || data === "") return "";
  const errors = typeof data === "object" && "errors" in data ? (data as { errors: unknown }).errors : data;
  const s = typeof errors === "string" ? errors : JSON.stringify(errors);
  return s.length > 500 ? `${s.slice(0, 500)}…` : s;
}
