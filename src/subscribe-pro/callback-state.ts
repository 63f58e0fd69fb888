import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { IdempotencyConflictError, ServiceUnavailableError } from "../errors.js";
import { toErrorResponse } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Ledger, Recorded } from "../orders/placement.js";
import type { PlatformOrderResult } from "../orders/types.js";
import { createCallbackStatements, findCallback, finishProcessing, insertProcessing, takeOver, type CallbackRow } from "../store/callbacks.js";
import { isStoreUnavailable } from "../store/db.js";
import type { Tx } from "../store/handle.js";

/**
 * The Subscribe Pro callback's state machine, the one place that moves `sp_callbacks` rows (their
 * SQL: src/store/callbacks.ts). Exactly-once for synchronous callbacks. One row per idempotency key moves
 *   processing → done        (201/202: final, replayed byte for byte)
 *   processing → retryable   (409/503/500, nothing placed: the next request with the key processes afresh)
 *   processing → uncertain   (the platform was asked and may have placed the order, e.g. it timed
 *                             out: the same body processes afresh and learns the outcome from the
 *                             platform; another body under the key is refused)
 *   done → pruned            (retention dropped the stored answer, src/store/retention.ts: the key
 *                             stays bound to its body; the same body goes to the platform again under
 *                             the key, whose idempotency answers with the order it placed; another
 *                             body is refused as for done)
 * A request that finds the key `processing` waits for the owner; one that finds an expired lease
 * (its owner died) takes the key over. Every transition is a conditional write, so it is safe
 * across processes sharing one database.
 *
 * With an in-store placement (the local platform) a request first records its answer in the
 * order's own transaction without claiming the key (storeUnlessHeld: a new key, a retryable one or
 * an expired lease); it claims the key as above only when that finds the key held, uncertain or
 * pruned. With a remote placement every request claims first.
 */
export type Claim =
  /** placedBefore: the key's order was placed and answered before (a pruned row): the key stays bound. */
  { kind: "owner"; attemptId: string; placedBefore: boolean } | { kind: "stored"; status: number; body: string; orderNumber: string | null };

export interface ClaimOptions {
  key: string;
  bodyHash: string;
  requestId: string;
  leaseMs: number;
  /** How long a duplicate waits for a concurrent request with the same key before answering 503. */
  waitMs: number;
  pollMs?: number;
  clock?: () => number;
}

export async function claimKey(db: Tx, o: ClaimOptions): Promise<Claim> {
  const clock = o.clock ?? Date.now;
  const attemptId = randomUUID();
  const waitUntil = clock() + o.waitMs;
  let waitedOn: string | undefined;
  let firstPass = true;
  for (;;) {
    const now = clock();
    // Only a pass that found no row may create the key (retention deletes retryable rows).
    if (firstPass && (await insertProcessing(db, { key: o.key, bodyHash: o.bodyHash, attemptId, leaseUntil: now + o.leaseMs, requestId: o.requestId, now })))
      return { kind: "owner", attemptId, placedBefore: false };
    firstPass = false;

    const row = await findCallback(db, o.key);
    if (row === undefined) {
      firstPass = true;
      continue;
    }
    if (row.state === "done") {
      if (row.body_hash !== o.bodyHash) throw reusedKey(o.key, "was already placed");
      return stored(row);
    }
    if (row.state === "pruned" && row.body_hash !== o.bodyHash) throw reusedKey(o.key, "was already placed");
    if (row.state === "processing" && row.lease_until > now) {
      if (row.body_hash !== o.bodyHash) throw reusedKey(o.key, "is being processed");
      waitedOn = row.attempt_id;
      if (now >= waitUntil) {
        throw new ServiceUnavailableError("in_progress", "An order with this idempotency key is still being processed; retry shortly.", {
          retryAfterSeconds: 2,
        });
      }
      await sleep(o.pollMs ?? 20);
      continue;
    }
    // The request we waited for has finished without placing an order: give the same answer.
    if ((row.state === "retryable" || row.state === "uncertain") && waitedOn === row.attempt_id && row.status !== null) return stored(row);
    // The platform may have placed the order of the last attempt: only that order's body may retry.
    if (row.state === "uncertain" && row.body_hash !== o.bodyHash) {
      throw new IdempotencyConflictError(
        `salesOrderToken ${o.key.replace(/^sp:/, "")} was last sent to the platform with a different order body, and the platform did not ` +
          "confirm whether it placed that order: resend that body to learn the outcome, or use a new salesOrderToken for a new order.",
      );
    }
    // Retryable, uncertain or pruned with this body, or processing under an expired lease: take it over.
    const taken = await takeOver(db, {
      key: o.key,
      fromAttemptId: row.attempt_id,
      attemptId,
      bodyHash: o.bodyHash,
      leaseUntil: now + o.leaseMs,
      requestId: o.requestId,
      now,
    });
    if (taken) return { kind: "owner", attemptId, placedBefore: row.state === "pruned" };
  }
}

/**
 * Records the outcome of an attempt. Returns false when the attempt no longer owns the key (its
 * lease expired and another request took over): the outcome is then not stored.
 */
export async function finishAttempt(
  db: Tx,
  key: string,
  attemptId: string,
  outcome: { status: number; body: string; orderNumber: string | null; now: number; uncertain?: boolean },
): Promise<boolean> {
  const final = outcome.status === 201 || outcome.status === 202;
  return finishProcessing(db, {
    key,
    attemptId,
    state: final ? "done" : outcome.uncertain === true ? "uncertain" : "retryable",
    status: outcome.status,
    body: outcome.body,
    orderNumber: outcome.orderNumber,
    now: outcome.now,
  });
}

function stored(row: CallbackRow): Claim {
  return { kind: "stored", status: row.status ?? 500, body: row.response_body ?? "{}", orderNumber: row.order_number };
}

