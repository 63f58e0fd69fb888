import { createHash } from "node:crypto";
import type { Logger } from "../logger.js";
import { canonicalJson } from "../orders/canonical-json.js";
import type { Placement } from "../orders/placement.js";
import type { LineResult } from "../orders/types.js";
import type { Tx } from "../store/handle.js";
import { parseJsonBody } from "../validation/json.js";
import type { Validator } from "../validation/schemas.js";
import { mapSpRequest, salesOrderToken } from "./map-request.js";
import { callbackLedger, createCallbackStatements } from "./callback-state.js";
import { buildSpResponse } from "./response.js";
import type { SpCallbackRequest } from "./types.js";

export interface SubscribeProCallbackDeps {
  db: Tx;
  /** In-store or remote, as the composition root picked (src/orders/placement.ts). */
  placement: Placement;
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
 * The Subscribe Pro order callback use case: parse → validate → place the order through the
 * placement with the callback's ledger (src/subscribe-pro/callback-state.ts: the idempotency key's
 * claim and stored answer) → answer. Transport-free; the HTTP route authenticates the request first
 * and only copies status, headers and body out.
 */
export function createSubscribeProCallback(deps: SubscribeProCallbackDeps) {
  const clock = deps.clock ?? Date.now;
  // A request owns its key this long; after that (its process died) a retry may take over.
  const leaseMs = deps.platformDeadlineMs + Math.max(1_000, deps.platformDeadlineMs / 2);
  const q = createCallbackStatements(deps.db);

  return async function handleCallback(input: CallbackInput): Promise<CallbackOutput> {
    const parsed = parseJsonBody(input.rawBody);
    const req = deps.validate(parsed);
    const token = salesOrderToken(req);
    const key = token !== undefined ? `sp:${token}` : `sp:sha256:${sha256(input.rawBody)}`;
    const log = input.log.child({ salesOrderToken: token ?? null });
    const bodyHash = sha256(canonicalJson(parsed));
    const mapped = mapSpRequest(req);
    const order = mapped.order;
    const send = order.lines.length > 0 && (mapped.invalid.size === 0 || order.allowPartial);

    const ledger = callbackLedger(deps.db, q, {
      key,
      bodyHash,
      requestId: input.requestId,
      log,
      leaseMs,
      clock,
      // Built from `result` alone: it may run more than once (a transaction run again after a deadlock).
      answer: (result) => {
        const lines = new Map<string, LineResult>(mapped.invalid);
        for (const l of result?.lines ?? []) lines.set(l.ref, l);
        const response = buildSpResponse(req, lines, result);
        const orderNumber = response.status === 409 ? null : (result?.order?.orderNumber ?? null);
        return { status: response.status, body: JSON.stringify(response.body), orderNumber, replayed: result?.replayed ?? false };
      },
    });
    const { value: out, result } = await deps.placement.place({ order: send ? order : undefined, idempotencyKey: key, log }, ledger);
    if (result !== null && result.order !== null && result.lines.some((l) => !l.ok) && !order.allowPartial) {
      log.warn("the platform placed an order with failed items although allowSomeFailedItems is false");
    }
    if (!out.fromStore) log.info("order callback processed", { status: out.status, orderNumber: out.orderNumber, items: req.items.length });
    return { status: out.status, body: out.body, headers: out.headers, replayed: out.replayed, orderNumber: out.orderNumber };
  };
}
