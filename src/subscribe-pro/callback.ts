import { createHash, randomUUID } from "node:crypto";
import { IdempotencyConflictError, PlatformError, toErrorResponse } from "../errors.js";
import type { Logger } from "../logger.js";
import { canonicalJson } from "../orders/canonical-json.js";
import { claimKey, finishAttempt, reusedKey } from "../orders/idempotency.js";
import { placeWithDeadline } from "../orders/place.js";
import type { LineResult, PlatformAdapter, PlatformOrderResult } from "../orders/types.js";
import { isStoreUnavailable } from "../store/db.js";
import { createCallbackStatements } from "../store/callbacks.js";
import { transaction, type Tx } from "../store/handle.js";
import { parseJsonBody } from "../validation/json.js";
import type { Validator } from "../validation/schemas.js";
import { mapSpRequest, salesOrderToken } from "./map-request.js";
import { buildSpResponse } from "./response.js";
import type { SpCallbackRequest } from "./types.js";

export interface SubscribeProCallbackDeps {
  db: Tx;
  platform: PlatformAdapter;
  validate: Validator<SpCallbackRequest>;
  /** Total time the platform may take before we answer 503. */
  platformDeadlineMs: number;
  clock?: () => number;
  /** Scrub the customer's email from what the platform says, as well as payment values (LOG_REDACT_EMAIL). */
  redactEmail?: boolean;
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

/** The key is claimed by a live request of the claim path (thrown to roll the fast path back). */
class HeldByClaim extends Error {}

const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex");

/** Stores an outcome (in the transaction given) and says what to answer. */
type Persist = (
  tx: Tx,
  outcome: { status: number; body: string; orderNumber: string | null; replayed: boolean },
) => Promise<CallbackOutput>;

/**
 * The Subscribe Pro order callback use case: parse → validate → claim the idempotency key → place
 * the order through the platform → store and return the answer. Transport-free; the HTTP route
 * authenticates the request first and only copies status, headers and body out.
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

    if (deps.platform.atomicWithStore === true) {
      const done = await handleInOneTransaction(req, key, bodyHash, input, log);
      if (done !== undefined) return done;
      // Another request holds a live claim on this key (wait for it the usual way), or the key is
      // uncertain or pruned (the claim path decides who may go on).
    }

    const claim = await claimKey(deps.db, {
      key,
      bodyHash,
      requestId: input.requestId,
      leaseMs,
      waitMs: leaseMs + 500,
      clock,
    });
    if (claim.kind === "stored") return fromStore(claim, log);

    const attemptId = claim.attemptId;
    // Set once the platform is asked: a failure after that may hide an order it placed.
    let platformAsked = false;
    // A pruned key's order exists: whatever this attempt answers, the key stays bound to its body.
    const placedBefore = claim.placedBefore;
    const persist: Persist = async (tx, o) => {
      const kept = await finishAttempt(tx, key, attemptId, { ...o, now: clock(), uncertain: placedBefore });
      if (!kept) log.warn("another request took this order over while it was processed; answering with this attempt's result");
      return { status: o.status, body: o.body, headers: {}, replayed: o.replayed, orderNumber: o.orderNumber };
    };
    try {
      const out = await place(req, key, persist, log, () => (platformAsked = true));
      log.info("order callback processed", { status: out.status, orderNumber: out.orderNumber, items: req.items.length });
      return out;
    } catch (e) {
      // Nothing final happened: record the answer so the next request starts afresh. When the
      // platform was asked and did not plainly refuse, it may have placed the order (a timeout):
      // then only the same body may retry, and the platform's idempotency key finds that order.
      const answer = toErrorResponse(e, input.requestId, isStoreUnavailable);
      // The local platform's transaction rolled back: nothing of it can exist.
      const uncertain =
        placedBefore || (platformAsked && deps.platform.atomicWithStore !== true && !(e instanceof PlatformError && e.notPlaced));
      if (uncertain) log.warn("the platform may have placed this order; only the same body may retry this salesOrderToken", { error: answer.body.errorMessage });
      await finishAttempt(deps.db, key, attemptId, {
        status: answer.status,
        body: JSON.stringify(answer.body),
        orderNumber: null,
        now: clock(),
        uncertain,
      }).catch((err: unknown) => log.warn("could not record a failed attempt; its lease will expire", { error: String(err) }));
      throw e;
    }
  };

  /**
   * The fast path for platforms whose orders live in our own database: no separate claim and no
   * lookup first. The platform's transaction writes the order and the stored answer together (one
   * commit); a retry or a concurrent duplicate finds the order by its key and answers the stored
   * result (or the reused-key error), writing nothing.
   * Undefined: another request holds a live claim on the key (the claim path waits for it).
   */
  async function handleInOneTransaction(
    req: SpCallbackRequest,
    key: string,
    bodyHash: string,
    input: CallbackInput,
    log: Logger,
  ): Promise<CallbackOutput | undefined> {
    const attemptId = randomUUID();
    let answeredFromStore = false;
    const persist: Persist = async (tx, o) => {
      answeredFromStore = false; // set afresh by each run of the transaction (it may be run again)
      const now = clock();
      const final = o.status === 201 || o.status === 202;
      const stored = await q.storeUnlessHeld(tx, {
        key, bodyHash, state: final ? "done" : "retryable", attemptId, now, status: o.status, body: o.body,
        orderNumber: o.orderNumber, requestId: input.requestId,
      });
      if (stored) {
        return { status: o.status, body: o.body, headers: {}, replayed: o.replayed, orderNumber: o.orderNumber };
      }
      // Placed before (a retry) or by a concurrent duplicate: the stored answer is the answer.
      const row = await q.findByKey(tx, key);
      if (row === undefined) throw new Error(`the stored outcome of ${key} vanished`);
      if (row.state !== "done") throw new HeldByClaim(); // rolls this transaction back
      if (row.body_hash !== bodyHash) throw reusedKey(key, "was already placed");
      const out = fromStore({ status: row.status ?? 500, body: row.response_body ?? "{}", orderNumber: row.order_number }, log);
      answeredFromStore = true;
      return out;
    };
    try {
      const out = await place(req, key, persist, log, () => undefined);
      if (!answeredFromStore) log.info("order callback processed", { status: out.status, orderNumber: out.orderNumber, items: req.items.length });
      return out;
    } catch (e) {
      if (e instanceof HeldByClaim) return undefined;
      if (!(e instanceof IdempotencyConflictError)) {
        const answer = toErrorResponse(e, input.requestId, isStoreUnavailable);
        await persist(deps.db, { status: answer.status, body: JSON.stringify(answer.body), orderNumber: null, replayed: false }).catch(
          (err: unknown) => log.warn("could not record a failed attempt", { error: String(err) }),
        );
      }
      throw e;
    }
  }