export function reusedKey(key: string, what: string): IdempotencyConflictError {
  const shown = key.replace(/^sp:/, "");
  return new IdempotencyConflictError(`salesOrderToken ${shown} ${what} with a different order body; a new order needs a new salesOrderToken.`);
}

/** The answer to a callback, and whether it is a stored one (replayed). */
export interface CallbackAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
  replayed: boolean;
  orderNumber: string | null;
  /** Answered from the stored result (logged as such), not by this request's own placement. */
  fromStore: boolean;
}

/** What a callback answers for a platform result (null: nothing was sent); built afresh on every run. */
export type Answer = (result: PlatformOrderResult | null) => { status: number; body: string; orderNumber: string | null; replayed: boolean };

export interface CallbackLedgerOptions {
  key: string;
  bodyHash: string;
  requestId: string;
  log: Logger;
  leaseMs: number;
  clock: () => number;
  answer: Answer;
}

/** The statements of the one-transaction path, compiled once per database (src/store/callbacks.ts). */
export type CallbackStatements = ReturnType<typeof createCallbackStatements>;
export { createCallbackStatements };

/**
 * One request's ledger for the placement (src/orders/placement.ts): before its claim, records
 * follow the one-transaction rules (store unless held; a done key answers its stored answer);
 * after it, the attempt's own (finishAttempt).
 */
export function callbackLedger(db: Tx, q: CallbackStatements, o: CallbackLedgerOptions): Ledger<CallbackAnswer> {
  let claimed: { attemptId: string; placedBefore: boolean } | undefined;
  // The one-transaction path's writes carry an attempt id of their own (nobody waits on it).
  const unclaimedAttemptId = randomUUID();
  const fresh = (a: { status: number; body: string; orderNumber: string | null; replayed: boolean }): CallbackAnswer => ({
    ...a,
    headers: {},
    fromStore: false,
  });
  return {
    async claim() {
      const c = await claimKey(db, { key: o.key, bodyHash: o.bodyHash, requestId: o.requestId, leaseMs: o.leaseMs, waitMs: o.leaseMs + 500, clock: o.clock });
      if (c.kind === "stored") return { kind: "answered", value: storedAnswer(c, o.log) };
      claimed = { attemptId: c.attemptId, placedBefore: c.placedBefore };
      return { kind: "owner" };
    },

    async record(tx, result): Promise<Recorded<CallbackAnswer>> {
      const a = o.answer(result);
      const now = o.clock();
      if (claimed !== undefined) {
        // A pruned key's order exists: whatever this attempt answers, the key stays bound to its body.
        const kept = await finishAttempt(tx, o.key, claimed.attemptId, { ...a, now, uncertain: claimed.placedBefore });
        if (!kept) o.log.warn("another request took this order over while it was processed; answering with this attempt's result");
        return { kind: "kept", value: fresh(a) };
      }
      const final = a.status === 201 || a.status === 202;
      const stored = await q.storeUnlessHeld(tx, {
        key: o.key,
        bodyHash: o.bodyHash,
        state: final ? "done" : "retryable",
        attemptId: unclaimedAttemptId,
        now,
        status: a.status,
        body: a.body,
        orderNumber: a.orderNumber,
        requestId: o.requestId,
      });
      if (stored) return { kind: "kept", value: fresh(a) };
      // Placed before (a retry) or by a concurrent duplicate: the stored answer is the answer.
      const row = await q.findByKey(tx, o.key);
      if (row === undefined) throw new Error(`the stored outcome of ${o.key} vanished`);
      if (row.state !== "done") return { kind: "held" };
      if (row.body_hash !== o.bodyHash) throw reusedKey(o.key, "was already placed");
      return { kind: "kept", value: storedAnswer({ status: row.status ?? 500, body: row.response_body ?? "{}", orderNumber: row.order_number }, o.log) };
    },

    async failed(e, { mayHavePlaced }) {
      const answer = toErrorResponse(e, o.requestId, isStoreUnavailable);
      const body = JSON.stringify(answer.body);
      if (claimed === undefined) {
        // Nothing final happened: record the answer so the next request starts afresh.
        if (e instanceof IdempotencyConflictError) return;
        const final = answer.status === 201 || answer.status === 202;
        await q
          .storeUnlessHeld(db, {
            key: o.key,
            bodyHash: o.bodyHash,
            state: final ? "done" : "retryable",
            attemptId: unclaimedAttemptId,
            now: o.clock(),
            status: answer.status,
            body,
            orderNumber: null,
            requestId: o.requestId,
          })
          .catch((err: unknown) => o.log.warn("could not record a failed attempt", { error: String(err) }));
        return;
      }
      // When the platform was asked and did not plainly refuse, it may have placed the order (a
      // timeout): then only the same body may retry, and the platform's idempotency key finds that order.
      const uncertain = claimed.placedBefore || mayHavePlaced;
      if (uncertain) o.log.warn("the platform may have placed this order; only the same body may retry this salesOrderToken", { error: answer.body.errorMessage });
      await finishAttempt(db, o.key, claimed.attemptId, { status: answer.status, body, orderNumber: null, now: o.clock(), uncertain }).catch((err: unknown) =>
        o.log.warn("could not record a failed attempt; its lease will expire", { error: String(err) }),
      );
    },
  };
}

function storedAnswer(c: { status: number; body: string; orderNumber: string | null }, log: Logger): CallbackAnswer {
  log.info("order callback answered from the stored result", { status: c.status, orderNumber: c.orderNumber });
  return { status: c.status, body: c.body, headers: c.status === 503 ? { "Retry-After": "5" } : {}, replayed: true, orderNumber: c.orderNumber, fromStore: true };
}
