import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { IdempotencyConflictError, ServiceUnavailableError } from "../errors.js";
import { findCallback, finishProcessing, insertProcessing, takeOver, type CallbackRow } from "../store/callbacks.js";
import type { Tx } from "../store/handle.js";

/**
 * Exactly-once for synchronous callbacks. One row per idempotency key moves
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
 */
export type Claim =
  /** placedBefore: the key's order was placed and answered before (a pruned row): the key stays bound. */
  | { kind: "owner"; attemptId: string; placedBefore: boolean }
  | { kind: "stored"; status: number; body: string; orderNumber: string | null };

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
    if (firstPass && (await insertProcessing(db, { key: o.key, bodyHash: o.bodyHash, attemptId, leaseUntil: now + o.leaseMs, requestId: o.requestId, now }))) return { kind: "owner", attemptId, placedBefore: false };
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
  return new IdempotencyConflictError(
    `salesOrderToken ${shown} ${what} with a different order body; a new order needs a new salesOrderToken.`,
  );
}
