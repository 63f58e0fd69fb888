import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import { toErrorResponse } from "../errors.js";
import type { Logger } from "../logger.js";
import { canonicalJson } from "../orders/canonical-json.js";
import { claimKey, finishAttempt } from "../orders/idempotency.js";
import { placeWithDeadline } from "../orders/place.js";
import type { LineResult, PlatformAdapter, PlatformOrderResult } from "../orders/types.js";
import { isStoreUnavailable } from "../store/db.js";
import type { Database } from "../store/schema.js";
import { parseJsonBody } from "../validation/json.js";
import type { Validator } from "../validation/schemas.js";
import { mapSpRequest } from "./map-request.js";
import { buildSpResponse } from "./response.js";
import type { SpCallbackRequest } from "./types.js";

export interface SubscribeProCallbackDeps {
  db: Kysely<Database>;
  platform: PlatformAdapter;
  validate: Validator<SpCallbackRequest>;
  /** Total time the platform may take before we answer 503. */
  platformDeadlineMs: number;
  clock?: () => number;
}

export interface CallbackInput {
  /** The exact bytes received (already authenticated). */
  rawBody: Buffer;
  requestId: string;
  log: Logger;
}

export interface CallbackOutput {
  status: number;
  /** Exact response text: a replay sends the stored bytes unchanged. */
  body: string;
  headers: Record<string, string>;
  replayed: boolean;
  orderNumber: string | null;
}

const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");

/**
 * The Subscribe Pro order callback use case: parse → validate → claim the idempotency key → place
 * the order through the platform → store and return the answer. Transport-free; the HTTP route
 * authenticates the request first and only copies status, headers and body out.
 */
export function createSubscribeProCallback(deps: SubscribeProCallbackDeps) {
  const clock = deps.clock ?? Date.now;
  // A request owns its key this long; after that (its process died) a retry may take over.
  const leaseMs = deps.platformDeadlineMs + Math.max(1_000, deps.platformDeadlineMs / 2);

  return async function handleCallback(input: CallbackInput): Promise<CallbackOutput> {
    const parsed = parseJsonBody(input.rawBody);
    const req = deps.validate(parsed);
    const token = typeof req.salesOrderToken === "string" ? req.salesOrderToken : undefined;
    const key = token !== undefined ? `sp:${token}` : `sp:sha256:${sha256(input.rawBody)}`;
    const log = input.log.child({ salesOrderToken: token ?? null });

    const claim = await claimKey(deps.db, {
      key,
      bodyHash: sha256(canonicalJson(parsed)),
      requestId: input.requestId,
      leaseMs,
      waitMs: leaseMs + 500,
      clock,
    });
    if (claim.kind === "stored") {
      log.info("order callback answered from the stored result", { status: claim.status, orderNumber: claim.orderNumber });
      return {
        status: claim.status,
        body: claim.body,
        headers: claim.status === 503 ? { "Retry-After": "5" } : {},
        replayed: true,
        orderNumber: claim.orderNumber,
      };
    }

    const attemptId = claim.attemptId;
    try {
      const out = await place(req, key, attemptId, log);
      log.info("order callback processed", { status: out.status, orderNumber: out.orderNumber, items: req.items.length });
      return out;
    } catch (e) {
      // Nothing final happened: record the answer as retryable so the next request starts afresh.
      const answer = toErrorResponse(e, input.requestId, isStoreUnavailable);
      await finishAttempt(deps.db, key, attemptId, {
        status: answer.status,
        body: JSON.stringify(answer.body),
        orderNumber: null,
        now: clock(),
      }).catch((err: unknown) => log.warn("could not record a failed attempt; its lease will expire", { error: String(err) }));
      throw e;
    }
  };

  async function place(req: SpCallbackRequest, key: string, attemptId: string, log: Logger): Promise<CallbackOutput> {
    const mapped = mapSpRequest(req);
    const lines = new Map<string, LineResult>(mapped.invalid);
    let output: CallbackOutput | undefined;

    const record = async (tx: Kysely<Database>, result: PlatformOrderResult | null): Promise<void> => {
      for (const l of result?.lines ?? []) lines.set(l.ref, l);
      const response = buildSpResponse(req, lines, result);
      const body = JSON.stringify(response.body);
      const orderNumber = response.status === 409 ? null : (result?.order?.orderNumber ?? null);
      const kept = await finishAttempt(tx, key, attemptId, { status: response.status, body, orderNumber, now: clock() });
      if (!kept) log.warn("another request took this order over while it was processed; answering with this attempt's result");
      output = { status: response.status, body, headers: {}, replayed: result?.replayed ?? false, orderNumber };
    };

    const order = mapped.order;
    if (order.lines.length === 0 || (mapped.invalid.size > 0 && !order.allowPartial)) {
      await record(deps.db, null);
    } else {
      const result = await placeWithDeadline(deps.platform, order, {
        idempotencyKey: key,
        deadlineMs: deps.platformDeadlineMs,
        log,
        atomically: record,
      });
      if (!result.ranAtomically) await deps.db.transaction().execute((tx) => record(tx, result));
      if (result.order !== null && result.lines.some((l) => !l.ok) && !order.allowPartial) {
        log.warn("the platform placed an order with failed items although allowSomeFailedItems is false");
      }
    }
    if (output === undefined) throw new Error("the order outcome was not recorded");
    return output;
  }
}