  function fromStore(c: { status: number; body: string; orderNumber: string | null }, log: Logger): CallbackOutput {
    log.info("order callback answered from the stored result", { status: c.status, orderNumber: c.orderNumber });
    return { status: c.status, body: c.body, headers: c.status === 503 ? { "Retry-After": "5" } : {}, replayed: true, orderNumber: c.orderNumber };
  }

  async function place(req: SpCallbackRequest, key: string, persist: Persist, log: Logger, asking: () => void): Promise<CallbackOutput> {
    const mapped = mapSpRequest(req);
    let output: CallbackOutput | undefined;

    // Runs in the transaction that stores the order (possibly more than once, see
    // CreateOrderContext.atomically): it builds everything from `result` alone.
    const record = async (tx: Tx, result: PlatformOrderResult | null): Promise<void> => {
      const lines = new Map<string, LineResult>(mapped.invalid);
      for (const l of result?.lines ?? []) lines.set(l.ref, l);
      const response = buildSpResponse(req, lines, result);
      const body = JSON.stringify(response.body);
      const orderNumber = response.status === 409 ? null : (result?.order?.orderNumber ?? null);
      output = await persist(tx, { status: response.status, body, orderNumber, replayed: result?.replayed ?? false });
    };

    const order = mapped.order;
    if (order.lines.length === 0 || (mapped.invalid.size > 0 && !order.allowPartial)) {
      await record(deps.db, null);
    } else {
      asking();
      const result = await placeWithDeadline(deps.platform, order, {
        idempotencyKey: key,
        deadlineMs: deps.platformDeadlineMs,
        log,
        atomically: record,
        redactEmail: deps.redactEmail === true,
      });
      if (!result.ranAtomically) await transaction(deps.db, (tx) => record(tx, result));
      if (result.order !== null && result.lines.some((l) => !l.ok) && !order.allowPartial) {
        log.warn("the platform placed an order with failed items although allowSomeFailedItems is false");
      }
    }
    if (output === undefined) throw new Error("the order outcome was not recorded");
    return output;
  }
}
